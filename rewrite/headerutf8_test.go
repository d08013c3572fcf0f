package rewrite

import "testing"

// TestReportHeaderUTF8: the report says when a written header section, the
// message's or any MIME part's, carries 8-bit octets (the next hop then
// needs SMTPUTF8, RFC 6532 §3); an 8-bit body does not count.
func TestReportHeaderUTF8(t *testing.T) {
	const top = "From: jane.doe@example.com\r\nTo: support@company.example\r\nMIME-Version: 1.0\r\n"
	multi := func(part string) string {
		return top + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße\r\n--b\r\n" +
			part + "\r\n\r\nAAAA\r\n--b--\r\n"
	}
	for _, tc := range []struct {
		name, msg string
		want      bool
	}{
		{"ASCII", top + "Subject: hi\r\n\r\nhello\r\n", false},
		{"8-bit body only", multi("Content-Type: application/pdf; name=\"r.pdf\"\r\nContent-Transfer-Encoding: base64"), false},
		{"RFC 2231 file name", multi("Content-Disposition: attachment; filename*=utf-8''M%C3%A4rz.pdf\r\nContent-Transfer-Encoding: base64"), false},
		{"message header", top + "Subject: Grüße\r\n\r\nhello\r\n", true},
		{"part's file name", multi("Content-Disposition: attachment; filename=\"März.pdf\"\r\nContent-Transfer-Encoding: base64"), true},
		{"nested message", top + "Content-Type: message/rfc822\r\n\r\nFrom: a@company.example\r\nSubject: Grüße\r\n\r\nhi\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rw, _ := newTestRewriter(t, RewriteOptions{})
			_, rep, err := runInbound(t, rw, []byte(tc.msg))
			if err != nil {
				t.Fatal(err)
			}
			if rep.HeaderUTF8 != tc.want {
				t.Fatalf("HeaderUTF8 %v, want %v", rep.HeaderUTF8, tc.want)
			}
		})
	}
}
