package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/policy"
)

var cmdDemo = &command{
	name: "demo",
	summary: "run both routes on loopback with a stand-in CRM and customer mail server, " +
		"send a customer message and the CRM's reply, and show what each side received",
	run: runDemo,
}

// The demo's customer and her colleague: their addresses must never reach
// the CRM, and must come back on the reply.
const (
	demoCustomer  = "jane.doe@example.com"
	demoColleague = "bob.roe@example.org"
	demoMessageID = "<order-1234.demo@mail.example.com>"
)

func runDemo(ctx context.Context, a *app, args []string) error {
	if err := nArgs(args, 0, ""); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	crm, err := startStandin("crm.example")
	if err != nil {
		return err
	}
	defer crm.close()
	customer, err := startStandin("mx.example.com")
	if err != nil {
		return err
	}
	defer customer.close()
	dns, dkimKey, err := startDemoDNS()
	if err != nil {
		return err
	}
	defer dns.close()
	demoConfig(cfg, crm.addr(), customer.addr(), dns.addr())
	e, err := a.openEngine(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	rs, err := buildRoutes(cfg, e, a.log, nil)
	if err != nil {
		return err
	}
	if err := rs.listen(cfg); err != nil {
		rs.closeDownstreams()
		return err
	}
	rs.serve()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rs.shutdown(sctx)
	}()
	d := &demoRun{a: a, cfg: cfg, rs: rs, crm: crm, customer: customer, dkimKey: dkimKey}
	return d.run()
}

// demoConfig points the routes at the stand-ins and lets the system pick
// free loopback ports, so the demo runs beside a `proxy serve`. The
// authentication check asks the DNS stand-in: no look-up leaves the
// machine, and none waits for a timeout.
func demoConfig(cfg *policy.Config, crmAddr, customerAddr, dnsAddr string) {
	cfg.Inbound.Listen, cfg.Outbound.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Inbound.Downstream = policy.Downstream{Address: crmAddr, TLS: "insecure"}
	cfg.Outbound.Downstream = policy.Downstream{Address: customerAddr, TLS: "insecure"}
	cfg.Outbound.ClientNetworks = append(cfg.Outbound.ClientNetworks, "127.0.0.0/8")
	cfg.Inbound.AuthCheck.DNSServer = dnsAddr
}

// The demo customer's domain and DKIM selector, as the DNS stand-in
// publishes them.
const (
	demoDomain   = "example.com"
	demoSelector = "demo"
)

// startDemoDNS starts the customer domain's DNS: SPF for the loopback
// sender, a DKIM key made for this run, and DMARC p=reject. It returns the
// server and the signing key of the customer's mail server.
func startDemoDNS() (*dnsStandin, crypto.Signer, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	dns, err := startDNSStandin()
	if err != nil {
		return nil, nil, err
	}
	recs := mailauth.Records(mailauth.RecordsInput{
		DKIMKeys: []mailauth.DKIMKey{{Domain: demoDomain, Selector: demoSelector, Public: key.Public()}}})
	for _, r := range recs {
		dns.setTXT(r.Name, r.Value)
	}
	dns.setTXT(demoDomain, "v=spf1 ip4:127.0.0.1 -all")
	dns.setTXT("_dmarc."+demoDomain, "v=DMARC1; p=reject")
	return dns, key, nil
}

type demoRun struct {
	a             *app
	cfg           *policy.Config
	rs            *routes
	crm, customer *standin
	dkimKey       crypto.Signer // the customer's server signs with it
}

func (d *demoRun) run() error {
	public := d.cfg.Mailboxes[0].Public
	out := d.a.stdout
	fmt.Fprintf(out, "tokenproxy demo: inbound route %s, outbound route %s, token map in %s\n\n",
		d.rs.in.Addr(), d.rs.out.Addr(), d.cfg.DataDir)

	fmt.Fprintf(out, "1. The customer %s writes to %s; her server signs with DKIM (d=%s).\n", demoCustomer, public, demoDomain)
	msg, err := d.signed(customerMessage(public))
	if err != nil {
		return err
	}
	if err := d.send(d.rs.in.Addr().String(), demoCustomer, []string{public}, msg); err != nil {
		return fmt.Errorf("inbound route: %w", err)
	}
	atCRM, err := d.crm.wait(10 * time.Second)
	if err != nil {
		return fmt.Errorf("CRM stand-in: %w", err)
	}
	printReceived(d, "2. What the CRM received (no customer address in it):", atCRM)

	reply, rcpts, err := crmReply(atCRM)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "3. The CRM agent answers; the CRM sends the reply to the outbound route.\n")
	if err := d.send(d.rs.out.Addr().String(), d.cfg.Mailboxes[0].CRM, rcpts, reply); err != nil {
		return fmt.Errorf("outbound route: %w", err)
	}
	atCustomer, err := d.customer.wait(10 * time.Second)
	if err != nil {
		return fmt.Errorf("customer stand-in: %w", err)
	}
	printReceived(d, "4. What the customer's mail server received (real addresses again):", atCustomer)
	return d.check(atCRM, atCustomer)
}

// check states what the demo shows, and fails if it does not hold.
func (d *demoRun) check(atCRM, atCustomer received) error {
	crmText := strings.ToLower(atCRM.from + strings.Join(atCRM.to, " ") + string(atCRM.data))
	custText := string(atCustomer.data)
	type check struct {
		what string
		ok   bool
	}
	checks := []check{
		{"the CRM saw no customer address", !strings.Contains(crmText, demoCustomer) && !strings.Contains(crmText, demoColleague)},
		{"the reply reached the customer's real address", contains(atCustomer.to, demoCustomer)},
		{"the reply's To and Cc name the customer and her colleague", strings.Contains(custText, demoCustomer) && strings.Contains(custText, demoColleague)},
		{"threading kept: In-Reply-To is the customer's Message-ID", strings.Contains(custText, "In-Reply-To: "+demoMessageID)},
	}
	if d.cfg.Inbound.AuthCheck.Enabled {
		checks = append(checks, check{"the CRM got SPF, DKIM and DMARC passes, the sender as her token",
			strings.Contains(crmText, "spf=pass smtp.mailfrom="+strings.ToLower(atCRM.from)+";") &&
				strings.Contains(crmText, "dkim=pass") && strings.Contains(crmText, "dmarc=pass")})
	}
	failed := 0
	fmt.Fprintln(d.a.stdout, "5. Checks:")
	for _, c := range checks {
		mark := "ok  "
		if !c.ok {
			mark, failed = "FAIL", failed+1
		}
		fmt.Fprintf(d.a.stdout, "   %s %s\n", mark, c.what)
	}
	if failed > 0 {
		return fmt.Errorf("%d demo checks failed", failed)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func printReceived(d *demoRun, title string, m received) {
	fmt.Fprintf(d.a.stdout, "%s\n   envelope: MAIL FROM:<%s> RCPT TO:<%s>\n", title, m.from, strings.Join(m.to, ">, <"))
	for _, line := range strings.Split(strings.TrimRight(string(m.data), "\r\n"), "\r\n") {
		fmt.Fprintf(d.a.stdout, "   | %s\n", line)
	}
	fmt.Fprintln(d.a.stdout)
}

// send delivers one message with STARTTLS, trusting the routes' own
// certificate (self-signed in the quickstart).
func (d *demoRun) send(addr, from string, to []string, msg []byte) error {
	pool := x509.NewCertPool()
	for _, c := range d.rs.certs {
		if leaf := c.Leaf(); leaf != nil {
			pool.AddCert(leaf)
		}
	}
	host := hostname(d.cfg.Inbound.Hostname)
	if addr == d.rs.out.Addr().String() {
		host = hostname(d.cfg.Outbound.Hostname)
	}
	c, err := gosmtp.DialStartTLS(addr, &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, to, bytes.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

// signed is msg with the customer server's DKIM signature.
func (d *demoRun) signed(msg []byte) ([]byte, error) {
	var out bytes.Buffer
	cfg := mailauth.SignerConfig{Domain: demoDomain, Selector: demoSelector, Key: d.dkimKey}
	if err := mailauth.Sign(context.Background(), cfg, bytes.NewReader(msg), &out); err != nil {
		return nil, fmt.Errorf("customer DKIM signature: %w", err)
	}
	return out.Bytes(), nil
}

func customerMessage(public string) []byte {
	return crlf(fmt.Sprintf(`From: Jane Doe <%[1]s>
To: Acme Support <%[2]s>
Cc: Bob Roe <%[3]s>
Subject: Order 1234 has not arrived
Date: %[4]s
Message-ID: %[5]s
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello, my order 1234 has not arrived yet.
Please answer to %[1]s; my colleague Bob (%[3]s) is waiting too.

Jane
`, demoCustomer, public, demoColleague, time.Now().Format(time.RFC1123Z), demoMessageID))
}

// crmReply is the answer a CRM agent writes: to the tokens the CRM knows,
// quoting the message it received.
func crmReply(atCRM received) ([]byte, []string, error) {
	m, err := mail.ReadMessage(bytes.NewReader(atCRM.data))
	if err != nil {
		return nil, nil, fmt.Errorf("CRM message: %w", err)
	}
	from, err := mail.ParseAddress(m.Header.Get("From"))
	if err != nil {
		return nil, nil, fmt.Errorf("CRM message From: %w", err)
	}
	cc, _ := mail.ParseAddressList(m.Header.Get("Cc"))
	rcpts := []string{from.Address}
	var ccs []string
	for _, a := range cc {
		rcpts = append(rcpts, a.Address)
		ccs = append(ccs, a.String())
	}
	var quoted strings.Builder
	sc := bufio.NewScanner(m.Body)
	for sc.Scan() {
		quoted.WriteString("> " + sc.Text() + "\n")
	}
	msg := crlf(fmt.Sprintf(`From: Acme Support <support@crm.example>
To: %s
Cc: %s
Subject: Re: %s
Date: %s
Message-ID: <reply-1234.demo@crm.example>
In-Reply-To: %s
References: %s
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello, your parcel left our warehouse today.

On %s, %s wrote:
%s`, from.String(), strings.Join(ccs, ", "), m.Header.Get("Subject"), time.Now().Format(time.RFC1123Z),
		m.Header.Get("Message-ID"), m.Header.Get("Message-ID"), m.Header.Get("Date"), from.String(), quoted.String()))
	if len(rcpts) == 0 {
		return nil, nil, errors.New("CRM message names no sender")
	}
	return msg, rcpts, nil
}

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }
