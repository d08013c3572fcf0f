package rewrite

import (
	"bytes"
	"fmt"
	"math/rand/v2"
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
// rewritten exactly as the same text held whole (a Latin-1 label, which
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
				held, hrep, err := runInbound(t, rw, msg("iso-8859-1"))
				if err != nil {
					t.Fatal(err)
				}
				held = bytes.Replace(held, []byte("charset=iso-8859-1"), []byte("charset=utf-8"), 1)
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
		{inbound, "text/plain", "quoted-printable", nil, false},
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
