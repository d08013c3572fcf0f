package pdf

import (
	"bytes"
	"compress/lzw"
	"errors"
	"slices"
	"strings"
	"testing"
)

// lzwOf encodes b as PDF's LZWDecode with /EarlyChange 0 (compress/lzw
// writes the GIF variant). Below 253 codes the code width never grows, so
// a short stream reads the same under either /EarlyChange.
func lzwOf(b []byte) string {
	var out bytes.Buffer
	w := lzw.NewWriter(&out, lzw.MSB, 8)
	w.Write(b)
	w.Close()
	return out.String()
}

// runLengthOf encodes b as RunLengthDecode: runs of a repeated byte as
// repeats, the rest as literal runs, then the end marker (PDF 32000-1
// section 7.4.5).
func runLengthOf(b []byte) string {
	var out []byte
	for len(b) > 0 {
		n := 1
		for n < len(b) && n < 128 && b[n] == b[0] {
			n++
		}
		if n > 2 {
			out = append(out, byte(257-n), b[0])
			b = b[n:]
			continue
		}
		n = min(len(b), 128)
		out = append(out, byte(n-1))
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return string(append(out, 128))
}

func TestScanLZWAndRunLength(t *testing.T) {
	long := strings.Repeat("BT /F1 12 Tf (lorem ipsum dolor sit amet ) Tj ET\n", 200) // past 512 codes
	tests := []struct {
		name string
		pdf  []byte
		want []string
	}{
		{"LZW, default early change", handPDF(streamObj("/Filter /LZWDecode", lzwOf([]byte("BT (bob@example.org) Tj ET")))), []string{"bob@example.org"}},
		{"LZW, early change 0, long", handPDF(streamObj("/Filter /LZWDecode /DecodeParms << /EarlyChange 0 >>",
			lzwOf([]byte(long+"BT [(jane@exa) 3 (mple.com)] TJ ET")))), []string{"jane@example.com"}},
		{"LZW object stream", handPDF(streamObj("/Type /ObjStm /N 1 /First 4 /Filter /LZW", lzwOf([]byte("2 0 << /URI (mailto:jane@example.com) >>")))), []string{"jane@example.com"}},
		{"RunLength", handPDF(streamObj("/Filter /RunLengthDecode", runLengthOf([]byte("BT (carol@example.net)      Tj ET")))), []string{"carol@example.net"}},
		{"RunLength then Flate", handPDF(streamObj("/Filter [/RL /FlateDecode]", runLengthOf([]byte(flate([]byte("(dave@example.com) Tj")))))), []string{"dave@example.com"}},
		{"ASCIIHex then LZW", handPDF(streamObj("/Filter [/AHx /LZWDecode]", hexOf(lzwOf([]byte("(erin@example.com) Tj"))))), []string{"erin@example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := found(t, tt.pdf)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("found %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String() + ">"
}

// TestLZWEarlyChange: the example of PDF 32000-1 section 7.4.4.2, whose
// codes are written with the default /EarlyChange 1.
func TestLZWEarlyChange(t *testing.T) {
	s := &scanner{limits: Limits{}.withDefaults()}
	got, err := s.lzwDecode(nil, []byte{0x80, 0x0B, 0x60, 0x50, 0x22, 0x0C, 0x0C, 0x85, 0x01})
	if err != nil || string(got) != "-----A---B" {
		t.Fatalf("decoded %q, %v", got, err)
	}
}

// TestLZWAndRunLengthBounded: bombs in either filter end in ErrLimit, by
// the stream's ratio or the file's budget; damaged data is unreadable or
// keeps what it decoded, never a panic.
func TestLZWAndRunLengthBounded(t *testing.T) {
	zeros := bytes.Repeat([]byte{0}, 16<<20)
	rl := strings.Repeat("\x81 ", 64<<10) // 64 Ki runs of 128 spaces: 8 MiB
	for _, c := range []struct {
		name string
		pdf  []byte
		lim  Limits
		want error
	}{
		{"LZW bomb", handPDF(streamObj("/Filter /LZWDecode /DecodeParms << /EarlyChange 0 >>", lzwOf(zeros))), Limits{}, ErrLimit},
		{"RunLength past the budget", handPDF(streamObj("/Filter /RunLengthDecode", rl)), Limits{MaxDecodedBytes: 1 << 20}, ErrLimit},
		{"LZW garbage", handPDF(streamObj("/Filter /LZWDecode", "\xff\xff\xff\xff\xff\xff")), Limits{}, ErrUnreadable},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Scan(c.pdf, c.lim, func(string) (string, error) { return "", nil })
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	cut := runLengthOf([]byte("(jane@example.com) Tj"))
	if got, err := found(t, handPDF(streamObj("/Filter /RunLengthDecode", cut[:len(cut)-8]))); err != nil {
		t.Fatalf("a run cut short: %v %v", got, err)
	}
}
