package policy_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/deploy/examples"
	"github.com/tokenproxy/tokenproxy/policy"
)

func TestQuickstartIsValid(t *testing.T) {
	c, err := policy.Parse(examples.Quickstart, "quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The example must show the defaults it claims to show.
	d := policy.Defaults()
	if !reflect.DeepEqual(c.Store, withEmptyEndpoints(d.Store)) {
		t.Fatalf("quickstart store differs from Defaults():\n%+v\n%+v", c.Store, d.Store)
	}
	if c.Tokens != d.Tokens || c.Rewrite != d.Rewrite || c.Keys.Provider != d.Keys.Provider || c.Keys.Vault.Timeout != d.Keys.Vault.Timeout || c.Log != d.Log || c.DataDir != d.DataDir {
		t.Fatalf("quickstart differs from Defaults():\n%+v\n%+v", c, d)
	}
	if err := quickstartRoutesDiffer(c, d); err != "" {
		t.Fatal(err)
	}
	if c.RelayDomain != "relay.company.example" || len(c.Mailboxes) != 1 || c.Mailboxes[0].CRM != "support@crm.example" {
		t.Fatalf("quickstart = %+v", c)
	}
}

// quickstartRoutesDiffer compares the route sections of the quickstart with
// Defaults(), after setting on the defaults what the quickstart changes on
// purpose.
func quickstartRoutesDiffer(q *policy.Config, d policy.Config) string {
	// Example values: the quickstart names hosts of company.example; the
	// defaults leave them empty (the machine's host name, no domains).
	d.Inbound.Hostname = "mx.company.example"
	d.Outbound.Hostname = "relay.company.example"
	d.Outbound.AllowedDomains = []string{"company.example"}
	// Production downstreams verify TLS; the quickstart talks plain SMTP to
	// local test sinks, which validation allows on loopback only.
	if d.Inbound.Downstream.TLS != "verify" || d.Outbound.Downstream.TLS != "verify" {
		return "Defaults() downstream tls must be verify"
	}
	d.Inbound.Downstream.TLS = "insecure"
	d.Outbound.Downstream.TLS = "insecure"
	// The quickstart writes empty lists to show the fields.
	d.Outbound.AuthUsers = []policy.AuthUser{}
	d.Outbound.DKIM.Headers = []string{}
	d.Inbound.AuthCheck.TrustedARCSealers = []string{}
	d.Outbound.SPFNetworks, d.Outbound.SPFIncludes = []string{}, []string{}
	d.DNS.MX, d.DNS.DMARCReports, d.DNS.TLSReports = []string{}, []string{}, []string{}
	d.Inbound.TrustedRelays, d.Inbound.AuthCheck.TrustedAuthservIDs = []string{}, []string{}
	for _, s := range []struct {
		name string
		q, d any
	}{
		{"inbound", q.Inbound, d.Inbound}, {"outbound", q.Outbound, d.Outbound},
		{"admin", q.Admin, d.Admin}, {"smtp", q.SMTP, d.SMTP}, {"dns", q.DNS, d.DNS},
	} {
		if !reflect.DeepEqual(s.q, s.d) {
			return fmt.Sprintf("quickstart %s differs from Defaults():\n%+v\n%+v", s.name, s.q, s.d)
		}
	}
	return ""
}

const base = `
relay_domain: relay.company.example
internal_domains: [company.example, crm.example]
mailboxes: [{public: support@company.example, crm: support@crm.example}]
`

func TestValidationNamesFieldAndReason(t *testing.T) {
	tests := []struct{ extra, field, reason string }{
		{"tokens: {length: 8}", "tokens.length", "16 (80 bits) to 52"},
		{"tokens: {prefix: T1}", "tokens.prefix", "lower-case letters"},
		{"tokens: {local_part_case: upper}", "tokens.local_part_case", "fold or preserve"},
		{"keys: {provider: hsm}", "keys.provider", "local or vault"},
		{"keys: {provider: vault}", "keys.vault.address", "http(s) URL"},
		{"keys: {provider: vault, vault: {address: 'http://127.0.0.1:8200', auth: {method: approle}}}", "keys.vault.auth.approle.role_id", "exactly one"},
		{"keys: {provider: vault, vault: {address: 'http://127.0.0.1:8200', auth: {method: approle, approle: {role_id: x}}}}", "keys.vault.auth.approle.secret_id_file", "secret_id"},
		{"keys: {provider: vault, vault: {address: 'http://127.0.0.1:8200', auth: {method: kerberos}}}", "keys.vault.auth.method", "token or approle"},
		{"keys: {provider: vault, vault: {address: 'http://127.0.0.1:8200', timeout: -1s}}", "keys.vault.timeout", "positive"},
		{"log: {level: loud}", "log.level", "debug, info"},
		{"rewrite: {display_names: hide}", "rewrite.display_names", "keep, pseudonymize or drop"},
		{"rewrite: {unscannable: pass}", "rewrite.unscannable", "reject or headers-only"},
		{"rewrite: {limits: {max_mime_depth: 0}}", "rewrite.limits.max_mime_depth", "at least 1"},
		{"rewrite: {limits: {max_text_part_bytes: 100000000}}", "rewrite.limits.max_text_part_bytes", "must not exceed"},
		{"rewrite: {limits: {max_new_tokens: 0}}", "rewrite.limits.max_new_tokens", "at least 1"},
		{"rewrite: {limits: {max_held_bytes: 33554431}}", "rewrite.limits.max_held_bytes", "at least twice max_text_part_bytes"},
		{"rewrite: {limits: {max_text_part_bytes: 40000000, max_held_bytes: 67108864}}", "rewrite.limits.max_held_bytes", "at least twice"},
		{"inbound: {new_token_rate: {per_ip: 0}}", "inbound.new_token_rate.per_ip", "at least 1"},
		{"inbound: {new_token_rate: {total: 0, per_ip: 0}}", "inbound.new_token_rate.per_ip", "at least 1"},
		{"inbound: {new_token_rate: {total: 0}}", "inbound.new_token_rate.total", "at least 1"},
		{"inbound: {new_token_rate: {per_ip: 3000}}", "inbound.new_token_rate.per_ip", "must not exceed total"},
		{"rewrite: {limits: {max_new_tokens: 1001}}", "rewrite.limits.max_new_tokens", "must not exceed 1000"},
		{"tokenz: {}", "tokenz", "unknown field"},
		{"store: {backend: postgres}", "store.backend", "bbolt or etcd"},
		{"store: {backend: etcd}", "store.etcd.endpoints", "client URLs"},
		{"store: {backend: etcd, etcd: {endpoints: ['10.0.0.1:2379']}}", "store.etcd.endpoints[0]", "URL like"},
		{"store: {backend: etcd, etcd: {endpoints: ['http://10.0.0.1:2379']}}", "store.etcd.endpoints[0]", "only to loopback"},
		{"store: {backend: etcd, etcd: {endpoints: ['https://10.0.0.1:2379']}}", "store.etcd.endpoints[0]", "ca_file"},
		{"store: {backend: etcd, etcd: {endpoints: ['http://127.0.0.1:2379'], prefix: tp}}", "store.etcd.prefix", "end with /"},
		{"store: {backend: etcd, etcd: {endpoints: ['http://127.0.0.1:2379'], node_id: a/b}}", "store.etcd.node_id", "must not contain /"},
		{"store: {backend: etcd, etcd: {endpoints: ['http://127.0.0.1:2379'], username: u}}", "store.etcd.username", "together"},
		{"store: {backend: etcd, etcd: {endpoints: ['http://127.0.0.1:2379'], tls: {cert_file: c.pem}}}", "store.etcd.tls", "both cert_file and key_file"},
		{"store: {backend: etcd, etcd: {endpoints: ['http://127.0.0.1:2379'], request_timeout: 0s}}", "store.etcd.request_timeout", "positive"},
		{"store: {backend: etcd, etcd: {endpoints: ['http://127.0.0.1:2379'], known_sender_grace: -1s}}", "store.etcd.known_sender_grace", "0 (no grace) or positive"},
		{"data_dir: ''", "data_dir", "empty"},
		{"inbound: {listen: '127.0.0.1'}", "inbound.listen", "host:port"},
		{"inbound: {listen: '127.0.0.1:smtp'}", "inbound.listen", "port must be a number"},
		{"admin: {listen: '127.0.0.1:70000'}", "admin.listen", "port must be a number"},
		{"outbound: {listen: '127.0.0.1:2525'}", "outbound.listen", "also inbound.listen"},
		{"admin: {listen: ':2587'}", "admin.listen", "also outbound.listen"},
		{"inbound: {hostname: MX.Example}", "inbound.hostname", "lower-case"},
		{"inbound: {tls: {cert_file: /etc/x.pem}}", "inbound.tls", "both cert_file and key_file"},
		{"outbound: {tls: {key_file: /etc/x.key}}", "outbound.tls", "both cert_file and key_file"},
		{"inbound: {downstream: {address: 'crm.example'}}", "inbound.downstream.address", "host:port"},
		{"inbound: {downstream: {address: ':25'}}", "inbound.downstream.address", "must name a host"},
		{"inbound: {downstream: {tls: starttls}}", "inbound.downstream.tls", "verify or insecure"},
		{"inbound: {downstream: {address: 'intake.crm.example:25', tls: insecure}}", "inbound.downstream.tls", "allow_insecure_remote"},
		{"outbound: {downstream: {address: '10.0.0.5:25', tls: insecure}}", "outbound.downstream.tls", "would expose every message"},
		{"outbound: {downstream: {tls: insecure, ca_file: /etc/ca.pem}}", "outbound.downstream.tls", "only with tls: verify"},
		{"outbound: {client_networks: [10.0.0.0]}", "outbound.client_networks[0]", "CIDR"},
		{"outbound: {client_networks: []}", "outbound", "nobody can relay"},
		{"outbound: {auth_users: [{name: crm, password_hash: hunter2}]}", "outbound.auth_users[0].password_hash", "store a bcrypt or argon2id hash, not the password"},
		{"outbound: {auth_users: [{name: crm, password_hash: '$2b$12$short'}]}", "outbound.auth_users[0].password_hash", "not the password"},
		{"outbound: {auth_users: [{name: '', password_hash: '" + bcryptHash + "'}]}", "outbound.auth_users[0].name", "empty"},
		{"outbound: {auth_users: [{name: crm, password_hash: '" + bcryptHash + "'}, {name: crm, password_hash: '" + argonHash + "'}]}", "outbound.auth_users[1].name", "listed twice"},
		{"outbound: {allowed_domains: [Company.Example]}", "outbound.allowed_domains[0]", "lower-case"},
		{"outbound: {allowed_domains: [relay.company.example]}", "outbound.allowed_domains[0]", "relay domain"},
		{"outbound: {rewrite_from: support@elsewhere.example}", "outbound.rewrite_from", "not in internal_domains"},
		{"outbound: {rewrite_from: 'Support <support@company.example>'}", "outbound.rewrite_from", "plain address"},
		{"smtp: {read_timeout: 0s}", "smtp.read_timeout", "positive"},
		{"smtp: {downstream_timeout: -5s}", "smtp.downstream_timeout", "positive"},
		{"smtp: {max_session_duration: 0s}", "smtp.max_session_duration", "positive"},
		{"smtp: {max_recipients: 0}", "smtp.max_recipients", "at least 1"},
		{"smtp: {max_line_length: 512}", "smtp.max_line_length", "at least 1000"},
		{"smtp: {downstream_pool_size: 0}", "smtp.downstream_pool_size", "at least 1"},
		{"smtp: {max_connections: 10}", "smtp.max_connections_per_ip", "must not exceed max_connections"},
		{"smtp: {refusal_code: 550}", "smtp.refusal_code", "554 or 451"},
		{"inbound: {auth_check: {authserv_id: MX.Example}}", "inbound.auth_check.authserv_id", "lower-case"},
		{"inbound: {auth_check: {dns_server: '127.0.0.53'}}", "inbound.auth_check.dns_server", "host:port"},
		{"inbound: {auth_check: {dns_server: 'resolver.example:53'}}", "inbound.auth_check.dns_server", "IP address"},
		{"inbound: {auth_check: {dns_timeout: 0s}}", "inbound.auth_check.dns_timeout", "positive"},
		{"inbound: {auth_check: {dmarc_reject_action: quarantine}}", "inbound.auth_check.dmarc_reject_action", "reject or tag"},
		{"outbound: {dkim: {selector: tp1}}", "outbound.dkim.domain", "must be set"},
		{"outbound: {dkim: {domain: Company.Example, selector: tp1, key_file: /k.pem}}", "outbound.dkim.domain", "lower-case"},
		{"outbound: {dkim: {domain: company.example, key_file: /k.pem}}", "outbound.dkim.selector", "DNS labels"},
		{"outbound: {dkim: {domain: company.example, selector: 'tp 1', key_file: /k.pem}}", "outbound.dkim.selector", "DNS labels"},
		{"outbound: {dkim: {domain: company.example, selector: tp1}}", "outbound.dkim.key_file", "exactly one"},
		{"outbound: {dkim: {domain: company.example, selector: tp1, key_file: /k.pem, vault_key: dkim}}", "outbound.dkim.key_file", "exactly one"},
		{"outbound: {dkim: {domain: company.example, selector: tp1, vault_key: dkim}}", "outbound.dkim.vault_key", "keys.provider: vault"},
		{"keys: {provider: vault, vault: {address: 'http://127.0.0.1:8200'}}\noutbound: {dkim: {domain: company.example, selector: tp1, vault_key: a/b}}", "outbound.dkim.vault_key", "no slash"},
		{"outbound: {dkim: {domain: company.example, selector: tp1, key_file: /k.pem, headers: [Subject, To]}}", "outbound.dkim.headers", "must include From"},
		{"outbound: {dkim: {domain: company.example, selector: tp1, key_file: /k.pem, headers: [From, 'Bad:Name']}}", "outbound.dkim.headers[1]", "header field name"},
		// RFC 7489 §3.1.1: replies From company.example signed by another
		// organizational domain do not pass DMARC.
		{"outbound: {dkim: {domain: other.example, selector: tp1, key_file: /k.pem}}", "outbound.dkim.domain", "does not align"},
		{"outbound: {rewrite_from: help@crm.example, dkim: {domain: company.example, selector: tp1, key_file: /k.pem}}", "outbound.dkim.domain", "help@crm.example"},
		{"outbound: {spf_networks: [300.1.2.0/24]}", "outbound.spf_networks[0]", "CIDR"},
		{"outbound: {spf_includes: [Spf.Example]}", "outbound.spf_includes[0]", "lower-case"},
		{"outbound: {spf_includes: [a.example, b.example, c.example, d.example, e.example, f.example, g.example, h.example, i.example, j.example, k.example]}", "outbound.spf_includes", "at most 10"},
		{"dns: {mx: ['MX.company.example']}", "dns.mx[0]", "host name"},
		{"dns: {dmarc_policy: block}", "dns.dmarc_policy", "none, quarantine or reject"},
		{"dns: {dmarc_reports: ['DMARC <d@company.example>']}", "dns.dmarc_reports[0]", "plain address"},
		{"dns: {tls_reports: ['mailto:t@company.example']}", "dns.tls_reports[0]", "plain address"},
		{"dns: {mta_sts_max_age: 0s}", "dns.mta_sts_max_age", "positive"},
		{"dns: {mta_sts_max_age: 9000h}", "dns.mta_sts_max_age", "at most"},
		{"inbound: {max_connections: -1}", "inbound.max_connections", "0 (smtp.max_connections) or positive"},
		{"outbound: {max_connections_per_ip: -2}", "outbound.max_connections_per_ip", "or positive"},
		{"outbound: {max_connections: 5}", "outbound.max_connections_per_ip", "must not exceed"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			_, err := policy.Parse([]byte(base+tt.extra), "test.yaml")
			var fe *policy.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, policy.ErrConfig) {
				t.Fatalf("err = %v, want *FieldError", err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) || !strings.Contains(err.Error(), "test.yaml") {
				t.Fatalf("err = %v, want field %s and reason containing %q", err, tt.field, tt.reason)
			}
		})
	}
}

func TestValidationDomainsAndMailboxes(t *testing.T) {
	tests := []struct{ yaml, field string }{
		{"relay_domain: Relay.Example\ninternal_domains: [company.example]\nmailboxes: [{public: a@company.example, crm: b@company.example}]", "relay_domain"},
		{"relay_domain: relay.example\ninternal_domains: []\nmailboxes: [{public: a@company.example, crm: b@company.example}]", "internal_domains"},
		{"relay_domain: relay.example\ninternal_domains: [relay.example]\nmailboxes: [{public: a@company.example, crm: b@company.example}]", "internal_domains[0]"},
		{"relay_domain: relay.example\ninternal_domains: [company.example]\nmailboxes: []", "mailboxes"},
		{"relay_domain: relay.example\ninternal_domains: [company.example]\nmailboxes: [{public: a@elsewhere.example, crm: b@company.example}]", "mailboxes[0].public"},
		{"relay_domain: relay.example\ninternal_domains: [company.example]\nmailboxes: [{public: 'A <a@company.example>', crm: b@company.example}]", "mailboxes[0].public"},
		{"relay_domain: relay.example\ninternal_domains: [company.example]\nmailboxes: [{public: a@company.example, crm: b@company.example}, {public: a@company.example, crm: c@company.example}]", "mailboxes[1].public"},
	}
	for _, tt := range tests {
		_, err := policy.Parse([]byte(tt.yaml), "t.yaml")
		var fe *policy.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: err = %v, want field %s", tt.yaml, err, tt.field)
		}
	}
}

const (
	bcryptHash = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
	argonHash  = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
)

func TestRouteSettingsAccepted(t *testing.T) {
	for _, extra := range []string{
		"outbound: {auth_users: [{name: crm, password_hash: '" + bcryptHash + "'}, {name: crm2, password_hash: '" + argonHash + "'}], client_networks: []}",
		"outbound: {downstream: {address: 'smtp.company.example:25', tls: insecure, allow_insecure_remote: true}}",
		"inbound: {downstream: {address: 'intake.crm.example:25', ca_file: /etc/ca.pem, server_name: intake.crm.example}}",
		"inbound: {listen: '127.0.0.1:0'}\noutbound: {listen: '127.0.0.1:0'}\nadmin: {listen: '127.0.0.1:0'}",
		"inbound: {listen: '127.0.0.1:2525'}\noutbound: {listen: '192.0.2.1:2525', rewrite_from: support@company.example}",
		"inbound: {auth_check: {enabled: false, authserv_id: mx.company.example, dns_server: '[::1]:5353', dns_timeout: 2s, dmarc_reject_action: tag}}",
		// Relaxed alignment (RFC 7489 §3.1.1): a subdomain of the From's
		// organizational domain signs for it.
		"outbound: {dkim: {domain: mail.company.example, selector: 2025-06.tp, key_file: /k.pem, headers: [from, Subject]}}",
		"keys: {provider: vault, vault: {address: 'http://127.0.0.1:8200'}}\noutbound: {dkim: {domain: company.example, selector: tp1, vault_key: dkim}}",
		"outbound: {spf_networks: [192.0.2.25, '2001:db8::/64'], spf_includes: [spf.smarthost.example]}",
		"dns: {mx: [mx.company.example, '*.mx.company.example'], dmarc_policy: none, dmarc_reports: [d@company.example], tls_reports: [t@company.example], mta_sts_max_age: 24h}",
	} {
		if _, err := policy.Parse([]byte(base+extra), "t.yaml"); err != nil {
			t.Errorf("%s: %v", extra, err)
		}
	}
}

func TestRedactedHidesPasswordHash(t *testing.T) {
	c, err := policy.Parse([]byte(base+"outbound: {auth_users: [{name: crm, password_hash: '"+bcryptHash+"'}]}"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := c.Redacted()
	if strings.Contains(out, "R9h/cIPz0gi") || !strings.Contains(out, "name: crm") || !strings.Contains(out, "(redacted)") {
		t.Fatalf("Redacted:\n%s", out)
	}
	if c.Outbound.AuthUsers[0].PasswordHash != bcryptHash {
		t.Fatal("Redacted changed the configuration")
	}
}

func TestRedactedHidesRoleID(t *testing.T) {
	c, err := policy.Parse([]byte(base+"keys: {provider: vault, vault: {address: 'http://127.0.0.1:8200', auth: {method: approle, approle: {role_id: s3cr3t-role, secret_id_file: /run/x}}}}"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if out := c.Redacted(); strings.Contains(out, "s3cr3t-role") || !strings.Contains(out, "relay.company.example") {
		t.Fatalf("Redacted:\n%s", out)
	}
}

func TestSenderDomains(t *testing.T) {
	c, err := policy.Parse([]byte(`
relay_domain: relay.company.example
internal_domains: [company.example, sales.company.example, crm.example]
mailboxes:
  - {public: support@company.example, crm: support@crm.example}
  - {public: help@company.example, crm: help@crm.example}
  - {public: deals@sales.company.example, crm: deals@crm.example}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.SenderDomains(); !reflect.DeepEqual(got, []string{"company.example", "sales.company.example"}) {
		t.Fatalf("SenderDomains = %v", got)
	}
	c.Outbound.RewriteFrom = "help@company.example"
	if got := c.SenderAddresses(); !reflect.DeepEqual(got, []string{"help@company.example"}) {
		t.Fatalf("with rewrite_from: SenderAddresses = %v", got)
	}
}

// withEmptyEndpoints: the quickstart writes an empty list to show the field.
func withEmptyEndpoints(s policy.Store) policy.Store {
	s.Etcd.Endpoints = []string{}
	return s
}

func TestStoreEtcdAccepted(t *testing.T) {
	c, err := policy.Parse([]byte(base+`
store:
  backend: etcd
  etcd:
    endpoints: [https://10.0.0.11:2379, https://10.0.0.12:2379]
    tls: {ca_file: /etc/tokenproxy/etcd-ca.pem, cert_file: /etc/tokenproxy/etcd.pem, key_file: /etc/tokenproxy/etcd.key}
    node_id: node-a
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Backend != "etcd" || c.Store.Etcd.RequestTimeout != time.Second || c.Store.Etcd.Prefix != "tp/" {
		t.Fatalf("store = %+v", c.Store)
	}
}

// TestRouteConnLimits (issue 18 item 2): each route has its own connection
// limits; a route that sets none inherits the smtp section's, so a
// configuration written before routes had their own still loads.
func TestRouteConnLimits(t *testing.T) {
	c, err := policy.Parse([]byte(base+"inbound: {max_connections: 300, max_connections_per_ip: 30}\nsmtp: {max_connections: 50, max_connections_per_ip: 5}"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.InboundConnLimits(), (policy.ConnLimits{MaxConnections: 300, MaxConnectionsPerIP: 30}); got != want {
		t.Errorf("inbound limits = %+v, want %+v", got, want)
	}
	if got, want := c.OutboundConnLimits(), (policy.ConnLimits{MaxConnections: 50, MaxConnectionsPerIP: 5}); got != want {
		t.Errorf("outbound limits (inherited) = %+v, want %+v", got, want)
	}
}
