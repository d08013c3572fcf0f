package rewrite

import (
	"bytes"
	"encoding/base64"
	"mime/quotedprintable"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
)

// TestRewritePerEncoding: for each transfer encoding and charset, the
// address is replaced, the part keeps its encoding and charset, QP lines
// stay within 76 characters (RFC 2045 6.7), and the non-ASCII text
// survives.
func TestRewritePerEncoding(t *testing.T) {
	text := "Grüße von Jörg – schreib an joerg.mueller@example.de, danke! " + strings.Repeat("Lange Zeile ", 8) + "\r\n"
	type enc struct {
		cte, charset string
		encode       func(string) []byte
	}
	latin := func(s string) []byte {
		b, _ := charmap.ISO8859_15.NewEncoder().Bytes([]byte(strings.ReplaceAll(s, "–", "-")))
		return b
	}
	qp := func(b []byte) []byte {
		var out bytes.Buffer
		w := quotedprintable.NewWriter(&out)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}
	b64 := func(b []byte) []byte { return wrapBase64(b, "\r\n") }
	tests := []enc{
		{"8bit", "utf-8", func(s string) []byte { return []byte(s) }},
		{"quoted-printable", "utf-8", func(s string) []byte { return qp([]byte(s)) }},
		{"base64", "utf-8", func(s string) []byte { return b64([]byte(s)) }},
		{"8bit", "iso-8859-15", latin},
		{"quoted-printable", "iso-8859-15", func(s string) []byte { return qp(latin(s)) }},
		{"base64", "iso-8859-15", func(s string) []byte { return b64(latin(s)) }},
		{"quoted-printable", "windows-1252", func(s string) []byte {
			b, _ := charmap.Windows1252.NewEncoder().Bytes([]byte(s))
			return qp(b)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.cte+"/"+tt.charset, func(t *testing.T) {
			rw, _ := newTestRewriter(t, RewriteOptions{})
			head := "From: support@company.example\r\nContent-Type: text/plain; charset=" + tt.charset +
				"\r\nContent-Transfer-Encoding: " + tt.cte + "\r\n\r\n"
			out, _, err := runInbound(t, rw, append([]byte(head), tt.encode(text)...))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, []byte(head)) {
				t.Fatalf("header changed:\n%s", out)
			}
			body := out[len(head):]
			decoded, _ := decodeCTE(tt.cte, body)
			_, utf, err := decodeCharset(tt.charset, decoded)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(utf, []byte("joerg.mueller@example.de")) || !bytes.Contains(utf, []byte("@relay.company.example")) {
				t.Fatalf("address not replaced: %q", utf)
			}
			if !bytes.Contains(utf, []byte("Grüße von Jörg")) {
				t.Fatalf("non-ASCII text damaged: %q", utf)
			}
			for _, l := range strings.Split(string(body), "\r\n") {
				if tt.cte == "quoted-printable" && len(l) > 76 || tt.cte == "base64" && len(l) > 76 {
					t.Fatalf("line of %d characters: %q", len(l), l)
				}
			}
			if tt.cte == "base64" {
				if _, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(body), "\r\n", "")); err != nil {
					t.Fatalf("output is not strict base64: %v", err)
				}
			}
		})
	}
}
