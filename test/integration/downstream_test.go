package integration

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/smtp"
	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
	"github.com/tokenproxy/tokenproxy/test/dnstest"
)

// smtpSend sends one message with go-smtp's client (STARTTLS when asked,
// the proxy's self-signed certificate not verified: this is the client's
// side, not what is tested) and returns the first refusal.
func smtpSend(t *testing.T, addr string, startTLS bool, from string, opts *gosmtp.MailOptions, to, msg string) error {
	t.Helper()
	dial := gosmtp.Dial
	if startTLS {
		dial = func(addr string) (*gosmtp.Client, error) {
			return gosmtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
		}
	}
	c, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(from, opts); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func wantReply(t *testing.T, err error, code int, enh gosmtp.EnhancedCode, what string) {
	t.Helper()
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code != code || se.EnhancedCode != enh {
		t.Fatalf("%s: %v, want %d %d.%d.%d", what, err, code, enh[0], enh[1], enh[2])
	}
}

// TestServeInternationalAndEightBitWithSmtpSink drives the real binary
// against Postfix's smtp-sink, which offers no SMTPUTF8, as the CRM intake
// (with 8BITMIME) and as the smarthost (-8: no 8BITMIME either):
//   - a customer jörg@bücher.example writes with SMTPUTF8; after
//     tokenizing nothing needs it, and the CRM gets the message (issue 16:
//     451 4.4.2 because the client had said SMTPUTF8);
//   - the CRM's reply to jörg's token cannot go to a smarthost without
//     SMTPUTF8: 553 5.6.7 at RCPT (permanent), nothing delivered;
//   - a reply with an 8-bit body to an ASCII customer reaches the 7-bit
//     smarthost as quoted-printable MIME that decodes to the original text
//     (issue 16: sent unconverted).
func TestServeInternationalAndEightBitWithSmtpSink(t *testing.T) {
	crmPort, crmDir := startSink(t)
	smartPort, smartDir := startSinkArgs(t, "-8")
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), fmt.Sprintf("127.0.0.1:%d", smartPort), "debug",
		"client_networks: [127.0.0.0/8]")
	p := startServe(t, sv.config, sv.admin)
	inAddr, outAddr := fmt.Sprintf("127.0.0.1:%d", sv.inPort), fmt.Sprintf("127.0.0.1:%d", sv.outPort)

	const jorg = "jörg@bücher.example"
	err := smtpSend(t, inAddr, true, jorg, &gosmtp.MailOptions{UTF8: true}, "support@company.example",
		"From: Jörg <"+jorg+">\r\nTo: support@company.example\r\nSubject: order 77\r\n\r\nmy address: "+jorg+"\r\n")
	if err != nil {
		t.Fatalf("inbound from %s: %v\n%s", jorg, err, p.log.String())
	}
	crm := waitSink(t, crmDir, 1)[0]
	tok := regexp.MustCompile(`X-Mail-Args: <(t1-[a-z2-7]+@relay\.company\.example)>`).FindStringSubmatch(crm)
	if tok == nil || strings.Contains(crm, "jörg") || strings.Contains(crm, "SMTPUTF8") {
		t.Fatalf("CRM message (no customer address, no SMTPUTF8 wanted):\n%s", crm)
	}

	reply := "From: Support <support@crm.example>\r\nTo: " + tok[1] + "\r\nSubject: Re: order 77\r\n\r\nHallo\r\n"
	err = smtpSend(t, outAddr, true, "support@crm.example", nil, tok[1], reply)
	wantReply(t, err, 553, gosmtp.EnhancedCode{5, 6, 7}, "reply to "+jorg+" through a smarthost without SMTPUTF8")

	const text = "Grüße aus Köln — 10 €, ünïcödé.\r\nZweite Zeile.\r\n"
	janeTok := tokenFor(t, inAddr, crmDir, "jane.doe@example.com", 2)
	eight := "From: Support <support@crm.example>\r\nTo: " + janeTok + "\r\nSubject: Re: order 78\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text
	if err := smtpSend(t, outAddr, true, "support@crm.example", &gosmtp.MailOptions{Body: gosmtp.Body8BitMIME}, janeTok, eight); err != nil {
		t.Fatalf("8-bit reply: %v\n%s", err, p.log.String())
	}
	smart := waitSink(t, smartDir, 1)
	if len(smart) != 1 {
		t.Fatalf("smarthost got %d messages: want only the 8-bit reply", len(smart))
	}
	got := smart[0]
	if strings.ContainsFunc(got, func(r rune) bool { return r >= 0x80 }) || !strings.Contains(got, "Content-Transfer-Encoding: quoted-printable") {
		t.Fatalf("smarthost message is not 7-bit quoted-printable:\n%s", got)
	}
	_, body, _ := strings.Cut(strings.ReplaceAll(got, "\r\n", "\n"), "\n\n")
	decoded, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	if err != nil || !strings.Contains(strings.ReplaceAll(string(decoded), "\r\n", "\n"), strings.ReplaceAll(text, "\r\n", "\n")) {
		t.Fatalf("decoded body %q (%v), want %q\n%s", decoded, err, text, got)
	}
	if mt, params, _ := mime.ParseMediaType(headerValue(got, "Content-Type")); mt != "text/plain" || params["charset"] != "utf-8" {
		t.Fatalf("Content-Type %s %v", mt, params)
	}
	for _, c := range []string{"jörg", "jane.doe@example.com"} {
		if strings.Contains(p.log.String(), c) {
			t.Errorf("the log names %s", c)
		}
	}
}

// tokenFor sends a message from customer through the inbound route and
// returns the token the CRM saw as its envelope sender (the CRM sink's
// n-th message).
func tokenFor(t *testing.T, inAddr, crmDir, customer string, n int) string {
	t.Helper()
	var opts *gosmtp.MailOptions
	if strings.ContainsFunc(customer, func(r rune) bool { return r >= 0x80 }) {
		opts = &gosmtp.MailOptions{UTF8: true}
	}
	if err := smtpSend(t, inAddr, true, customer, opts, "support@company.example",
		"From: <"+customer+">\r\nTo: support@company.example\r\nSubject: hi\r\n\r\nhi\r\n"); err != nil {
		t.Fatal(err)
	}
	for _, m := range waitSink(t, crmDir, n) {
		if strings.Contains(m, "Subject: hi") {
			if tok := regexp.MustCompile(`X-Mail-Args: <(t1-[a-z2-7]+@relay\.company\.example)>`).FindStringSubmatch(m); tok != nil {
				return tok[1]
			}
		}
	}
	t.Fatal("no token for the customer at the CRM")
	return ""
}

// headerValue is the first value of a header field in a dumped message.
func headerValue(msg, name string) string {
	for _, l := range strings.Split(strings.ReplaceAll(msg, "\r\n", "\n"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestServeSMTPUTF8ThroughPostfix: the CRM's reply to the token of
// jörg@bücher.example goes to a real Postfix smarthost with SMTPUTF8
// (issue 16: without it, and the smarthost answered 501 5.1.3), and
// Postfix passes it on with SMTPUTF8 to the next hop, which gets the
// restored address.
func TestServeSMTPUTF8ThroughPostfix(t *testing.T) {
	final := &downstreamtest.Sink{SMTPUTF8: true}
	finalAddr := downstreamtest.Start(t, final, nil)
	_, finalPort, _ := net.SplitHostPort(finalAddr)
	fp, _ := strconv.Atoi(finalPort)
	pfPort, pfLog := startPostfixRelay(t, fp)
	crmPort, crmDir := startSink(t)
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), fmt.Sprintf("127.0.0.1:%d", pfPort), "debug",
		"client_networks: [127.0.0.0/8]")
	p := startServe(t, sv.config, sv.admin)
	inAddr, outAddr := fmt.Sprintf("127.0.0.1:%d", sv.inPort), fmt.Sprintf("127.0.0.1:%d", sv.outPort)

	const jorg = "jörg@bücher.example"
	tok := tokenFor(t, inAddr, crmDir, jorg, 1)
	reply := "From: Support <support@crm.example>\r\nTo: Jörg <" + tok + ">\r\nSubject: Re: order 77\r\n\r\nHallo " + tok + "\r\n"
	if err := smtpSend(t, outAddr, true, "support@crm.example", nil, tok, reply); err != nil {
		t.Fatalf("reply to %s: %v\nproxy:\n%s\npostfix:\n%s", jorg, err, p.log.String(), pfLog.String())
	}
	waitLog(t, pfLog, "status=sent")
	st := final.Stats()
	if len(st.Messages) != 1 || len(st.UTF8Mail) != 1 || !st.UTF8Mail[0] {
		t.Fatalf("next hop: %d messages, SMTPUTF8 %v; want one with SMTPUTF8\npostfix:\n%s", len(st.Messages), st.UTF8Mail, pfLog.String())
	}
	// The body's restored address is quoted-printable: the rewriter
	// re-encodes a 7bit part that gained UTF-8 (rewrite/text.go).
	_, body, _ := strings.Cut(st.Messages[0], "\r\n\r\n")
	decoded, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	if !strings.Contains(st.Messages[0], "To: Jörg <"+jorg+">") || !strings.Contains(string(decoded), "Hallo "+jorg) ||
		!strings.Contains(st.Messages[0], "with UTF8SMTP") {
		t.Fatalf("the restored message:\n%s", st.Messages[0])
	}
	if strings.Contains(p.log.String(), "jörg") {
		t.Error("the proxy log names the customer")
	}
}

// TestServeSmarthostAuthFailover drives the real binary with an outbound
// downstream of two hosts: the first refuses connections, the second is a
// smarthost that requires STARTTLS (verified against ca_file) and AUTH
// (the password from password_file). The reply goes to the second host,
// logged in; the password is in no log; /metrics counts per host:port.
func TestServeSmarthostAuthFailover(t *testing.T) {
	const password = "Smarthost-Pa55-for-the-test"
	dir := t.TempDir()
	caFile, pair := smarthostTLS(t, dir)
	pwFile := filepath.Join(dir, "smarthost.pw")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	smart := &downstreamtest.Sink{RequireTLS: true, Users: map[string]string{"relay": password}}
	live := downstreamtest.Start(t, smart, &tls.Config{Certificates: []tls.Certificate{pair}})
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))

	crmPort, crmDir := startSink(t)
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), dead, "debug", "client_networks: [127.0.0.0/8]")
	rewriteConfig(t, sv.config, fmt.Sprintf(`downstream: {address: "%s", tls: insecure}`, dead),
		fmt.Sprintf(`downstream: {addresses: ["%s", "%s"], ca_file: %s, auth: {username: relay, password_file: %s}}`, dead, live, caFile, pwFile))
	p := startServe(t, sv.config, sv.admin)
	inAddr, outAddr := fmt.Sprintf("127.0.0.1:%d", sv.inPort), fmt.Sprintf("127.0.0.1:%d", sv.outPort)

	tok := tokenFor(t, inAddr, crmDir, "jane.doe@example.com", 1)
	reply := "From: Support <support@crm.example>\r\nTo: " + tok + "\r\nSubject: Re: hi\r\n\r\nHello\r\n"
	if err := smtpSend(t, outAddr, true, "support@crm.example", nil, tok, reply); err != nil {
		t.Fatalf("reply: %v\n%s", err, p.log.String())
	}
	st := smart.Stats()
	if len(st.Messages) != 1 || len(st.Authed) != 1 || st.Authed[0] != "relay" || !st.TLSMail[0] {
		t.Fatalf("smarthost: %d messages, logins %v, TLS %v", len(st.Messages), st.Authed, st.TLSMail)
	}
	_, metrics := httpGet("http://" + sv.admin + "/metrics")
	for _, want := range []string{
		fmt.Sprintf(`tokenproxy_downstream_host_events_total{host="%s",result="failover",route="outbound"} 1`, dead),
		fmt.Sprintf(`tokenproxy_downstream_host_events_total{host="%s",result="delivered",route="outbound"} 1`, live),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(p.log.String(), password) {
		t.Fatal("the smarthost password is in the log")
	}
}

// TestServeInboundMX drives the real binary with the CRM intake given as
// mx: a domain, looked up through the configured resolver (a loopback DNS
// server, inbound.auth_check.dns_server): the customer's message reaches
// Postfix's smtp-sink at the MX host's address.
func TestServeInboundMX(t *testing.T) {
	crmPort, crmDir := startSink(t)
	dns := dnstest.Start(t)
	dns.MX("intake.crm.test", 10, "mx1.intake.crm.test")
	dns.A("mx1.intake.crm.test", "127.0.0.1")
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), fmt.Sprintf("127.0.0.1:%d", freePort(t)), "debug",
		"client_networks: [127.0.0.0/8]")
	rewriteConfig(t, sv.config, fmt.Sprintf(`downstream: {address: "127.0.0.1:%d", tls: insecure}`, crmPort),
		fmt.Sprintf(`downstream: {mx: intake.crm.test, mx_port: %d, tls: insecure, allow_insecure_remote: true}`, crmPort))
	rewriteConfig(t, sv.config, "auth_check: {enabled: false}", fmt.Sprintf(`auth_check: {enabled: false, dns_server: "%s"}`, dns.Addr))
	p := startServe(t, sv.config, sv.admin)
	tokenFor(t, fmt.Sprintf("127.0.0.1:%d", sv.inPort), crmDir, "jane.doe@example.com", 1)
	_, metrics := httpGet("http://" + sv.admin + "/metrics")
	want := fmt.Sprintf(`tokenproxy_downstream_host_events_total{host="mx1.intake.crm.test:%d",result="delivered",route="inbound"} 1`, crmPort)
	if !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s\n%s", want, p.log.String())
	}
}

// TestServeClientCertificateReload: the outbound route presents its
// client certificate to a smarthost that requires one (a
// certificate-identified connector); after the files are replaced, SIGHUP
// makes the next connection present the new one.
func TestServeClientCertificateReload(t *testing.T) {
	dir := t.TempDir()
	caFile, pair := smarthostTLS(t, dir)
	var mu sync.Mutex
	var presented []string // the client certificates seen, in order
	srvTLS := &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			mu.Lock()
			defer mu.Unlock()
			presented = append(presented, fmt.Sprintf("%x", sha256.Sum256(cs.PeerCertificates[0].Raw)))
			return nil
		}}
	smart := &downstreamtest.Sink{RequireTLS: true}
	live := downstreamtest.Start(t, smart, srvTLS)

	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	writeClient := func() string {
		c, k, err := smtp.SelfSignedPair([]string{"relay.company.example"}, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for f, b := range map[string][]byte{certFile: c, keyFile: k} {
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		block, _ := pem.Decode(c)
		return fmt.Sprintf("%x", sha256.Sum256(block.Bytes))
	}
	first := writeClient()
	crmPort, crmDir := startSink(t)
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), dead, "debug", "client_networks: [127.0.0.0/8]")
	rewriteConfig(t, sv.config, fmt.Sprintf(`downstream: {address: "%s", tls: insecure}`, dead),
		fmt.Sprintf(`downstream: {address: "%s", ca_file: %s, client_cert_file: %s, client_key_file: %s}`, live, caFile, certFile, keyFile))
	p := startServe(t, sv.config, sv.admin)
	inAddr, outAddr := fmt.Sprintf("127.0.0.1:%d", sv.inPort), fmt.Sprintf("127.0.0.1:%d", sv.outPort)
	tok := tokenFor(t, inAddr, crmDir, "jane.doe@example.com", 1)
	reply := "From: Support <support@crm.example>\r\nTo: " + tok + "\r\nSubject: Re: hi\r\n\r\nHello\r\n"
	if err := smtpSend(t, outAddr, true, "support@crm.example", nil, tok, reply); err != nil {
		t.Fatalf("reply: %v\n%s", err, p.log.String())
	}
	second := writeClient()
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.log.String(), `"event":"reload"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload event after SIGHUP:\n%s", p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := smtpSend(t, outAddr, true, "support@crm.example", nil, tok, reply); err != nil {
		t.Fatalf("reply after the reload: %v\n%s", err, p.log.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(smart.Stats().Messages) != 2 || len(presented) != 2 || presented[0] != first || presented[1] != second {
		t.Fatalf("smarthost: %d messages, client certificates %v; want the first, then the second (%s, %s)",
			len(smart.Stats().Messages), presented, first, second)
	}
}

// smarthostTLS makes a self-signed certificate for 127.0.0.1 (as the
// proxy makes its own, smtp.SelfSignedPair), writes it to dir/ca.pem for
// the downstream's ca_file and returns that file and the pair the
// smarthost serves.
func smarthostTLS(t *testing.T, dir string) (caFile string, pair tls.Certificate) {
	t.Helper()
	certPEM, keyPEM, err := smtp.SelfSignedPair([]string{"127.0.0.1"}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, pair
}
