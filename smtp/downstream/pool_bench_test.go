package downstream

import (
	"context"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
)

// BenchmarkDownstreamSend5KB: one transaction of a 5 KB ASCII message over
// a pooled connection to a go-smtp sink on loopback: the client's cost per
// message (the header peek of issue 16 included), and the sink's.
func BenchmarkDownstreamSend5KB(b *testing.B) {
	sink := &downstreamtest.Sink{}
	d := newDS(b, downstreamtest.Start(b, sink, nil), nil, nil)
	msg := "From: support@company.example\r\nTo: jane.doe@example.com\r\nSubject: Re: order 1234\r\n" +
		"Message-ID: <abc@company.example>\r\n\r\n" + strings.Repeat("A line of a customer reply, quoted.\r\n", 135)
	ctx := context.Background()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := send(ctx, d, msg, "jane.doe@example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
