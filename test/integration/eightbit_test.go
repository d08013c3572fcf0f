package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/audit"
)

// TestServeEightBitRefusedLeavesNoToken drives the real binary with a CRM
// intake that offers no 8BITMIME (Postfix's smtp-sink -8) and the inbound
// downstream's eight_bit: refuse. An 8-bit customer message larger than
// the 32 KiB the route holds before streaming, from a new customer naming
// another, is refused 554 5.6.3 and leaves no token: the trail gets no
// creation record for it (issue 16 follow-up: its tokens were committed
// before the refusal). A 7-bit message as large, from another new
// customer, is relayed, and its one creation record is the trail's only.
func TestServeEightBitRefusedLeavesNoToken(t *testing.T) {
	crmPort, crmDir := startSinkArgs(t, "-8")
	smartPort, _ := startSink(t)
	crm := fmt.Sprintf("127.0.0.1:%d", crmPort)
	sv := writeServeConfig(t, crm, fmt.Sprintf("127.0.0.1:%d", smartPort), "info", "client_networks: [127.0.0.0/8]")
	inbound := fmt.Sprintf(`downstream: {address: "%s", tls: insecure}`, crm)
	rewriteConfig(t, sv.config, inbound, strings.TrimSuffix(inbound, "}")+", eight_bit: refuse}")
	p := startServe(t, sv.config, sv.admin)
	inAddr := fmt.Sprintf("127.0.0.1:%d", sv.inPort)

	line := "Grüße aus Köln, die Lieferung ist unvollständig angekommen.\r\n"
	eight := "From: <refused.customer@example.com>\r\nTo: support@company.example\r\nSubject: order 79\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		strings.Repeat(line, 2000) + "Or write to carol.refused@example.org.\r\n"
	err := smtpSend(t, inAddr, true, "refused.customer@example.com", &gosmtp.MailOptions{Body: gosmtp.Body8BitMIME}, "support@company.example", eight)
	wantReply(t, err, 554, gosmtp.EnhancedCode{5, 6, 3}, "an 8-bit message of 130 KB to a CRM without 8BITMIME, eight_bit: refuse")

	seven := "From: <jane.seven@example.com>\r\nTo: support@company.example\r\nSubject: order 80\r\n\r\n" +
		strings.Repeat("the parcel arrived damaged, please send a new one soon\r\n", 2500)
	if err := smtpSend(t, inAddr, true, "jane.seven@example.com", nil, "support@company.example", seven); err != nil {
		t.Fatalf("7-bit message: %v\n%s", err, p.log.String())
	}
	if got := waitSink(t, crmDir, 1); len(got) != 1 || !strings.Contains(got[0], "Subject: order 80") {
		t.Fatalf("the CRM got %d messages, want the 7-bit one only", len(got))
	}
	// The 7-bit message's creation record follows any the refused one
	// would have committed (the outbox is delivered in order).
	trail := filepath.Join(sv.dataDir, "audit.jsonl")
	created := waitTokenCreated(t, trail)
	if created != 1 {
		t.Fatalf("%d token.created records, want 1 (the 7-bit message's sender)\n%s", created, p.log.String())
	}
	for _, c := range []string{"refused.customer@example.com", "carol.refused@example.org", "jane.seven@example.com"} {
		if strings.Contains(p.log.String(), c) {
			t.Errorf("the log names %s", c)
		}
	}
}

// TestServePartHeaderUTF8WithSmtpSink: a customer message whose
// attachment has a raw UTF-8 file name (RFC 6532 in a MIME part header),
// to Postfix's smtp-sink as the CRM intake (8BITMIME, no SMTPUTF8), is
// refused 553 5.6.7, held or streamed, and creates no token (issue 16
// follow-up: it went out as it was, a header 8BITMIME does not carry);
// the same message with the file name encoded per RFC 2231 is relayed.
func TestServePartHeaderUTF8WithSmtpSink(t *testing.T) {
	crmPort, crmDir := startSink(t)
	smartPort, _ := startSink(t)
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), fmt.Sprintf("127.0.0.1:%d", smartPort), "info", "client_networks: [127.0.0.0/8]")
	p := startServe(t, sv.config, sv.admin)
	inAddr := fmt.Sprintf("127.0.0.1:%d", sv.inPort)
	msg := func(from, disposition string, lines int) string {
		return "From: <" + from + ">\r\nTo: support@company.example\r\nSubject: invoice\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
			strings.Repeat("see the attached invoice, it lists the missing items\r\n", lines) +
			"--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; " + disposition +
			"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"
	}
	opts := &gosmtp.MailOptions{Body: gosmtp.Body8BitMIME}
	for _, lines := range []int{1, 2500} {
		err := smtpSend(t, inAddr, true, "raw.name@example.com", opts, "support@company.example", msg("raw.name@example.com", `filename="Rechnung-März.pdf"`, lines))
		wantReply(t, err, 553, gosmtp.EnhancedCode{5, 6, 7}, fmt.Sprintf("a raw UTF-8 file name, %d lines", lines))
	}
	if err := smtpSend(t, inAddr, true, "encoded.name@example.com", opts, "support@company.example",
		msg("encoded.name@example.com", `filename*=utf-8''Rechnung-M%C3%A4rz.pdf`, 2500)); err != nil {
		t.Fatalf("an RFC 2231 file name: %v\n%s", err, p.log.String())
	}
	if got := waitSink(t, crmDir, 1); len(got) != 1 || !strings.Contains(got[0], "Rechnung-M%C3%A4rz.pdf") {
		t.Fatalf("the CRM got %d messages, want the encoded one only", len(got))
	}
	trail := filepath.Join(sv.dataDir, "audit.jsonl")
	created := waitTokenCreated(t, trail)
	if created != 1 {
		t.Fatalf("%d token.created records, want 1 (the relayed message's sender)", created)
	}
}

// waitTokenCreated waits up to 30 s for the first token.created record in
// the trail (the outbox delivers records after the reply) and returns how
// many there are then.
func waitTokenCreated(t *testing.T, trail string) int {
	t.Helper()
	var created int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if created = countEvents(t, trail, audit.TokenCreated); created > 0 {
			break
		}
	}
	return created
}
