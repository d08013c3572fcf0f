package mailauth

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"
)

// BenchmarkARCSeal is the CPU cost of one seal (two RSA-2048 signatures,
// a relaxed body hash) over a 1 KB message, one core:
//
//	go test -run '^$' -bench 'ARC(Seal|Verify)' -cpu 1 ./mailauth/
func BenchmarkARCSeal(b *testing.B) {
	key, _ := testKeys(b)
	m := benchARCMessage()
	s := ARCSealer{Domain: "company.example", Selector: "arc", Key: key}
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal(context.Background(), nil, "company.example; dkim=pass header.d=customer.example", bytes.NewReader(m)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkARCVerify is Verify of the same message with and without a
// one-set chain: SPF, DKIM, DMARC in both, key look-ups on a loopback DNS
// server (one more for the chain), the difference is ARC's cost.
func BenchmarkARCVerify(b *testing.B) {
	key, _ := testKeys(b)
	z, _ := arcZone(b)
	plain := benchARCMessage()
	s := ARCSealer{Domain: "fwd.example", Selector: "arc", Key: key}
	seal, err := s.Seal(context.Background(), nil, forwarderIn, bytes.NewReader(plain))
	if err != nil {
		b.Fatal(err)
	}
	chained := append([]byte(seal.Fields), plain...)
	r := NewResolver(z.Addr, 2*time.Second)
	in := VerifyInput{ClientIP: net.ParseIP("192.0.2.1"), Helo: "mx.fwd.example", MailFrom: "jane@customer.example", TrustedARCSealers: []string{"fwd.example"}}
	for _, tt := range []struct {
		name string
		m    []byte
		want Result
	}{{"chain=none", plain, ResultNone}, {"chain=1", chained, ResultPass}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v, err := Verify(context.Background(), r, in, bytes.NewReader(tt.m))
				if err != nil || v.ARC.Result != tt.want {
					b.Fatalf("%v %+v", err, v.ARC)
				}
			}
		})
	}
}

func benchARCMessage() []byte {
	m := testMessage("jane@customer.example")
	return append(m, bytes.Repeat([]byte("Please write to me about my order, thanks a lot.\r\n"), 20)...)
}
