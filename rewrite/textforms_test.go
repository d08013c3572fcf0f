package rewrite

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/textforms"
)

// bounce is a delivery report (RFC 6522) returning the original header in
// a text/rfc822-headers part, as every MTA that does not return the whole
// message sends it.
func bounce(headersCTE, headers string) []byte {
	return []byte("From: MAILER-DAEMON@company.example\r\nTo: support@company.example\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n" +
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.company.example\r\n\r\n" +
		"Final-Recipient: rfc822; jane@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"--b\r\nContent-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: " + headersCTE + "\r\n\r\n" +
		headers + "--b--\r\n")
}

const returnedHeaders = "From: Jane Doe <jane@example.net>\r\nTo: \"Bob Roe\" <bob@example.org>, support@company.example\r\n" +
	"Cc: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\r\nSubject: order 1234\r\nMessage-ID: <m1@example.net>\r\n"

// TestRFC822HeadersDisplayNames: the fields of a text/rfc822-headers part
// get the display-name policy of the message's own header. Before issue
// 17 they were scanned as plain text: the addresses were tokenized and
// "Jane Doe" reached the CRM as she wrote it.
func TestRFC822HeadersDisplayNames(t *testing.T) {
	tests := []struct {
		policy, cte string
		want, not   []string
	}{
		{NamesPseudonymize, "7bit", []string{"From: Customer ", "To: Customer ", "Message-ID: <m1@example.net>"}, []string{"Jane", "Bob", "J=C3=B6rg", "Jörg"}},
		{NamesDrop, "7bit", []string{"From: <t1-", "To: <t1-"}, []string{"Jane", "Bob", "Customer"}},
		{NamesKeep, "7bit", []string{"From: Jane Doe <t1-", "Bob Roe"}, []string{"Customer"}},
		{NamesPseudonymize, "quoted-printable", []string{"From: Customer "}, []string{"Jane", "Bob"}},
		{NamesPseudonymize, "base64", []string{"From: Customer "}, []string{"Jane", "Bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.policy+"/"+tt.cte, func(t *testing.T) {
			headers := returnedHeaders
			switch tt.cte {
			case "quoted-printable":
				headers = string(encodeCTE(&mimeHeader{}, tt.cte, []byte(headers), "\r\n", true))
			case "base64":
				headers = string(wrapBase64([]byte(headers), "\r\n"))
			}
			msg := bounce(tt.cte, headers)
			rw, _ := newTestRewriter(t, RewriteOptions{DisplayNames: tt.policy})
			out, _, err := runInbound(t, rw, msg)
			if err != nil {
				t.Fatal(err)
			}
			_, part, _ := bytes.Cut(out, []byte("Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: "+tt.cte+"\r\n\r\n"))
			content, _ := decodeCTE(tt.cte, part)
			text := string(content)
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("%q missing from the returned header:\n%s", w, text)
				}
			}
			for _, n := range append(tt.not, "jane@example.net", "bob@example.org", "joerg@example.de") {
				if strings.Contains(text, n) {
					t.Errorf("%q left in the returned header:\n%s", n, text)
				}
			}
			back, err := runOutbound(t, rw, out)
			if err != nil {
				t.Fatal(err)
			}
			_, part, _ = bytes.Cut(back, []byte("text/rfc822-headers\r\nContent-Transfer-Encoding: "+tt.cte+"\r\n\r\n"))
			content, _ = decodeCTE(tt.cte, part)
			if !bytes.Contains(content, []byte("From: Jane Doe <jane@example.net>")) || !bytes.Contains(content, []byte("bob@example.org")) {
				t.Errorf("outbound did not restore the returned header:\n%s", content)
			}
		})
	}
}

// TestRFC822HeadersBrokenSection: a returned header that ends in a line
// that is no field (a truncated bounce) is still rewritten, the rest as
// text, and an unchanged one stays byte-identical.
func TestRFC822HeadersBrokenSection(t *testing.T) {
	rw, _ := newTestRewriter(t, RewriteOptions{})
	msg := bounce("7bit", "From: Jane <jane@example.net>\r\nthis line is no field jane@example.net\r\nmore text bob@example.org\r\n")
	out, _, err := runInbound(t, rw, msg)
	if err != nil || bytes.Contains(out, []byte("@example.")) || bytes.Contains(out, []byte("Jane")) {
		t.Fatalf("err %v:\n%s", err, out)
	}
	clean := bounce("7bit", "From: Support <support@company.example>\r\nSubject: x\r\n")
	clean = bytes.ReplaceAll(clean, []byte("jane@example.net"), []byte("agent@crm.example"))
	out, _, err = runInbound(t, rw, clean)
	if err != nil || !bytes.Equal(out, clean) {
		t.Fatalf("err %v; an unchanged bounce is not byte-identical:\n%s", err, out)
	}
}

// TestFlowedSoftBreakInAddress: a format=flowed; delsp=yes body whose
// soft line break falls inside an address (RFC 3676). Before issue 17 the
// two halves were scanned apart and the address reached the CRM.
func TestFlowedSoftBreakInAddress(t *testing.T) {
	for _, cte := range []string{"7bit", "quoted-printable", "base64"} {
		t.Run(cte, func(t *testing.T) {
			text := "Hallo, bitte antworten Sie an jane.doe@exa \r\nmple.com oder an \r\n> bob.roe@exam \r\n> ple.org  \r\n> danke\r\n"
			var body []byte
			switch cte {
			case "quoted-printable":
				body = encodeCTE(&mimeHeader{}, cte, []byte(text), "\r\n", true)
			case "base64":
				body = wrapBase64([]byte(text), "\r\n")
			default:
				body = []byte(text)
			}
			msg := append([]byte("From: support@company.example\r\nContent-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n"+
				"Content-Transfer-Encoding: "+cte+"\r\n\r\n"), body...)
			rw, _ := newTestRewriter(t, RewriteOptions{})
			out, rep, err := runInbound(t, rw, msg)
			if err != nil {
				t.Fatal(err)
			}
			_, raw, _ := bytes.Cut(out, []byte("\r\n\r\n"))
			got, _ := decodeCTE(cte, raw)
			read := textforms.Unflow(string(got))
			if len(rep.Tokens) != 2 || strings.Contains(read, "@exa") || strings.Count(read, "@relay.company.example") != 2 {
				t.Fatalf("%d tokens; the reader sees:\n%s", len(rep.Tokens), read)
			}
			if !strings.Contains(string(got), " \r\n") {
				t.Errorf("soft breaks lost:\n%q", got)
			}
			back, err := runOutbound(t, rw, out)
			if err != nil {
				t.Fatal(err)
			}
			_, raw, _ = bytes.Cut(back, []byte("\r\n\r\n"))
			got, _ = decodeCTE(cte, raw)
			if r := textforms.Unflow(string(got)); !strings.Contains(r, "jane.doe@example.com oder") || !strings.Contains(r, "bob.roe@example.org danke") {
				t.Errorf("outbound: the reader sees:\n%s", r)
			}
		})
	}
}

// TestGlobalHeadersDisplayNames: message/global-headers (RFC 6533, the
// UTF-8 form of text/rfc822-headers) gets the same policy.
func TestGlobalHeadersDisplayNames(t *testing.T) {
	msg := []byte("From: MAILER-DAEMON@company.example\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: message/global-headers\r\n\r\nFrom: Jörg Doe <joerg@example.net>\r\nTo: bob@example.org\r\n--b--\r\n")
	rw, _ := newTestRewriter(t, RewriteOptions{})
	out, _, err := runInbound(t, rw, msg)
	if err != nil || bytes.Contains(out, []byte("Jörg")) || bytes.Contains(out, []byte("@example.")) || !bytes.Contains(out, []byte("From: Customer ")) {
		t.Fatalf("err %v:\n%s", err, out)
	}
}
