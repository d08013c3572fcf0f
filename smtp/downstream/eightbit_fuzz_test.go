package downstream

import (
	"testing"
)

// FuzzToSevenBit: no message, however malformed, makes the conversion
// panic, and what it returns without an error is 7-bit throughout (a hop
// without 8BITMIME never gets an 8-bit octet from us).
func FuzzToSevenBit(f *testing.F) {
	for _, seed := range []string{
		"Subject: x\r\n\r\nGrüße\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nä\r\n--b--\r\n",
		"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nö\r\n",
		"Content-Type: multipart/alternative; boundary=\"x\"\r\n\r\n--x\r\n\r\n--x\r\nContent-Type: multipart/mixed; boundary=y\r\n\r\n--y\r\n\r\nü\r\n--y--\r\n--x--\r\n",
		"Content-Transfer-Encoding: base64\r\n\r\nä\r\n",
		"Subject: x",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		out, err := ToSevenBit(msg)
		if err == nil && has8bit(out) {
			t.Fatalf("8-bit output from %q:\n%q", msg, out)
		}
	})
}
