package scan

import "testing"

var scanRTFCases = []scanCase{
	{name: "plain", in: `{\rtf1\ansi\pard mail jane@example.com\par}`, found: []string{"jane@example.com"},
		out: `{\rtf1\ansi\pard mail tok@relay.test\par}`},
	{name: "hex escape", in: `{\rtf1 jane\'40example.com}`, found: []string{"jane@example.com"}, out: `{\rtf1 tok@relay.test}`},
	{name: "unicode escape with fallback", in: `{\rtf1 jane\u64?example.com.}`, found: []string{"jane@example.com"},
		out: `{\rtf1 tok@relay.test.}`},
	{name: "unicode escape, uc2", in: `{\rtf1\uc2 jane\u64\'3f\'3fexample.com}`, found: []string{"jane@example.com"},
		out: `{\rtf1\uc2 tok@relay.test}`},
	{name: "split by formatting", in: `{\rtf1 jane{\b @}exa{\i mple}.com!}`, found: []string{"jane@example.com"},
		out: `{\rtf1 tok@relay.test{\b }{\i }!}`},
	{name: "split by the writer's line break", in: "{\\rtf1 jane@exam\r\nple.com}", found: []string{"jane@example.com"},
		out: "{\\rtf1 tok@relay.test\r\n}"},
	{name: "hyperlink field", in: `{\field{\*\fldinst{HYPERLINK "mailto:jane@example.com"}}{\fldrslt{\ul jane@example.com}}}`,
		found: []string{"jane@example.com", "jane@example.com"},
		out:   `{\field{\*\fldinst{HYPERLINK "mailto:tok@relay.test"}}{\fldrslt{\ul tok@relay.test}}}`},
	{name: "control word before an escape", in: `{\b\'6aane@example.com}`, found: []string{"jane@example.com"},
		out: `{\b tok@relay.test}`},
	{name: "paragraph mark ends it", in: `{jane@example.com\par x}`, found: []string{"jane@example.com"}, out: `{tok@relay.test\par x}`},
	{name: "par between", in: `{jane@exam\par ple.com}`},
	{name: "latin-1 escape in the local part", in: `{j\'f6rg@example.de}`, found: []string{"jörg@example.de"}, out: `{tok@relay.test}`},
	{name: "binary data skipped", in: "{\\bin4 a@b.}jane@example.com", found: []string{"jane@example.com"},
		out: "{\\bin4 a@b.}tok@relay.test"},
	{name: "escaped braces", in: `{\{jane@example.com\}}`, found: []string{"jane@example.com"}, out: `{\{tok@relay.test\}}`},
	{name: "info group", in: `{\info{\author Jane Doe jane@example.com}}`, found: []string{"jane@example.com"},
		out: `{\info{\author Jane Doe tok@relay.test}}`},
	{name: "nothing", in: `{\rtf1 no address \'41\u66?}`},
	// Shift JIS: \'83 leads a two-byte character whose trail byte is a
	// letter ("\'83A" is katakana A): it is not part of the address.
	{name: "double-byte trail letter before an address", in: `{\rtf1\ansi\ansicpg932 \'83Ajane@example.com}`,
		found: []string{"jane@example.com"}, out: `{\rtf1\ansi\ansicpg932 \'83Atok@relay.test}`},
	{name: "double-byte trail '@'", in: `{\rtf1\ansi\ansicpg932 jane\'83@example.com}`},
	{name: "double-byte escaped trail", in: `{\rtf1\ansicpg936 \'b0\'a1jane@example.com}`,
		found: []string{"jane@example.com"}, out: `{\rtf1\ansicpg936 \'b0\'a1tok@relay.test}`},
	{name: "double-byte font in a single-byte document",
		in:    `{\rtf1\ansi\ansicpg1252{\fonttbl{\f0\fcharset0 Arial;}{\f1\fcharset128 MS Gothic;}}{\f1 \'83Ajane@example.com}}`,
		found: []string{"jane@example.com"},
		out:   `{\rtf1\ansi\ansicpg1252{\fonttbl{\f0\fcharset0 Arial;}{\f1\fcharset128 MS Gothic;}}{\f1 \'83Atok@relay.test}}`},
	{name: "single-byte font after the group", in: `{\rtf1\ansicpg1252{\fonttbl{\f1\fcharset128 G;}}{\f1 x}\'83Ajane@example.com}`,
		found: []string{"Ajane@example.com"}, out: `{\rtf1\ansicpg1252{\fonttbl{\f1\fcharset128 G;}}{\f1 x}\'83tok@relay.test}`},
}

func TestScanRTF(t *testing.T) { runScanTable(t, TextRTF, scanRTFCases) }

// TestScanRTFEncode: replacements are written as RTF: braces and
// backslashes escaped, non-ASCII as \u in a group of its own, and a space
// after a control word the replacement would otherwise extend.
func TestScanRTFEncode(t *testing.T) {
	tests := []struct{ before, r, want string }{
		{`x `, "a@b.example", "a@b.example"},
		{`\b`, "a@b.example", " a@b.example"},
		{`\fs24`, "a@b.example", " a@b.example"},
		{`\li-5`, "a@b.example", " a@b.example"},
		{`\\b`, "a@b.example", "a@b.example"}, // an escaped backslash, then text
		{`\\\b`, "a@b.example", " a@b.example"},
		{``, "{j}@b.example", `\{j\}@b.example`},
		{``, "jörg@b.example", `j{\uc1\u246?}rg@b.example`},
		{``, "😀@b.example", `{\uc1\u-10179?\u-8704?}@b.example`},
	}
	for _, tt := range tests {
		if got := string(scRTFEncode(nil, tt.r, []byte(tt.before))); got != tt.want {
			t.Errorf("after %q: %q, want %q", tt.before, got, tt.want)
		}
	}
}
