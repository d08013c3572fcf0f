package header

import "testing"

// Typical address field values. The rewriter parses every address field
// of every message; most mailboxes are left as they are (internal ones, or
// the whole message on the guard's pass).
var hdrBenchFields = []struct{ name, value string }{
	{"From", `"Jane Doe" <jane.doe@example.com>`},
	{"To", `Support <support@company.example>, Bob Smith <bob@example.org>`},
	{"Cc", `=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>, alice@example.net (Alice)`},
	{"NoAddress", `Undisclosed recipients:;`},
}

func BenchmarkRewriteAddressField(b *testing.B) {
	keep := func(m Mailbox) (Mailbox, bool, error) { return m, false, nil }
	change := func(m Mailbox) (Mailbox, bool, error) { m.Addr = "t5k2m8q1x0v4@relay.example"; return m, true, nil }
	for _, f := range hdrBenchFields {
		b.Run(f.name+"/unchanged", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := RewriteAddressField(f.value, keep); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(f.name+"/tokenized", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := RewriteAddressField(f.value, change); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRewriteUnstructured(b *testing.B) {
	addr := func(string) (string, error) { return "t5k2m8q1x0v4@relay.example", nil }
	for _, v := range []struct{ name, value string }{
		{"Subject", `Re: Your order #12345 has shipped`},
		{"Received", `from mx.example.com (mx.example.com [192.0.2.1]) by mx.company.example with ESMTPS id 4bX; Tue, 1 Jul 2025 10:00:00 +0000`},
		{"EncodedSubject", `=?utf-8?q?Anfrage_von_jane=40example.com?=`},
	} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := RewriteUnstructured(v.value, hdrTestFind, addr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
