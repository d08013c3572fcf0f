package rewrite

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// streamBody is a text of about n bytes with addresses in every form the
// plain-text scanner reads, at line starts and ends and around the chunk
// size, in lines of every length, one of them longer than the line
// reader's buffer (read in pieces).
func streamBody(n int, eol string) string {
	rng := rand.New(rand.NewPCG(17, 7))
	forms := []string{"customer%d@example.net", "mailto:customer%d@example.net", "customer%d%%40example.net",
		"<customer%d@example.net>", "x=customer%d@example.net", "bounces+customer%d=example.org@lists.example.org"}
	var b strings.Builder
	for b.Len() < n {
		switch k := rng.IntN(10); {
		case k == 0:
			fmt.Fprintf(&b, forms[rng.IntN(len(forms))]+eol, rng.IntN(40))
		case k == 1 && b.Len() > 100<<10 && b.Len() < 140<<10:
			// 70 KB without a line end, full of addresses: one of
			// them straddles where the line reader cuts the line.
			for i := 0; i < 3000; i++ {
				fmt.Fprintf(&b, "customer%d@example.net ", rng.IntN(40))
			}
			b.WriteString(eol)
		default:
			b.WriteString(strings.Repeat("word ", rng.IntN(30)))
			if rng.IntN(3) == 0 {
				fmt.Fprintf(&b, forms[rng.IntN(len(forms))], rng.IntN(40))
			}
			b.WriteString(eol)
		}
	}
	return b.String()
}

// TestStreamedTextMatchesHeld: a text part streamed chunk by chunk is
// rewritten exactly as the same text held whole (an EUC-KR label, which
// is held, and ASCII text, which reads the same in both).
func TestStreamedTextMatchesHeld(t *testing.T) {
	for _, eol := range []string{"\r\n", "\n"} {
		for _, size := range []int{1 << 10, streamChunkBytes - 10, 3*streamChunkBytes + 7, 400 << 10} {
			t.Run(fmt.Sprintf("%q/%d", eol, size), func(t *testing.T) {
				body := streamBody(size, eol)
				msg := func(charset string) []byte {
					return []byte("From: support@company.example" + eol + "Content-Type: text/plain; charset=" + charset + eol +
						"Content-Transfer-Encoding: 8bit" + eol + eol + body)
				}
				rw, _ := newTestRewriter(t, RewriteOptions{Limits: Limits{MaxNewTokens: 1000}})
				streamed, srep, err := runInbound(t, rw, msg("utf-8"))
				if err != nil {
					t.Fatal(err)
				}
				held, hrep, err := runInbound(t, rw, msg("euc-kr"))
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
				if left := customerAddresses(streamed); len(left) > 0 {
					t.Errorf("%d addresses left, e.g. %s", len(left), left[0])
				}
				// And back: the outbound direction streams 8bit parts too.
				back, err := runOutbound(t, rw, streamed)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(back, msg("utf-8")) {
					t.Errorf("outbound did not restore the message")
				}
			})
		}
	}
}

func TestStreamable(t *testing.T) {
	inbound, outbound := &direction{asciiOut: true}, &direction{}
	tests := []struct {
		d       *direction
		mt, cte string
		params  map[string]string
		want    bool
	}{
		{inbound, "text/plain", "", nil, true},
		{inbound, "text/plain", "7bit", map[string]string{"charset": "US-ASCII"}, true},
		{outbound, "text/plain", "7bit", nil, false}, // a UTF-8 address would need quoted-printable
		{outbound, "text/plain", "8bit", map[string]string{"charset": "utf-8"}, true},
		{outbound, "text/csv", "binary", nil, true},
		{inbound, "text/plain", "quoted-printable", nil, true},
		{outbound, "text/plain", "quoted-printable", map[string]string{"charset": "utf-8"}, true},
		{inbound, "text/plain", "base64", nil, false},
		{inbound, "text/plain", "8bit", map[string]string{"charset": "iso-8859-1"}, false},
		{inbound, "text/plain", "8bit", map[string]string{"format": "flowed"}, false},
		{inbound, "text/html", "8bit", nil, false},
		{inbound, "text/calendar", "8bit", nil, false},
		{inbound, "message/rfc822", "8bit", nil, false},
	}
	for _, tt := range tests {
		w := &walker{d: tt.d}
		if tt.params == nil {
			tt.params = map[string]string{}
		}
		if got := w.streamable(tt.mt, tt.params, tt.cte); got != tt.want {
			t.Errorf("streamable(%s, %v, %q) with asciiOut %v = %v, want %v", tt.mt, tt.params, tt.cte, tt.d.asciiOut, got, tt.want)
		}
	}
}

// TestStreamedQuotedPrintable: a quoted-printable part streams in chunks
// that end at hard line breaks. One chunk is written as the held part
// would be; in a larger part only the changed chunks are re-encoded, and
// the text decodes to what the held part's does, addresses cut by soft
// line breaks included.
func TestStreamedQuotedPrintable(t *testing.T) {
	for _, eol := range []string{"\r\n", "\n"} {
		for _, size := range []int{1 << 10, streamChunkBytes - 10, 400 << 10} {
			t.Run(fmt.Sprintf("%q/%d", eol, size), func(t *testing.T) {
				var enc bytes.Buffer
				qw := quotedprintable.NewWriter(&enc)
				qw.Write([]byte(strings.ReplaceAll(streamBody(size, "\r\n"), "\r\n", "\n")))
				qw.Close()
				body := strings.ReplaceAll(enc.String(), "\r\n", eol) + eol
				head := func(charset string) string {
					return "From: support@company.example" + eol + "Content-Type: text/plain; charset=" + charset + eol +
						"Content-Transfer-Encoding: quoted-printable" + eol + eol
				}
				rw, _ := newTestRewriter(t, RewriteOptions{Limits: Limits{MaxNewTokens: 1000}})
				streamed, _, err := runInbound(t, rw, []byte(head("utf-8")+body))
				if err != nil {
					t.Fatal(err)
				}
				held, _, err := runInbound(t, rw, []byte(head("euc-kr")+body))
				if err != nil {
					t.Fatal(err)
				}
				held = bytes.Replace(held, []byte("charset=euc-kr"), []byte("charset=utf-8"), 1)
				if size < streamChunkBytes {
					if !bytes.Equal(streamed, held) {
						t.Fatalf("one chunk: streamed output differs from held output")
					}
					return
				}
				sText, hText := qpBody(t, streamed, eol), qpBody(t, held, eol)
				if !bytes.Equal(sText, hText) {
					t.Fatalf("streamed text differs from held text (%d vs %d bytes)", len(sText), len(hText))
				}
				if left := customerAddresses(sText); len(left) > 0 {
					t.Errorf("%d addresses left, e.g. %s", len(left), left[0])
				}
				back, err := runOutbound(t, rw, streamed)
				if err != nil {
					t.Fatal(err)
				}
				if orig := qpBody(t, []byte(head("utf-8")+body), eol); !bytes.Equal(qpBody(t, back, eol), orig) {
					t.Errorf("outbound did not restore the text")
				}
			})
		}
	}
}

// TestStreamedQuotedPrintableKeepsUnchangedChunks: only the chunk with an
// address is re-encoded; the rest of the part stays as it came, even
// where a re-encoding would write it otherwise ("=20" for a space).
func TestStreamedQuotedPrintableKeepsUnchangedChunks(t *testing.T) {
	tail := strings.Repeat("no address=20in this line=\r\nat all\r\n", 8000) // 300 KB
	msg := "From: support@company.example\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\nwrite to jane=\r\n@example.net\r\n" + tail
	rw, _ := newTestRewriter(t, RewriteOptions{})
	out, rep, err := runInbound(t, rw, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed != 1 || len(customerAddresses(qpBody(t, out, "\r\n"))) > 0 {
		t.Fatalf("address not rewritten: %+v", rep)
	}
	// The first chunk (64 KiB and up to a hard line break) is re-encoded.
	if !bytes.HasSuffix(out, []byte(tail[len(tail)-200<<10:])) {
		t.Errorf("the unchanged chunks were not kept as they came")
	}
}

// qpBody decodes the quoted-printable body of a one-part message.
func qpBody(t *testing.T, msg []byte, eol string) []byte {
	t.Helper()
	_, body, ok := bytes.Cut(msg, []byte(eol+eol))
	if !ok {
		t.Fatal("no body")
	}
	text, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	return text
}
