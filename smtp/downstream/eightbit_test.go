package downstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/textproto"
	"strings"
	"testing"

	mtext "github.com/emersion/go-message/textproto"
	gosmtp "github.com/emersion/go-smtp"
)

// readEntity splits an entity into its header and body.
func readEntity(b []byte) (mtext.Header, []byte, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	h, err := mtext.ReadHeader(br)
	if err != nil {
		return h, nil, fmt.Errorf("header: %w", err)
	}
	rest, _ := io.ReadAll(br)
	return h, rest, nil
}

// leaves decodes every leaf part of a 7-bit message (RFC 2045): what a
// reader shows, as content type → text.
func leaves(t *testing.T, msg []byte) map[string]string {
	t.Helper()
	if has8bit(msg) {
		t.Fatalf("8-bit octets left:\n%s", msg)
	}
	out := map[string]string{}
	var walk func(h mtext.Header, body []byte)
	walk = func(h mtext.Header, body []byte) {
		mt, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
		if strings.HasPrefix(mt, "multipart/") {
			mr := mtext.NewMultipartReader(bytes.NewReader(body), params["boundary"])
			for {
				p, err := mr.NextPart()
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(p)
				walk(p.Header, b)
			}
		}
		if mt == "message/rfc822" {
			ih, ib, err := readEntity(body)
			if err != nil {
				t.Fatal(err)
			}
			walk(ih, ib)
			return
		}
		var r io.Reader = bytes.NewReader(body)
		if strings.EqualFold(h.Get("Content-Transfer-Encoding"), "quoted-printable") {
			r = quotedprintable.NewReader(r)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("part %s: %v", mt, err)
		}
		out[mt] = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	h, body, err := readEntity(msg)
	if err != nil {
		t.Fatal(err)
	}
	walk(h, body)
	return out
}

func TestToSevenBit(t *testing.T) {
	const text = "Grüße aus Köln, 10 € — ünïcödé\n" + "a very long line " + "xxxxxxxxxx " + "ä\n"
	single := "From: a@b.example\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		strings.ReplaceAll(text, "\n", "\r\n")
	multi := "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		strings.ReplaceAll(text, "\n", "\r\n") +
		"\r\n--b1\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<p>plain ascii</p>\r\n" +
		"\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n" +
		"\r\n--b1\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		"Subject: inner\r\nContent-Type: text/enriched; charset=utf-8\r\n\r\nÄrger\r\n" +
		"\r\n--b1--\r\nepilogue\r\n"
	noMIME := "Subject: x\r\n\r\n" + strings.ReplaceAll(text, "\n", "\r\n")
	for _, tc := range []struct {
		name string
		in   string
		want map[string]string
	}{
		{"single part", single, map[string]string{"text/plain": text}},
		{"multipart", multi, map[string]string{"text/plain": text, "text/html": "<p>plain ascii</p>\n",
			"application/octet-stream": "AAEC\n", "text/enriched": "Ärger\n"}},
		{"no MIME", noMIME, map[string]string{"text/plain": text}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ToSevenBit([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			got := leaves(t, out)
			for mt, want := range tc.want {
				if got[mt] != want {
					t.Errorf("%s: %q, want %q\n%s", mt, got[mt], want, out)
				}
			}
			for _, line := range strings.Split(string(out), "\r\n") {
				if len(line) > 998 {
					t.Fatalf("line of %d octets", len(line))
				}
			}
			if !bytes.Contains(out, []byte("Subject: x\r\n")) || !bytes.Contains(bytes.ToLower(out), []byte("mime-version: 1.0")) {
				t.Fatalf("header lost:\n%s", out)
			}
		})
	}
	if out, _ := ToSevenBit([]byte(multi)); !bytes.Contains(out, []byte("--b1\r\n")) || !bytes.Contains(out, []byte("--b1--")) {
		t.Fatalf("boundary not kept:\n%s", out)
	}
}

// deepMultipart nests n multiparts around one 8-bit text part.
func deepMultipart(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\nä\r\n")
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.String()
}

func TestToSevenBitRefuses(t *testing.T) {
	if out, err := ToSevenBit([]byte(deepMultipart(maxMIMEDepth))); err != nil || leaves(t, out)["text/plain"] != "ä" {
		t.Fatalf("%d levels: %v", maxMIMEDepth, err)
	}
	for name, in := range map[string]string{
		"nested too deep":     deepMultipart(maxMIMEDepth + 1),
		"8-bit header":        "Subject: Grüße\r\n\r\nä\r\n",
		"8-bit in base64":     "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nä\r\n",
		"8-bit part header":   "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Description: ä\r\n\r\nä\r\n--b--\r\n",
		"unterminated header": "Subject: x",
	} {
		if out, err := ToSevenBit([]byte(in)); err == nil && has8bit(out) {
			t.Errorf("%s: converted to 8-bit output without error", name)
		} else if err == nil && name != "unterminated header" {
			t.Errorf("%s: want an error", name)
		}
	}
}

// sevenBitDS is a hop without 8BITMIME (and without SMTPUTF8) that
// records the text of one message, or expects none.
func sevenBitDS(t *testing.T, got *string) string {
	return scriptDS(t, func(c *textproto.Conn, _ net.Conn) error {
		if err := greetEHLO(c, "PIPELINING"); err != nil {
			return err
		}
		if err := expect(c, "MAIL FROM:<from@relay.test>"); err != nil {
			return err
		}
		if err := expect(c, "RCPT TO:<a@crm.test>"); err != nil {
			return err
		}
		if err := c.PrintfLine("250 ok\r\n250 ok"); err != nil {
			return err
		}
		line, err := c.ReadLine()
		if err != nil || line != "DATA" {
			return nil // refused before DATA: the client hangs up
		}
		if err := c.PrintfLine("354 go"); err != nil {
			return err
		}
		b, err := io.ReadAll(c.DotReader())
		if err != nil {
			return err
		}
		*got = string(b)
		if err := c.PrintfLine("250 queued"); err != nil {
			return err
		}
		if err := expect(c, "QUIT"); err != nil {
			return err
		}
		return c.PrintfLine("221 bye")
	})
}

// TestDownstreamEightBit: an 8-bit body to a hop that does not offer
// 8BITMIME is converted to quoted-printable by default (issue 16: it went
// unconverted), or refused permanently (554 5.6.3) by policy with nothing
// sent; an ASCII body passes untouched.
func TestDownstreamEightBit(t *testing.T) {
	body := "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße\r\n"
	opts := &gosmtp.MailOptions{Body: gosmtp.Body8BitMIME}

	var got string
	d := newScriptDS(t, sevenBitDS(t, &got))
	if err := sendWith(dsCtx(t), d, opts, body, "a@crm.test"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if l := leaves(t, []byte(strings.ReplaceAll(got, "\n", "\r\n"))); l["text/plain"] != "Grüße\n" {
		t.Fatalf("converted text %q from\n%s", l["text/plain"], got)
	}

	var none string
	refuse, err := New(Config{Address: sevenBitDS(t, &none), TLS: TLSInsecure, HeloName: "proxy.test", EightBit: EightBitRefuse}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer refuse.Close()
	err = sendWith(dsCtx(t), refuse, opts, body, "a@crm.test")
	de := wantKind(t, err, ErrPerm, "data", 554)
	if de.Enhanced != (gosmtp.EnhancedCode{5, 6, 3}) || !errors.Is(err, ErrNo8BitMIME) || none != "" {
		t.Fatalf("error %v, sent %q: want 5.6.3, ErrNo8BitMIME, nothing sent", err, none)
	}

	var ascii string
	d2 := newScriptDS(t, sevenBitDS(t, &ascii))
	plain := "Subject: x\r\n\r\nplain\r\n"
	if err := sendWith(dsCtx(t), d2, nil, plain, "a@crm.test"); err != nil {
		t.Fatal(err)
	}
	d2.Close()
	if ascii != strings.ReplaceAll(plain, "\r\n", "\n") {
		t.Fatalf("ASCII message changed: %q", ascii)
	}
}

// TestPeekHead: the header is found in one peek, across reads, beyond the
// peek buffer (the whole message is then read), and without a body.
func TestPeekHead(t *testing.T) {
	big := "Subject: x\r\nX-Long: " + strings.Repeat("a", headPeek) + "\r\n\r\nbody\r\n"
	for _, tc := range []struct{ name, msg, head string }{
		{"short", "Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\n"},
		{"no body", "Subject: x\r\n", "Subject: x\r\n"},
		{"empty header", "\r\nbody\r\n", "\r\n"},
		{"longer than the buffer", big, big[:len(big)-len("body\r\n")]},
	} {
		br := bufio.NewReaderSize(iotestHalf(strings.NewReader(tc.msg)), headPeek)
		head, whole, err := peekHead(br)
		if err != nil || string(head) != tc.head {
			t.Errorf("%s: head %d octets, %v; want %d", tc.name, len(head), err, len(tc.head))
			continue
		}
		var rest io.Reader = br
		if whole != nil {
			rest = bytes.NewReader(whole)
		}
		if all, _ := io.ReadAll(rest); string(all) != tc.msg {
			t.Errorf("%s: the message read after the peek differs", tc.name)
		}
	}
}

// iotestHalf reads at most 7 octets at a time: headers split across reads.
func iotestHalf(r io.Reader) io.Reader { return &smallReader{r} }

type smallReader struct{ r io.Reader }

func (s *smallReader) Read(p []byte) (int, error) {
	if len(p) > 7 {
		p = p[:7]
	}
	return s.r.Read(p)
}
