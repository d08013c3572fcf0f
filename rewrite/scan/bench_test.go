package scan

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// BenchmarkReplaceAddresses measures the scanner on 1 MB of English text
// with an address every 2 KB or so, replacing each (inbound), and on text
// without any (the common case: the leak guard's raw scan of attachments).
func BenchmarkReplaceAddresses(b *testing.B) {
	tok := func(string) (string, error) { return scanFuzzTok, nil }
	for _, c := range []struct {
		name string
		kind TextKind
		text []byte
	}{
		{"plain", TextPlain, benchPlain(1<<20, true)},
		{"html", TextHTML, benchHTML(1<<20, true)},
		{"folded", TextFolded, benchFolded(1<<20, true)},
		{"plain-none", TextPlain, benchPlain(1<<20, false)},
		{"html-none", TextHTML, benchHTML(1<<20, false)},
		{"folded-none", TextFolded, benchFolded(1<<20, false)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.text)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := ReplaceAddresses(c.kind, c.text, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var benchWords = strings.Fields(`the of and to in is you that it he was for on are as with his they at be
this have from or one had by word but not what all were we when your can said there use an each which she
do how their if will up other about out many then them these so some her would make like him into time has
look two more write go see number no way could people my than first water been call who oil its now find
long down day did get come made may part order invoice shipment delivery account password reset support`)

// benchProse returns about n bytes of sentences; every 2 KB or so it calls
// addr to write an address.
func benchProse(n int, addr func(sb *strings.Builder, i int), sep func(sb *strings.Builder, i int)) string {
	r := rand.New(rand.NewPCG(1, 2))
	var sb strings.Builder
	next, i := 2048, 0
	for sb.Len() < n {
		for w := 0; w < 12; w++ {
			sb.WriteString(benchWords[r.IntN(len(benchWords))])
			sb.WriteByte(' ')
		}
		sep(&sb, i)
		if addr != nil && sb.Len() >= next {
			addr(&sb, i)
			i, next = i+1, sb.Len()+1500+r.IntN(1000)
		}
	}
	return sb.String()
}

func benchPlain(n int, withAddr bool) []byte {
	var addr func(*strings.Builder, int)
	if withAddr {
		addr = func(sb *strings.Builder, i int) {
			fmt.Fprintf(sb, "Please write to customer.%d@example-%d.com. ", i, i%7)
		}
	}
	return []byte(benchProse(n, addr, func(sb *strings.Builder, i int) { sb.WriteString("fine.\r\n") }))
}

func benchHTML(n int, withAddr bool) []byte {
	var addr func(*strings.Builder, int)
	if withAddr {
		addr = func(sb *strings.Builder, i int) {
			if i%2 == 0 {
				fmt.Fprintf(sb, `<a href="mailto:customer.%d@example.com">customer.%d@example.com</a> `, i, i)
			} else {
				fmt.Fprintf(sb, "write to <b>customer.%d&#64;example.com</b> ", i)
			}
		}
	}
	return []byte(benchProse(n, addr, func(sb *strings.Builder, i int) {
		sb.WriteString("it&#8217;s&nbsp;<i>fine</i>.</p>\r\n<p style=\"margin:0 0 12px 0;font-family:Arial\">")
	}))
}

func benchFolded(n int, withAddr bool) []byte {
	var sb strings.Builder
	for i := 0; sb.Len() < n; i++ {
		desc := benchProse(600, nil, func(sb *strings.Builder, i int) { sb.WriteString("\\, ok\\n") })
		line := "DESCRIPTION:" + desc
		if withAddr {
			line = fmt.Sprintf("ATTENDEE;CN=Customer %d;ROLE=REQ-PARTICIPANT:mailto:customer.%d@example.com\r\n%s", i, i, line)
		}
		for len(line) > 75 {
			k := strings.Index(line, "\r\n") + 2
			if k < 2 || k > 75 {
				sb.WriteString(line[:75] + "\r\n ")
				line = line[75:]
				continue
			}
			sb.WriteString(line[:k])
			line = line[k:]
		}
		sb.WriteString(line + "\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\n")
	}
	return []byte(sb.String())
}
