package downstream

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// FuzzDownWire: what the downstream client writes in the DATA phase is what
// net/textproto's DotWriter writes, for any text with CRLF line ends and any
// split into writes (the downstream reads the same message, and a line "."
// can never end it early); and no reply, however malformed, makes the
// reply parser panic or return more than it was given.
func FuzzDownWire(f *testing.F) {
	for _, seed := range []string{
		"Subject: x\r\n\r\n.\r\n..\r\nend\r\n",
		"no line end",
		"\r\n.\r\n",
		"250-mx\r\n250 PIPELINING\r\n",
		"550 5.1.1 no\r\n",
	} {
		f.Add([]byte(seed), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		text := strings.ReplaceAll(strings.ReplaceAll(string(data), "\r", ""), "\n", "\r\n")
		size := int(split%64) + 1
		if got, want := stuffDots(text, size), textprotoDots(text); got != want {
			t.Fatalf("text %q in %d-byte writes:\n got %q\nwant %q", text, size, got, want)
		}
		w := &downWire{br: bufio.NewReaderSize(bytes.NewReader(data), wireReadBuf)}
		for range 3 {
			reply, err := w.reply(250, true)
			if err == nil && len(reply) > len(data) {
				t.Fatalf("reply %q longer than the input %q", reply, data)
			}
		}
	})
}
