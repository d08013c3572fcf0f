package integration

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/dnstest"
	"github.com/tokenproxy/tokenproxy/test/logbuf"
	"github.com/tokenproxy/tokenproxy/test/tools"
)

// The addresses of the gateway tests, all on loopback (Linux routes the
// whole of 127.0.0.0/8 to lo): the company gateway (a real Postfix, the
// trusted relay), the customer's authorized server, and a server the
// customer's SPF record does not name.
const (
	gatewayIP      = "127.0.0.3"
	customerIP     = "127.0.0.5"
	unauthorizedIP = "127.0.0.6"
)

// gatewayCustomerDNS publishes customer.example: SPF naming customerIP
// only, "-all", and DMARC p=reject. Unsigned mail from it passes DMARC only
// when SPF is judged for customerIP.
func gatewayCustomerDNS(t *testing.T) *dnstest.Server {
	z := dnstest.Start(t)
	z.TXT("customer.example", "v=spf1 ip4:"+customerIP+" -all")
	z.TXT("_dmarc.customer.example", "v=DMARC1; p=reject")
	return z
}

// writeGatewayProxyConfig is writeServeConfig (both routes to the CRM's
// sink, debug log) with the inbound check on (DNS from z) and the gateway
// as trusted relay.
func writeGatewayProxyConfig(t *testing.T, z *dnstest.Server, crmPort int) served {
	t.Helper()
	crm := fmt.Sprintf("127.0.0.1:%d", crmPort)
	sv := writeServeConfig(t, crm, crm, "debug", "")
	rewriteConfig(t, sv.config, "auth_check: {enabled: false}", fmt.Sprintf(`trusted_relays: [%s/32]
  postmaster: it-mail@company.example
  auth_check: {enabled: true, dns_server: "%s", dns_timeout: 2s}`, gatewayIP, z.Addr))
	return sv
}

// postfixGateway is a real Postfix master with its own config_directory,
// queue and data directories, listening on gatewayIP and relaying
// company.example to the inbound route from gatewayIP. Its log goes to
// log (maillog_file /dev/stdout under start-fg).
type postfixGateway struct {
	dir, port string
	log       *logbuf.Buffer
	postfix   string
}

// Postfix runs as root here, as on a mail server: the master must be able
// to switch to the postfix user (mail_owner), and the queue and data
// directories must belong to it. The directories sit in a fresh /tmp
// directory, since t.TempDir's parents are 0700 and the postfix user
// must reach them.
func startPostfixGateway(t *testing.T, inboundPort int, extra ...string) *postfixGateway {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the Postfix gateway test runs a real Postfix master, which needs root (as in CI)")
	}
	pf := tools.Path(t, "postfix")
	dir, err := os.MkdirTemp("", "tokenproxy-gw-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	g := &postfixGateway{dir: dir, port: fmt.Sprint(freePort(t)), log: &logbuf.Buffer{}, postfix: pf}
	for _, d := range []string{"etc", "queue", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	main := []string{
		"compatibility_level = 3.6",
		"queue_directory = " + filepath.Join(dir, "queue"),
		"data_directory = " + filepath.Join(dir, "data"),
		"mail_owner = postfix", "setgid_group = postdrop",
		"inet_interfaces = loopback-only", "inet_protocols = ipv4",
		"myhostname = gw.company.example", "mydestination =", "mynetworks = 127.0.0.1/32",
		"alias_maps =", "alias_database =", "local_recipient_maps =",
		"relay_domains = company.example",
		"transport_maps = inline:{company.example=smtp:[127.0.0.1]:" + fmt.Sprint(inboundPort) + "}",
		// The gateway connects to the inbound route from its own address.
		"smtp_bind_address = " + gatewayIP,
		"smtp_dns_support_level = disabled", "smtpd_peername_lookup = no",
		"smtp_tls_security_level = may",
		"maillog_file = /dev/stdout",
		// A refused message becomes a bounce to the customer, which cannot
		// be delivered here: keep it from being retried.
		"bounce_queue_lifetime = 0", "maximal_queue_lifetime = 0",
	}
	main = append(main, extra...)
	if err := os.WriteFile(filepath.Join(dir, "etc", "main.cf"), []byte(strings.Join(main, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	master := gatewayIP + ":" + g.port + " inet n - n - - smtpd\n" + postfixServices
	if err := os.WriteFile(filepath.Join(dir, "etc", "master.cf"), []byte(master), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(dir, "data"), postfixUID(t), -1); err != nil {
		t.Fatal(err)
	}
	// postfix check creates the queue directories with their owners.
	if out, err := exec.Command(pf, "-c", filepath.Join(dir, "etc"), "check").CombinedOutput(); err != nil {
		t.Fatalf("postfix check: %v\n%s", err, out)
	}
	cmd := exec.Command(pf, "-c", filepath.Join(dir, "etc"), "start-fg")
	cmd.Stdout, cmd.Stderr = g.log, g.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		exec.Command(pf, "-c", filepath.Join(dir, "etc"), "stop").Run()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
		os.RemoveAll(dir)
	})
	waitAddr(t, gatewayIP+":"+g.port, g.log.String)
	return g
}

// postfixServices are the master.cf services a relaying gateway needs,
// none chrooted (the chroot would need copies of /etc files).
const postfixServices = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

func postfixUID(t *testing.T) int {
	t.Helper()
	u, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("no postfix user (the Debian package creates it): %v", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		t.Fatal(err)
	}
	return uid
}

// waitAddr waits until something listens on addr.
func waitAddr(t *testing.T, addr string, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s:\n%s", addr, diag())
}

// waitLog waits until the gateway's log matches every one of want, and
// returns it.
func (g *postfixGateway) waitLog(t *testing.T, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		log := g.log.String()
		all := true
		for _, w := range want {
			all = all && strings.Contains(log, w)
		}
		if all {
			return log
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway log never showed %q:\n%s", want, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// customerSend sends an unsigned message from jane@customer.example to the
// gateway from the given source address, with extra header lines.
func customerSend(t *testing.T, g *postfixGateway, from, subject, headers string) {
	t.Helper()
	args := []string{"--server", gatewayIP + ":" + g.port, "--local-interface", from,
		"--ehlo", "mx.customer.example", "--from", "jane@customer.example", "--to", "support@company.example",
		"--header", "Subject: " + subject, "--body", "my order, reach me at jane@customer.example"}
	if headers != "" {
		args = append(args, "--add-header", headers)
	}
	if code, out := swaks(t, args...); code != 0 {
		t.Fatalf("the gateway refused the customer's message (%d):\n%s\ngateway log:\n%s", code, out, g.log.String())
	}
}

// TestGatewayTrustedRelay runs the inbound route behind a real Postfix
// gateway (issue 16 item 1): SPF is judged for the customer's server that
// reached the gateway, not for the gateway; a forged Received hop is not
// believed, from the gateway's client or straight from an untrusted
// client; XFORWARD is refused from an untrusted client and, sent by the
// gateway (smtp_send_xforward_command), names the hop judged.
func TestGatewayTrustedRelay(t *testing.T) {
	z := gatewayCustomerDNS(t)
	crmPort, crmDir := startSink(t)
	sv := writeGatewayProxyConfig(t, z, crmPort)
	proxy := startServe(t, sv.config, sv.admin)
	inbound := fmt.Sprintf("127.0.0.1:%d", sv.inPort)

	t.Run("authorized origin through the gateway", func(t *testing.T) {
		defer func() {
			// Without smtp_send_xforward_command the hop comes from the
			// gateway's Received field alone.
			if strings.Contains(proxy.log.String(), `"event":"xforward"`) {
				t.Errorf("XFORWARD without smtp_send_xforward_command")
			}
		}()
		g := startPostfixGateway(t, sv.inPort)
		customerSend(t, g, customerIP, "order 1", "")
		msgs := waitSinkLong(t, crmDir, 1)
		ar := arOf(msgs[0])
		for _, want := range []string{"spf=pass", "smtp.remote-ip=" + customerIP, "policy.trusted-relay=" + gatewayIP, "dmarc=pass"} {
			if !strings.Contains(ar, want) {
				t.Fatalf("Authentication-Results lacks %s:\n%s", want, msgs[0])
			}
		}
		g.waitLog(t, "status=sent")
		if strings.Contains(msgs[0], "jane@customer.example") {
			t.Fatalf("the CRM received the customer's address:\n%s", msgs[0])
		}
	})

	t.Run("unauthorized origin through the gateway", func(t *testing.T) {
		before := len(sinkMessages(t, crmDir))
		g := startPostfixGateway(t, sv.inPort)
		customerSend(t, g, unauthorizedIP, "order 2", "")
		log := g.waitLog(t, "status=bounced")
		if !strings.Contains(log, "550 5.7.1") {
			t.Fatalf("the inbound route's refusal is not 550 5.7.1:\n%s", log)
		}
		if n := len(sinkMessages(t, crmDir)); n != before {
			t.Fatalf("the CRM received %d messages, want %d", n, before)
		}
	})

	t.Run("forged Received hop through the gateway", func(t *testing.T) {
		before := len(sinkMessages(t, crmDir))
		g := startPostfixGateway(t, sv.inPort)
		// The unauthorized server claims to have received the message
		// from the authorized one; the gateway's own field names it.
		forged := "Received: from mx.customer.example (unknown [" + customerIP + "]) by relay.customer.example with ESMTP id 1"
		customerSend(t, g, unauthorizedIP, "order 3", forged)
		g.waitLog(t, "status=bounced")
		if n := len(sinkMessages(t, crmDir)); n != before {
			t.Fatalf("the CRM received %d messages, want %d", n, before)
		}
	})

	t.Run("forged Received hop from an untrusted client", func(t *testing.T) {
		forged := "Received: from mx.customer.example (unknown [" + customerIP + "]) by gw.company.example (Postfix) with ESMTP id 1"
		code, out := swaks(t, "--server", inbound, "--local-interface", unauthorizedIP, "--ehlo", "gw.company.example",
			"--from", "jane@customer.example", "--to", "support@company.example", "--add-header", forged,
			"--header", "Subject: order 4", "--body", "forged")
		if code == 0 || !strings.Contains(out, "550 5.7.1") {
			t.Fatalf("a forged hop from an untrusted client was believed (%d):\n%s", code, out)
		}
	})

	t.Run("XFORWARD from an untrusted client", func(t *testing.T) {
		c := dialFrom(t, unauthorizedIP, inbound)
		c.write("EHLO gw.company.example\r\n")
		if r := c.expect("250"); strings.Contains(r, "XFORWARD") {
			t.Fatalf("XFORWARD announced to an untrusted client:\n%s", r)
		}
		c.write("XFORWARD ADDR=" + customerIP + " HELO=mx.customer.example\r\n")
		c.expect("550 5.7.0")
		// The log reaches us through a pipe: give it a moment.
		for i := 0; !strings.Contains(proxy.log.String(), `"event":"xcommand_refused"`); i++ {
			if i == 100 {
				t.Fatalf("the refused XFORWARD left no log line:\n%s", proxy.log.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("gateway sends XFORWARD", func(t *testing.T) {
		before := len(sinkMessages(t, crmDir))
		g := startPostfixGateway(t, sv.inPort, "smtp_send_xforward_command = yes")
		customerSend(t, g, customerIP, "order 5", "")
		// The sink's files are not in arrival order: find ours by subject.
		waitSinkLong(t, crmDir, before+1)
		msg := ""
		for deadline := time.Now().Add(30 * time.Second); msg == "" && time.Now().Before(deadline); {
			for _, m := range sinkMessages(t, crmDir) {
				if strings.Contains(m, "Subject: order 5") {
					msg = m
				}
			}
			if msg == "" {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if ar := arOf(msg); !strings.Contains(ar, "spf=pass") || !strings.Contains(ar, "smtp.remote-ip="+customerIP) {
			t.Fatalf("Authentication-Results: %s\nmessage:\n%.2000s", ar, msg)
		}
		if !strings.Contains(proxy.log.String(), `"event":"xforward"`) {
			t.Fatalf("the gateway sent no XFORWARD:\n%s", proxy.log.String())
		}
	})

	if strings.Contains(proxy.log.String(), "jane@customer.example") {
		t.Errorf("the proxy logged the customer's address:\n%s", proxy.log.String())
	}
}

// TestGatewayPostmaster: RCPT TO:<Postmaster> (RFC 5321 §4.5.1) is
// accepted by the inbound route and reaches the configured mailbox.
func TestGatewayPostmaster(t *testing.T) {
	z := gatewayCustomerDNS(t)
	crmPort, crmDir := startSink(t)
	sv := writeGatewayProxyConfig(t, z, crmPort)
	startServe(t, sv.config, sv.admin)
	for _, rcpt := range []string{"Postmaster", "postmaster@relay.company.example"} {
		code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", sv.inPort), "--local-interface", customerIP,
			"--ehlo", "mx.customer.example", "--from", "", "--to", rcpt, "--header", "Subject: bounce")
		if code != 0 {
			t.Fatalf("postmaster %s refused (%d):\n%s", rcpt, code, out)
		}
	}
	msgs := waitSinkLong(t, crmDir, 2)
	for _, m := range msgs {
		if !strings.Contains(m, "X-Rcpt-Args: <it-mail@company.example>") {
			t.Fatalf("not delivered to the postmaster mailbox:\n%s", m)
		}
	}
}

// waitSinkLong is waitSink for mail that passes a queue (the gateway's):
// a loaded machine may take a while.
func waitSinkLong(t *testing.T, dir string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := sinkMessages(t, dir); len(m) >= n {
			return m
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("smtp-sink in %s got fewer than %d messages", dir, n)
	return nil
}

// arOf returns the first Authentication-Results field of a message,
// unfolded.
func arOf(msg string) string {
	hdr, _, _ := strings.Cut(strings.ReplaceAll(msg, "\r\n", "\n"), "\n\n")
	hdr = strings.ReplaceAll(strings.ReplaceAll(hdr, "\n\t", " "), "\n ", " ")
	for _, line := range strings.Split(hdr, "\n") {
		if strings.HasPrefix(strings.ToLower(line), "authentication-results:") {
			return line
		}
	}
	return ""
}

// dialFrom connects to addr from the source address from (a lineClient of
// reload_test.go).
func dialFrom(t *testing.T, from, addr string) *lineClient {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { conn.Close() })
	c := &lineClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.expect("220")
	return c
}
