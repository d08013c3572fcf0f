package downstream

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
)

// TestPrecheck: what a transaction foresees before the caller commits to a
// message, per hop (8BITMIME, SMTPUTF8) and policy, with WholeFirst (the
// answer needs the whole message) and UTF8Refusal (asked before a message
// streams); Precheck sends nothing, and the transaction still takes an
// acceptable message afterwards.
func TestPrecheck(t *testing.T) {
	const (
		ascii     = "Subject: x\r\n\r\nhello\r\n"
		body8     = "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße\r\n"
		head8     = "Subject: Grüße\r\n\r\nhello\r\n"
		badBase64 = "Subject: x\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\xff\r\n"
	)
	for _, tc := range []struct {
		name            string
		no8bit, utf8    bool
		policy          string
		partUTF8        bool
		msg             string
		complete        bool
		want            error
		whole, refusesU bool
	}{
		{name: "8BITMIME hop, 8-bit body", msg: body8, complete: true, refusesU: true},
		{name: "8BITMIME hop, 8-bit header", msg: head8, complete: true, want: ErrNoSMTPUTF8, refusesU: true},
		{name: "8BITMIME hop, part header", partUTF8: true, msg: ascii, complete: true, want: ErrNoSMTPUTF8, refusesU: true},
		{name: "8BITMIME hop, 8-bit header not all here", msg: "Subject: Grü", want: ErrNoSMTPUTF8, refusesU: true},
		{name: "SMTPUTF8 hop, part header", utf8: true, partUTF8: true, msg: ascii, complete: true},
		{name: "7-bit hop, refuse, 8-bit body", no8bit: true, policy: EightBitRefuse, msg: body8, complete: true, want: ErrNo8BitMIME, whole: true, refusesU: true},
		{name: "7-bit hop, refuse, 8-bit body not all here", no8bit: true, policy: EightBitRefuse, msg: body8, whole: true, refusesU: true},
		{name: "7-bit hop, refuse, ASCII", no8bit: true, policy: EightBitRefuse, msg: ascii, complete: true, whole: true, refusesU: true},
		{name: "7-bit hop, convert, 8-bit body", no8bit: true, policy: EightBitConvert, msg: body8, complete: true, whole: true, refusesU: true},
		{name: "7-bit hop, convert, unconvertible", no8bit: true, policy: EightBitConvert, msg: badBase64, complete: true, want: ErrNo8BitMIME, whole: true, refusesU: true},
		{name: "7-bit SMTPUTF8 hop, 8-bit header and body", no8bit: true, utf8: true, policy: EightBitRefuse, msg: "Subject: Grüße\r\n\r\nGrüße\r\n", complete: true, whole: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &downstreamtest.Sink{No8BitMIME: tc.no8bit, SMTPUTF8: tc.utf8}
			d, err := New(Config{Address: downstreamtest.Start(t, sink, nil), TLS: TLSInsecure, HeloName: "proxy.test",
				Timeout: 2 * time.Second, EightBit: tc.policy}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close() })
			ctx := dsCtx(t)
			txn, err := d.Begin(ctx, "from@relay.test", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer txn.Abort()
			if err := txn.Rcpt(ctx, "a@crm.test"); err != nil {
				t.Fatal(err)
			}
			if tc.partUTF8 {
				txn.PartHeadersUTF8()
			}
			if got := txn.WholeFirst(); got != tc.whole {
				t.Errorf("WholeFirst %v, want %v", got, tc.whole)
			}
			if got := txn.UTF8Refusal(); (got != nil) != tc.refusesU || got != nil && !errors.Is(got, ErrNoSMTPUTF8) {
				t.Errorf("UTF8Refusal %v, want a refusal: %v", got, tc.refusesU)
			}
			err = txn.Precheck([]byte(tc.msg), tc.complete)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Precheck: %v, want %v", err, tc.want)
			}
			if n := len(sink.Stats().Messages); n != 0 {
				t.Fatalf("Precheck sent %d messages", n)
			}
			if tc.want == nil && tc.complete {
				if err := txn.Data(ctx, strings.NewReader(tc.msg)); err != nil {
					t.Fatalf("Data after a passed Precheck: %v", err)
				}
			}
		})
	}
}
