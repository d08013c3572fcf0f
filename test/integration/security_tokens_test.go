package integration

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// tokenInflation (issue 18 item 1): one message whose To: field names
// 10,000 new customers is refused by rewrite.limits.max_new_tokens (552
// 5.7.0, default 50) and creates no token: tokenproxy_tokens_created_total
// does not move. Before, it was refused and still left 10,000 tokens and
// creation records behind.
func (a *attacker) tokenInflation() {
	before, err := a.tokensCreated()
	if err != nil {
		a.row("10,000 To: addresses", "metrics before", err.Error(), "tokenproxy_tokens_created_total", false)
		return
	}
	var b strings.Builder
	b.WriteString("From: jane.doe@example.com\r\nTo: support@company.example")
	for i := range 10000 {
		fmt.Fprintf(&b, ",\r\n c%05d@example.net", i) // one folded line each: within max_line_length
	}
	b.WriteString("\r\nSubject: evil inflation\r\n\r\nHello.\r\n")
	c := a.session(a.in)
	c.cmd("MAIL FROM:<jane.doe@example.com>")
	c.cmd("RCPT TO:<support@company.example>")
	r := c.cmd("DATA")
	if strings.HasPrefix(r, "354") {
		c.write(b.String() + ".\r\n")
		r = c.reply()
	}
	c.cmd("QUIT")
	after, err := a.tokensCreated()
	if err != nil {
		a.row("10,000 To: addresses", "metrics after", err.Error(), "tokenproxy_tokens_created_total", false)
		return
	}
	a.row("10,000 To: addresses (token inflation)", fmt.Sprintf("DATA of %d bytes, To: 10,000 new addresses", b.Len()),
		fmt.Sprintf("%s; tokens created: %.0f", r, after-before), "552 5.7.0, 0 tokens created",
		strings.HasPrefix(r, "552 5.7.0") && after == before)
}

// tokensCreated reads tokenproxy_tokens_created_total from the admin
// listener's /metrics.
func (a *attacker) tokensCreated() (float64, error) {
	const name = "tokenproxy_tokens_created_total "
	code, body := httpGet("http://" + a.admin + "/metrics")
	if code != 200 {
		return 0, fmt.Errorf("GET /metrics: %d", code)
	}
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("/metrics has no %s", strings.TrimSpace(name))
}

// outboundRouting (issue 18 item 7): recipients in an allowed domain whose
// local part routes onward (% hack, bang path) would leave through a
// smarthost with Postfix's defaults (allow_percent_hack, swap_bangpath);
// the outbound route refuses them 553 5.7.1. The CRM authenticates from
// 127.0.0.2, the address it used in authFlood.
func (a *attacker) outboundRouting() {
	c := a.tlsSessionFrom(a.out, "127.0.0.2")
	r := c.cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00crm\x00"+secPassword)))
	if !strings.HasPrefix(r, "235") {
		a.row("outbound routing local part", "AUTH PLAIN crm:<right>", r, "235", false)
		return
	}
	for _, rcpt := range []string{"victim%gmail.example@company.example", "victim!gmail.example@company.example"} {
		c.cmd("RSET")
		if r := c.cmd("MAIL FROM:<support@crm.example>"); !strings.HasPrefix(r, "250") {
			a.row("outbound routing local part", "MAIL FROM:<support@crm.example>", r, "250", false)
			continue
		}
		r := c.cmd("RCPT TO:<" + rcpt + ">")
		a.row("outbound routing local part", "AUTH crm, RCPT TO:<"+rcpt+">", r, "553 5.7.1", strings.HasPrefix(r, "553 5.7.1"))
	}
	c.cmd("QUIT")
}
