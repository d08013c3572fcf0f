package rewrite

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// htmlStreamBody is HTML of about n bytes with addresses in the forms the
// HTML scanner reads, several of them cut by line ends inside tags and
// comments (which a piece must never end in), at random places.
func htmlStreamBody(n int, eol string) string {
	rng := rand.New(rand.NewPCG(17, 8))
	forms := []string{
		"write to customer%d@example.net<br>",
		"<a href=\"mailto:customer%d@example.net\"\r\n   title=\"mail us\">mail</a>",
		"customer%d<span\r\nclass=\"at\">@</span>example.net",
		"customer%d&#64;example.net and customer%d&commat;example.net",
		"<!-- customer%d@example.net\r\nstill a comment -->",
		"<td>Email</td><td>customer%d@example.net</td>",
		"<p style=\"color: red;\r\n  font-size: 10pt\"\r\n  data-x=\"customer%d@example.net\">x</p>",
		"customer%d%%40example.net",
	}
	var b strings.Builder
	b.WriteString("<html><body>\r\n")
	for b.Len() < n {
		if rng.IntN(3) == 0 {
			f := forms[rng.IntN(len(forms))]
			args := []any{rng.IntN(40)}
			if strings.Count(f, "%d") == 2 {
				args = append(args, rng.IntN(40))
			}
			fmt.Fprintf(&b, f, args...)
		}
		b.WriteString(strings.Repeat("some words ", rng.IntN(12)))
		b.WriteString("\r\n")
	}
	b.WriteString("</body></html>\r\n")
	return strings.ReplaceAll(b.String(), "\r\n", eol)
}

// flowedStreamBody is format=flowed text with DelSp=yes (RFC 3676) of
// about n bytes: paragraphs of lines ending in soft breaks, addresses in
// them and cut in two by soft breaks, and quoted paragraphs.
func flowedStreamBody(n int, eol string) string {
	rng := rand.New(rand.NewPCG(17, 9))
	var b strings.Builder
	for b.Len() < n {
		quote := ""
		if rng.IntN(4) == 0 {
			quote = "> "
		}
		for i := rng.IntN(8); i >= 0; i-- {
			b.WriteString(quote + strings.Repeat("word ", rng.IntN(10)))
			switch rng.IntN(4) {
			case 0:
				fmt.Fprintf(&b, "customer%d@example.net ", rng.IntN(40))
			case 1: // DelSp: the soft break's space is not text
				fmt.Fprintf(&b, "customer%d@exa %s%smple.net ", rng.IntN(40), eol, quote)
			}
			b.WriteString(" " + eol) // a soft break after a word's end (DelSp takes one space)
		}
		b.WriteString(quote + "end of paragraph" + eol)
	}
	return b.String()
}

// calendarStreamBody is iCalendar text of about n bytes: events whose
// attendees and descriptions name customers, folded at 75 octets (RFC
// 5545 section 3.1), an address cut by a fold, escapes in text values.
func calendarStreamBody(n int, eol string) string {
	rng := rand.New(rand.NewPCG(17, 10))
	fold := func(line string) string {
		var b strings.Builder
		for len(line) > 75 {
			b.WriteString(line[:75] + eol + " ")
			line = line[75:]
		}
		return b.String() + line + eol
	}
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR" + eol + "VERSION:2.0" + eol)
	for b.Len() < n {
		c := rng.IntN(40)
		b.WriteString("BEGIN:VEVENT" + eol)
		b.WriteString(fold(fmt.Sprintf("ATTENDEE;CN=Customer %d;ROLE=REQ-PARTICIPANT:mailto:customer%d@example.net", c, c)))
		b.WriteString(fold(fmt.Sprintf("DESCRIPTION:Call %s\\, or write to customer%d@example.net\\nThanks", strings.Repeat("us ", rng.IntN(30)), c)))
		b.WriteString("END:VEVENT" + eol)
	}
	return b.String() + "END:VCALENDAR" + eol
}

// readerView joins what a reader of the text joins, near enough for
// customerAddresses: soft breaks of flowed text with DelSp=yes (the
// quote marks and stuffing of the next line), calendar folds.
func readerView(mt string, text []byte, eol string) []byte {
	switch mt {
	case "text/plain; format=flowed; delsp=yes":
		text = bytes.ReplaceAll(text, []byte(" "+eol+"> "), nil)
		return bytes.ReplaceAll(text, []byte(" "+eol), nil)
	case "text/calendar":
		return bytes.ReplaceAll(text, []byte(eol+" "), nil)
	}
	return text
}

// encodeBody writes text in a transfer encoding, with eol line ends.
func encodeBody(cte, text, eol string) string {
	switch cte {
	case "quoted-printable":
		var b bytes.Buffer
		qw := quotedprintable.NewWriter(&b)
		qw.Write([]byte(text))
		qw.Close()
		return strings.ReplaceAll(b.String(), "\r\n", eol)
	case "base64":
		return string(wrapBase64([]byte(text), eol))
	}
	return text
}

func pieceMessage(mt, charset, cte, body, eol string) []byte {
	return []byte("From: support@company.example" + eol + "Content-Type: " + mt + "; charset=" + charset + eol +
		"Content-Transfer-Encoding: " + cte + eol + eol + body)
}

// partText decodes the body of a one-part message.
func partText(t *testing.T, msg []byte, cte, eol string) []byte {
	t.Helper()
	_, body, ok := bytes.Cut(msg, []byte(eol+eol))
	if !ok {
		t.Fatal("no body")
	}
	text, err := decodeCTE(cte, body)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// TestPiecesMatchHeld: HTML in every transfer encoding, and plain text in
// base64, rewritten in pieces are written exactly as when the part is
// held whole (an EUC-KR label, which is held and reads ASCII as ASCII);
// no customer address is left, and the outbound route restores plain text.
func TestPiecesMatchHeld(t *testing.T) {
	type form struct{ mt, cte string }
	forms := []form{{"text/html", "8bit"}, {"text/html", "quoted-printable"}, {"text/html", "base64"},
		{"text/html", "7bit"}, {"text/plain", "base64"},
		{"text/plain; format=flowed; delsp=yes", "8bit"}, {"text/plain; format=flowed; delsp=yes", "quoted-printable"},
		{"text/calendar", "8bit"}, {"text/calendar", "base64"}}
	for _, f := range forms {
		for _, eol := range []string{"\r\n", "\n"} {
			for _, size := range []int{1 << 10, streamChunkBytes - 10, 3*streamChunkBytes + 7, 400 << 10} {
				t.Run(fmt.Sprintf("%s/%s/%q/%d", strings.Fields(f.mt)[0], f.cte, eol, size), func(t *testing.T) {
					text := htmlStreamBody(size, eol)
					switch f.mt {
					case "text/plain":
						text = streamBody(size, eol)
					case "text/calendar":
						text = calendarStreamBody(size, eol)
					case "text/plain; format=flowed; delsp=yes":
						text = flowedStreamBody(size, eol)
					}
					body := encodeBody(f.cte, text, eol)
					rw, _ := newTestRewriter(t, RewriteOptions{Limits: Limits{MaxNewTokens: 1000, pieceFrom: streamChunkBytes}})
					streamed, srep, err := runInbound(t, rw, pieceMessage(f.mt, "utf-8", f.cte, body, eol))
					if err != nil {
						t.Fatal(err)
					}
					held, hrep, err := runInbound(t, rw, pieceMessage(f.mt, "euc-kr", f.cte, body, eol))
					if err != nil {
						t.Fatal(err)
					}
					held = bytes.Replace(held, []byte("charset=euc-kr"), []byte("charset=utf-8"), 1)
					if !bytes.Equal(streamed, held) {
						t.Fatalf("streamed output differs from held output (%d vs %d bytes)", len(streamed), len(held))
					}
					if srep.Changed != hrep.Changed || len(srep.Tokens) != len(hrep.Tokens) {
						t.Errorf("reports differ: streamed %+v, held %+v", srep, hrep)
					}
					if left := customerAddresses(readerView(f.mt, partText(t, streamed, f.cte, eol), eol)); len(left) > 0 {
						t.Errorf("%d addresses left, e.g. %s", len(left), left[0])
					}
					// Back: the outbound direction reads the rewritten part in
					// pieces too, exactly as it reads it held.
					hback, err := runOutbound(t, rw, bytes.Replace(streamed, []byte("charset=utf-8"), []byte("charset=euc-kr"), 1))
					if err != nil {
						t.Fatal(err)
					}
					hback = bytes.Replace(hback, []byte("charset=euc-kr"), []byte("charset=utf-8"), 1)
					back, err := runOutbound(t, rw, streamed)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(back, hback) {
						t.Fatalf("outbound: streamed output differs from held output (%d vs %d bytes)", len(back), len(hback))
					}
					if f.mt != "text/plain" {
						return // HTML comes back with its references written out
					}
					if !bytes.Equal(partText(t, back, f.cte, eol), []byte(text)) {
						t.Errorf("outbound did not restore the text")
					}
				})
			}
		}
	}
}

// TestPiecesLatin1: a large part in a single-byte charset is rewritten in
// pieces to the same text as the UTF-8 part holding the same characters
// (streamed line by line), and stays in its charset.
func TestPiecesLatin1(t *testing.T) {
	for _, cs := range []string{"iso-8859-1", "windows-1252"} {
		for _, cte := range []string{"8bit", "quoted-printable", "base64"} {
			for _, mt := range []string{"text/plain", "text/html"} {
				t.Run(cs+"/"+cte+"/"+mt, func(t *testing.T) {
					text := strings.ReplaceAll(streamBody(300<<10, "\r\n"), "word", "wörd café")
					if mt == "text/html" {
						text = strings.ReplaceAll(htmlStreamBody(300<<10, "\r\n"), "words", "wörds café")
					}
					latin, err := charmap.ISO8859_1.NewEncoder().String(text)
					if err != nil {
						t.Fatal(err)
					}
					rw, _ := newTestRewriter(t, RewriteOptions{Limits: Limits{MaxNewTokens: 1000}})
					out, _, err := runInbound(t, rw, pieceMessage(mt, cs, cte, encodeBody(cte, latin, "\r\n"), "\r\n"))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Contains(out, []byte("charset="+cs)) {
						t.Errorf("the charset label changed")
					}
					got, err := charmap.Windows1252.NewDecoder().Bytes(partText(t, out, cte, "\r\n"))
					if err != nil {
						t.Fatal(err)
					}
					ref, _, err := runInbound(t, rw, pieceMessage(mt, "euc-kr", "8bit", text, "\r\n"))
					if err != nil {
						t.Fatal(err)
					}
					if want := partText(t, ref, "8bit", "\r\n"); !bytes.Equal(got, want) {
						t.Fatalf("text differs from the UTF-8 part's (%d vs %d bytes)", len(got), len(want))
					}
				})
			}
		}
	}
}

// TestPiecesUnchangedKept: a large part with nothing to replace is written
// byte for byte, in whatever form it came: base64 in lines of 64
// characters, with stray characters; quoted-printable that another
// encoder wrote; an unterminated tag at the end.
func TestPiecesUnchangedKept(t *testing.T) {
	text := strings.Repeat("nothing to see here, <b>really</b> nothing at all<br>\r\n", 6000)
	b64 := base64.StdEncoding.EncodeToString([]byte(text))
	var lines strings.Builder
	for i := 0; i < len(b64); i += 64 {
		lines.WriteString(b64[i:min(i+64, len(b64))] + "\r\n")
		if i%(64*500) == 0 {
			lines.WriteString("!\r\n") // outside the alphabet: left out
		}
	}
	tests := []struct{ mt, cs, cte, body string }{
		{"text/html", "utf-8", "base64", lines.String()},
		{"text/plain", "iso-8859-1", "base64", lines.String()},
		{"text/html", "utf-8", "quoted-printable", strings.ReplaceAll(text, " ", "=20")},
		{"text/html", "windows-1252", "8bit", text + "<a href=\"x\r\n"},
	}
	for _, tt := range tests {
		msg := pieceMessage(tt.mt, tt.cs, tt.cte, tt.body, "\r\n")
		rw, _ := newTestRewriter(t, RewriteOptions{})
		out, rep, err := runInbound(t, rw, msg)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Changed != 0 || !bytes.Equal(out, msg) {
			t.Errorf("%s %s %s: the unchanged part was not kept as it came", tt.mt, tt.cs, tt.cte)
		}
	}
}

// TestPiecesChangeLate: a part whose only address is in a later piece is
// written as it came up to a sync point before that piece, and encoded
// from there; it decodes to the rewritten text.
func TestPiecesChangeLate(t *testing.T) {
	filler := strings.Repeat("nothing to see here, really nothing at all\r\n", 4000) // 176 KB
	text := filler + "write to jane@example.net\r\n" + filler
	for _, cte := range []string{"base64/64", "base64/70", "quoted-printable", "8bit"} {
		t.Run(cte, func(t *testing.T) {
			cte, width, _ := strings.Cut(cte, "/")
			body := encodeBody(cte, text, "\r\n")
			if cte == "base64" {
				// Lines of 64 characters (groups of four end with each
				// line) or 70 (a group runs on into the next line every
				// other line): the encoded rest has 76.
				n := map[string]int{"64": 64, "70": 70}[width]
				b64 := base64.StdEncoding.EncodeToString([]byte(text))
				var lines strings.Builder
				for i := 0; i < len(b64); i += n {
					lines.WriteString(b64[i:min(i+n, len(b64))] + "\r\n")
				}
				body = lines.String()
			}
			msg := pieceMessage("text/html", "utf-8", cte, body, "\r\n")
			rw, _ := newTestRewriter(t, RewriteOptions{Limits: Limits{pieceFrom: streamChunkBytes}})
			out, rep, err := runInbound(t, rw, msg)
			if err != nil {
				t.Fatal(err)
			}
			got := partText(t, out, cte, "\r\n")
			if rep.Changed != 1 || len(customerAddresses(got)) > 0 || !bytes.Contains(got, []byte(filler+"write to ")) {
				t.Fatalf("not rewritten as expected: %+v", rep)
			}
			if head := body[:100<<10]; !bytes.Contains(out, []byte(head)) {
				t.Errorf("the part's first 100 KB were not kept as they came")
			}
		})
	}
}

// TestPiecesAddressAtBoundary: an address on every side of where a piece
// may end, in every form that can cross a boundary (a tag spanning a line
// end, a base64 line end and group, a quoted-printable soft break), is
// rewritten, and the guard finds it when it is not.
func TestPiecesAddressAtBoundary(t *testing.T) {
	forms := []struct{ mt, cte, addr string }{
		{"text/html", "8bit", "jane<span\r\n>@</span>example.net"},
		{"text/html", "8bit", "<a\r\nhref=\"mailto:jane@example.net\">x</a>"},
		{"text/html", "8bit", "<!--\r\njane@example.net\r\n-->"},
		{"text/html", "base64", "jane<span\r\n>@</span>example.net"},
		{"text/plain", "base64", "jane@example.net"},
		{"text/html", "quoted-printable", "jane<b\r\n>@</b>example.net"},
		{"text/plain", "quoted-printable", "jane@example.net"},
		{"text/plain; format=flowed; delsp=yes", "8bit", "jane@exa \r\nmple.net"},
		{"text/plain; format=flowed; delsp=yes", "quoted-printable", "jane@exa \r\nmple.net"},
		{"text/calendar", "8bit", "ATTENDEE:mailto:jane@exa\r\n mple.net"},
		{"text/calendar", "base64", "ATTENDEE:mailto:jane@exa\r\n mple.net"},
	}
	for _, f := range forms {
		for shift := -300; shift <= 300; shift += 37 {
			// Lines of 60 bytes up to about where the first piece ends.
			pre := strings.Repeat(strings.Repeat("x", 58)+"\r\n", (streamChunkBytes+shift)/60)
			pre += strings.Repeat("y", (streamChunkBytes+shift)%60) + " "
			text := pre + f.addr + " and more\r\n" + strings.Repeat("z\r\n", 30000)
			body := encodeBody(f.cte, text, "\r\n")
			msg := pieceMessage(f.mt, "utf-8", f.cte, body, "\r\n")
			rw, _ := newTestRewriter(t, RewriteOptions{Limits: Limits{pieceFrom: streamChunkBytes}})
			out, _, err := runInbound(t, rw, msg)
			if err != nil {
				t.Fatal(err)
			}
			if left := customerAddresses(readerView(f.mt, scanJoined(partText(t, out, f.cte, "\r\n")), "\r\n")); len(left) > 0 {
				t.Fatalf("%s %s %q at %+d: %d addresses left", f.mt, f.cte, f.addr, shift, len(left))
			}
			if err := rw.Guard(context.Background(), bytes.NewReader(msg)); !errors.Is(err, ErrLeak) {
				t.Fatalf("%s %s %q at %+d: the guard passed the address: %v", f.mt, f.cte, f.addr, shift, err)
			}
		}
	}
}

// scanJoined removes markup and line ends around '@', as a reader of the
// HTML sees the text, for customerAddresses.
func scanJoined(b []byte) []byte {
	for _, s := range []string{"<span\r\n>", "</span>", "<b\r\n>", "</b>"} {
		b = bytes.ReplaceAll(b, []byte(s), nil)
	}
	return b
}

// TestPiecesUnicodeHeld: a large part labelled UTF-8 whose first piece
// holds NULs is held, and read as UTF-16 as it always was.
func TestPiecesUnicodeHeld(t *testing.T) {
	var b bytes.Buffer
	for b.Len() < 200<<10 {
		for _, c := range "write to jane@example.net please\r\n" {
			b.WriteByte(byte(c))
			b.WriteByte(0)
		}
	}
	msg := pieceMessage("text/plain", "utf-8", "base64", encodeBody("base64", b.String(), "\r\n"), "\r\n")
	rw, _ := newTestRewriter(t, RewriteOptions{})
	out, rep, err := runInbound(t, rw, msg)
	if err != nil {
		t.Fatal(err)
	}
	text := partText(t, out, "base64", "\r\n")
	if rep.Changed != 1 || bytes.Contains(bytes.ReplaceAll(text, []byte{0}, nil), []byte("example.net")) {
		t.Errorf("the UTF-16 part was not rewritten: %+v", rep)
	}
}

func TestPieceCodecOf(t *testing.T) {
	inbound, outbound := &direction{asciiOut: true}, &direction{}
	tests := []struct {
		d       *direction
		mt, cte string
		charset string
		want    bool
	}{
		{inbound, "text/html", "8bit", "utf-8", true},
		{outbound, "text/html", "quoted-printable", "", true},
		{inbound, "text/html", "base64", "us-ascii", true},
		{outbound, "text/plain", "base64", "utf-8", true},
		{inbound, "text/plain", "8bit", "iso-8859-1", true},
		{inbound, "text/html", "base64", "windows-1252", true},
		{inbound, "text/plain", "8bit", "koi8-r", true},
		{outbound, "text/plain", "8bit", "iso-8859-1", false}, // an outbound UTF-8 address would switch it to UTF-8
		{outbound, "text/html", "7bit", "utf-8", false},       // or to quoted-printable
		{inbound, "text/plain", "8bit", "iso-8859-3", true},   // bytes that are no character are kept
		{inbound, "text/plain", "8bit", "ibm037", false},      // EBCDIC: ASCII is not ASCII
		{inbound, "text/plain", "8bit", "shift_jis", false},   // multi-byte
		{inbound, "text/plain", "8bit", "iso-2022-jp", false}, // stateful
		{inbound, "text/plain", "8bit", "utf-16", false},
		{inbound, "text/plain", "8bit", "utf-7", false},
		{inbound, "text/plain", "8bit", "x-unknown", false}, // its bytes decide (charsetOf)
		{inbound, "text/plain", "x-uuencode", "utf-8", false},
		{inbound, "text/calendar", "8bit", "utf-8", true},
		{outbound, "text/vcard", "base64", "utf-8", true},
		{inbound, "text/rtf", "8bit", "utf-8", false},
		{inbound, "text/rfc822-headers", "8bit", "utf-8", false},
		{inbound, "message/rfc822", "base64", "", false},
	}
	for _, tt := range tests {
		w := &walker{d: tt.d}
		params := map[string]string{"charset": tt.charset}
		if _, got := w.pieceCodecOf(tt.mt, params, tt.cte); got != tt.want {
			t.Errorf("pieceCodecOf(%s, %s, %s) with asciiOut %v = %v, want %v", tt.mt, tt.charset, tt.cte, tt.d.asciiOut, got, tt.want)
		}
	}
	flowed := map[string]string{"charset": "utf-8", "format": "flowed", "delsp": "yes"}
	if c, ok := (&walker{d: inbound}).pieceCodecOf("text/plain", flowed, "base64"); !ok || c.kind != scan.TextFlowedDelSp {
		t.Errorf("flowed text is not rewritten in pieces as flowed text: %+v, %v", c, ok)
	}
}

// TestCharmapRoundTrip: every byte of a charset read in pieces decodes and
// encodes back to itself, bytes that are no character in it too.
func TestCharmapRoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, cm := range []*charmap.Charmap{charmap.ISO8859_1, charmap.ISO8859_3, charmap.Windows1252, charmap.KOI8R} {
		if !pieceCharmap(cm) {
			t.Errorf("%v cannot be read in pieces", cm)
			continue
		}
		back, err := encodeCharmap(cm, decodeCharmap(cm, all))
		if err != nil || !bytes.Equal(back, all) {
			t.Errorf("%v: round trip %v, err %v", cm, back, err)
		}
	}
	if _, err := encodeCharmap(charmap.ISO8859_1, []byte("jane@例え.jp")); !errors.Is(err, ErrUnscannable) {
		t.Errorf("a character the charset lacks: err %v", err)
	}
}

// TestPiecesUndefinedBytesKept: in a changed windows-1252 part, bytes that
// are no character in it are written back as they came.
func TestPiecesUndefinedBytesKept(t *testing.T) {
	line := "caf\xe9 \x81 \x8d write to jane@example.net \x90\r\n"
	body := strings.Repeat(line, 300<<10/len(line))
	rw, _ := newTestRewriter(t, RewriteOptions{})
	out, rep, err := runInbound(t, rw, pieceMessage("text/plain", "windows-1252", "8bit", body, "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	text := partText(t, out, "8bit", "\r\n")
	if rep.Changed != 1 || len(customerAddresses(text)) > 0 || bytes.Count(text, []byte("caf\xe9 \x81 \x8d write to ")) != strings.Count(body, "\n") {
		t.Errorf("the part was not rewritten with its bytes kept: %+v", rep)
	}
}

// TestPiecesLongTag: a tag over many lines (a style attribute of 2 MB)
// holds the piece open until it ends, with addresses in it and around it.
func TestPiecesLongTag(t *testing.T) {
	text := strings.Repeat("words and words<br>\r\n", 4000) + "<div title=\"jane@example.net\" style=\"" +
		strings.Repeat("color: red;\r\n", 160000) + "\" data-x=\"bob@example.org\">customer1@example.net</div>\r\n" +
		strings.Repeat("more words<br>\r\n", 8000)
	for _, cte := range []string{"8bit", "quoted-printable"} {
		rw, _ := newTestRewriter(t, RewriteOptions{})
		out, rep, err := runInbound(t, rw, pieceMessage("text/html", "utf-8", cte, encodeBody(cte, text, "\r\n"), "\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		if left := customerAddresses(partText(t, out, cte, "\r\n")); rep.Changed != 1 || len(left) > 0 {
			t.Errorf("%s: %d addresses left: %v", cte, len(left), left)
		}
	}
}

// TestPiecesOneLine: HTML and plain text written without line ends (1 MB
// on one line, as HTML generators write it) are cut at spaces: they pass
// within a held-part budget the part held whole would exceed, and are
// written exactly as held.
func TestPiecesOneLine(t *testing.T) {
	html := strings.ReplaceAll(htmlStreamBody(1<<20, "\r\n"), "\r\n", " ") + "\r\n"
	plain := strings.ReplaceAll(streamBody(1<<20, "\r\n"), "\r\n", " ") + "\r\n"
	for _, tt := range []struct{ mt, cte, text string }{
		{"text/html", "8bit", html}, {"text/html", "quoted-printable", html}, {"text/html", "base64", html},
		{"text/plain", "base64", plain},
	} {
		body := encodeBody(tt.cte, tt.text, "\r\n")
		small, _ := newTestRewriter(t, RewriteOptions{Limits: Limits{MaxHeldBytes: 512 << 10, MaxNewTokens: 1000}})
		streamed, _, err := runInbound(t, small, pieceMessage(tt.mt, "utf-8", tt.cte, body, "\r\n"))
		if err != nil {
			t.Fatalf("%s %s: %v", tt.mt, tt.cte, err)
		}
		if _, _, err := runInbound(t, small, pieceMessage(tt.mt, "euc-kr", tt.cte, body, "\r\n")); !errors.Is(err, ErrLimit) {
			t.Fatalf("%s %s: held whole, err %v, want ErrLimit", tt.mt, tt.cte, err)
		}
		big, _ := newTestRewriter(t, RewriteOptions{Limits: Limits{MaxNewTokens: 1000}})
		held, _, err := runInbound(t, big, pieceMessage(tt.mt, "euc-kr", tt.cte, body, "\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		held = bytes.Replace(held, []byte("charset=euc-kr"), []byte("charset=utf-8"), 1)
		if !bytes.Equal(streamed, held) {
			t.Errorf("%s %s: streamed output differs from held output", tt.mt, tt.cte)
		}
	}
}

// TestPiecesOneLineUnchanged: a part of 1 MB on one line with nothing to
// replace passes within a small held-part budget and is written as it
// came: it is let go of as it is scanned.
func TestPiecesOneLineUnchanged(t *testing.T) {
	text := strings.Repeat("nothing to see here, <b>really</b> nothing at all ", 20000)
	for _, cte := range []string{"8bit", "base64", "quoted-printable"} {
		body := text + "\r\n"
		switch cte {
		case "base64":
			body = base64.StdEncoding.EncodeToString([]byte(text)) + "\r\n"
		case "quoted-printable":
			body = encodeBody(cte, text, "\r\n") + "\r\n"
		}
		msg := pieceMessage("text/html", "utf-8", cte, body, "\r\n")
		rw, _ := newTestRewriter(t, RewriteOptions{Limits: Limits{MaxHeldBytes: 512 << 10}})
		out, rep, err := runInbound(t, rw, msg)
		if err != nil {
			t.Fatalf("%s: %v", cte, err)
		}
		if rep.Changed != 0 || !bytes.Equal(out, msg) {
			t.Errorf("%s: the unchanged part was not kept as it came", cte)
		}
	}
}
