// Command memmsg writes the messages of test/bench-memory.sh to stdout: a
// customer message with one large text part, or with a small text part and
// one large base64 attachment, CRLF line ends, customer addresses in the
// header and every ~2 KB of text (so the text part is rewritten, the costly
// path).
//
//	memmsg -kind text -size 15000000 > text.eml       # text/plain, 8bit
//	memmsg -kind qp -size 5000000 > qp.eml             # text/plain, quoted-printable
//	memmsg -kind html -size 5000000 > html.eml         # text/html, 8bit
//	memmsg -kind html64 -size 5000000 > html64.eml     # text/html, base64
//	memmsg -kind htmlqp -size 5000000 > htmlqp.eml     # text/html, quoted-printable
//	memmsg -kind text64 -size 5000000 > text64.eml     # text/plain, base64
//	memmsg -kind latin1 -size 5000000 > latin1.eml     # text/plain, ISO-8859-1, quoted-printable
//	memmsg -kind msg64 -size 5000000 > msg64.eml       # message/rfc822, base64, holding text/html
//	memmsg -kind gzip -size 60000000 > gzip.eml        # a .txt.gz attachment expanding to 60 MB of text
//	memmsg -kind attach -size 35000000 -text 5000000 > attach.eml
//	                                  # 35 MB of base64 attachment after a 5 MB text part
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"flag"
	"fmt"
	"math/rand/v2"
	"mime/quotedprintable"
	"os"
	"strings"
)

const prose = "Thank you for your message about the delivery. We looked into the order and the parcel left our warehouse on Tuesday; the tracking number is in the attached note. "

func main() {
	kind := flag.String("kind", "text", "text, qp, html, html64, htmlqp, text64, latin1, msg64, gzip or attach")
	size := flag.Int("size", 5_000_000, "bytes of the large part as sent (encoded)")
	textSize := flag.Int("text", 100, "attach: bytes of the text part before the attachment")
	flag.Parse()
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer w.Flush()
	fmt.Fprint(w, "From: Jane Doe <jane.doe@example.net>\r\nTo: support@company.example\r\n"+
		"Cc: bob@example.org\r\nSubject: memory benchmark\r\nMessage-ID: <mem-1@example.net>\r\n"+
		"MIME-Version: 1.0\r\n")
	switch *kind {
	case "text":
		fmt.Fprint(w, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		text(w, *size, "\r\n")
	case "html":
		fmt.Fprint(w, "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		text(w, *size, "<br>\r\n")
	case "latin1":
		// Prose with accented letters, one byte each in ISO-8859-1, in
		// quoted-printable as mail clients send it (swaks announces no
		// 8BITMIME).
		fmt.Fprint(w, "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		var b strings.Builder
		text(&b, *size*9/10, "\r\n")
		qw := quotedprintable.NewWriter(w)
		qw.Write([]byte(strings.ReplaceAll(b.String(), "delivery", "livraison \xe9t\xe9")))
		qw.Close()
		fmt.Fprint(w, "\r\n")
	case "text64":
		var b strings.Builder
		text(&b, *size*3/4, "\r\n")
		fmt.Fprint(w, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		wrap64(w, []byte(b.String()))
	case "qp", "htmlqp":
		mt, eol := "text/plain", "\r\n"
		if *kind == "htmlqp" {
			mt, eol = "text/html", "<br>\r\n"
		}
		fmt.Fprintf(w, "Content-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", mt)
		var b strings.Builder
		text(&b, *size*9/10, eol) // QP of prose adds about a tenth: soft breaks
		qw := quotedprintable.NewWriter(w)
		qw.Write([]byte(b.String()))
		qw.Close()
		fmt.Fprint(w, "\r\n")
	case "html64", "msg64":
		var b strings.Builder
		if *kind == "msg64" {
			b.WriteString("From: Bob <bob@example.org>\r\nSubject: forwarded\r\nContent-Type: text/html; charset=utf-8\r\n\r\n")
		}
		text(&b, *size*3/4, "<br>\r\n")
		mt := map[string]string{"html64": "text/html; charset=utf-8", "msg64": "message/rfc822"}[*kind]
		fmt.Fprintf(w, "Content-Type: %s\r\nContent-Transfer-Encoding: base64\r\n\r\n", mt)
		wrap64(w, []byte(b.String()))
	case "attach":
		attach(w, *size, *textSize)
	case "gzip":
		gzipAttach(w, *size)
	default:
		fmt.Fprintln(os.Stderr, "memmsg: unknown -kind", *kind)
		os.Exit(2)
	}
}

// wrap64 writes b in base64, 76 characters a line.
func wrap64(w *bufio.Writer, b []byte) {
	line := make([]byte, 76)
	for len(b) > 0 {
		n := min(len(b), 57)
		base64.StdEncoding.Encode(line, b[:n])
		w.Write(line[:base64.StdEncoding.EncodedLen(n)])
		w.WriteString("\r\n")
		b = b[n:]
	}
}

// text writes about n bytes of prose, a customer address every ~2 KB.
func text(w interface{ WriteString(string) (int, error) }, n int, eol string) {
	written := 0
	for i := 0; written < n; i++ {
		for j := 0; j < 12 && written < n; j++ {
			k, _ := w.WriteString(prose)
			written += k
		}
		k, _ := w.WriteString(fmt.Sprintf("customer%d@example.net%s", i%40, eol))
		written += k
	}
}

// attach writes a multipart message: a text part of about textSize bytes
// naming customers, then n bytes of base64 (random, so nothing in it
// compresses or repeats).
func attach(w *bufio.Writer, n, textSize int) {
	fmt.Fprint(w, "Content-Type: multipart/mixed; boundary=\"mem-boundary\"\r\n\r\n"+
		"--mem-boundary\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"+
		"The scan is attached. Jane, jane.doe@example.net\r\n")
	text(w, textSize, "\r\n")
	fmt.Fprint(w, "\r\n--mem-boundary\r\nContent-Type: image/png; name=\"scan.png\"\r\n"+
		"Content-Disposition: attachment; filename=\"scan.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	rng := rand.NewChaCha8([32]byte{1})
	raw := make([]byte, 57)
	line := make([]byte, 76)
	for written := 0; written < n; written += 78 {
		rng.Read(raw)
		base64.StdEncoding.Encode(line, raw)
		w.Write(line)
		w.WriteString("\r\n")
	}
	fmt.Fprint(w, "--mem-boundary--\r\n")
}

// gzipAttach writes a message with a gzip attachment (notes.txt.gz) that
// expands to about n bytes of text naming customers: an opened attachment
// at the attachment limits (max_bytes, max_expanded_bytes). Each line
// carries random numbers, so the text compresses about as much as real
// text does (within max_ratio).
func gzipAttach(w *bufio.Writer, n int) {
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	zb := bufio.NewWriterSize(zw, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for written, i := 0, 0; written < n; i++ {
		k, _ := fmt.Fprintf(zb, "%s order %d, parcel %x, ref %d\r\n", prose[:40+rng.IntN(100)], rng.Int64(), rng.Int64(), rng.Int32())
		written += k
		if i%20 == 0 {
			k, _ = fmt.Fprintf(zb, "contact customer%d@example.net\r\n", i%40)
			written += k
		}
	}
	zb.Flush()
	zw.Close()
	fmt.Fprint(w, "Content-Type: multipart/mixed; boundary=\"mem-boundary\"\r\n\r\n"+
		"--mem-boundary\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe notes are attached.\r\n"+
		"\r\n--mem-boundary\r\nContent-Type: application/gzip; name=\"notes.txt.gz\"\r\n"+
		"Content-Disposition: attachment; filename=\"notes.txt.gz\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	wrap64(w, z.Bytes())
	fmt.Fprint(w, "--mem-boundary--\r\n")
}
