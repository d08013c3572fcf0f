package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"

	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/vault"
)

// dnsFlags are the flags of `proxy dns`.
type dnsFlags struct {
	check    bool
	networks stringList // added to outbound.spf_networks
	includes stringList // added to outbound.spf_includes
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func cmdDNS() *command {
	var f dnsFlags
	return &command{
		name: "dns",
		args: "[--check] [--spf-network CIDR]... [--spf-include DOMAIN]...",
		summary: "print the DNS records to publish (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT) as zone-file lines; " +
			"--check compares them with what DNS answers (exit 1 on any mismatch)",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&f.check, "check", false, "look the records up through inbound.auth_check.dns_server and report each mismatch")
			fs.Var(&f.networks, "spf-network", "smarthost `network` (CIDR or address) for SPF, added to outbound.spf_networks; repeatable")
			fs.Var(&f.includes, "spf-include", "`domain` whose SPF record also authorizes senders, added to outbound.spf_includes; repeatable")
		},
		run: func(ctx context.Context, a *app, args []string) error { return runDNS(ctx, a, args, f) },
	}
}

func runDNS(ctx context.Context, a *app, args []string, f dnsFlags) error {
	if err := nArgs(args, 0, ""); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	in, err := recordsInput(cfg, f)
	if err != nil {
		return err
	}
	if in.DKIMKeys, err = dkimPublicKeys(ctx, a, cfg); err != nil {
		return err
	}
	z := zone{relay: cfg.RelayDomain, mx: mxHosts(cfg), records: mailauth.Records(in), noDKIM: cfg.Outbound.DKIM.Domain == ""}
	z.print(a.stdout, in)
	if !f.check {
		return nil
	}
	return z.check(ctx, a.stdout, resolver(cfg))
}

// recordsInput gathers what the records describe from the configuration
// and the flags.
func recordsInput(cfg *policy.Config, f dnsFlags) (mailauth.RecordsInput, error) {
	in := mailauth.RecordsInput{
		SenderDomains: cfg.SenderDomains(),
		SPFIncludes:   append(slices.Clone(cfg.Outbound.SPFIncludes), f.includes...),
		DMARCPolicy:   mailauth.Policy(cfg.DNS.DMARCPolicy),
		DMARCReports:  cfg.DNS.DMARCReports,
		RelayDomain:   cfg.RelayDomain,
		MX:            mxHosts(cfg),
		MTASTSMaxAge:  cfg.DNS.MTASTSMaxAge,
		TLSReports:    cfg.DNS.TLSReports,
	}
	for _, n := range append(slices.Clone(cfg.Outbound.SPFNetworks), f.networks...) {
		p, err := policy.ParseNetwork(n) // the configured ones were validated at load
		if err != nil {
			return in, usagef("--spf-network %q: want a CIDR prefix or an address", n)
		}
		in.SPFNetworks = append(in.SPFNetworks, p)
	}
	return in, nil
}

// mxHosts are dns.mx, or the inbound route's host name.
func mxHosts(cfg *policy.Config) []string {
	if len(cfg.DNS.MX) > 0 {
		return cfg.DNS.MX
	}
	return []string{hostname(cfg.Inbound.Hostname)}
}

// dkimPublicKeys returns the public halves of the signing keys, the
// outbound DKIM key and the inbound ARC sealing key (whose record has the
// same form, RFC 8617 §4.1.2): from key_file, or from Vault transit (read
// on transit/keys/<key>; no signing call).
func dkimPublicKeys(ctx context.Context, a *app, cfg *policy.Config) ([]mailauth.DKIMKey, error) {
	d, s := cfg.Outbound.DKIM, cfg.Inbound.AuthCheck.ARCSeal
	uses := []struct {
		field, domain, selector, keyFile, vaultKey string
	}{
		{"outbound.dkim", d.Domain, d.Selector, d.KeyFile, d.VaultKey},
		{"inbound.auth_check.arc_seal", s.Domain, s.Selector, s.KeyFile, s.VaultKey},
	}
	var keys []mailauth.DKIMKey
	for _, u := range uses {
		if u.domain == "" {
			continue
		}
		var kek vault.KEK
		if u.vaultKey != "" {
			t, err := vault.NewTransit(ctx, transitConfig(cfg.Keys.Vault), vault.WithLogger(a.log))
			if err != nil {
				return nil, err
			}
			defer t.Close()
			kek = t
		}
		key, err := signingKey(cfg, kek, u.keyFile, u.vaultKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u.field, err)
		}
		keys = append(keys, mailauth.DKIMKey{Domain: u.domain, Selector: u.selector, Public: key.Public()})
	}
	return keys, nil
}

// zone is what an operator publishes: the relay domain's MX records and
// the records of mailauth.Records.
type zone struct {
	relay   string
	mx      []string
	records []mailauth.Record
	noDKIM  bool // outbound.dkim is off (the keys may still hold the ARC seal's)
}

// print writes zone-file lines, each after a comment saying what it does;
// the MTA-STS policy file, which is not DNS, as comment lines.
func (z zone) print(w io.Writer, in mailauth.RecordsInput) {
	fmt.Fprintf(w, "; MX (RFC 5321 §5.1): customers' replies to tokens reach the inbound route\n")
	for _, line := range z.mxLines() {
		fmt.Fprintln(w, line)
	}
	if len(in.SPFNetworks) == 0 && len(in.SPFIncludes) == 0 {
		fmt.Fprintf(w, "; no SPF record: set outbound.spf_networks or spf_includes (or --spf-network) to the smarthost's\n")
	}
	if z.noDKIM {
		fmt.Fprintf(w, "; no DKIM record: outbound.dkim is off, replies are not signed\n")
	}
	for _, r := range z.records {
		fmt.Fprintf(w, "; %s\n", r.Why)
		if r.Type == "TXT" && r.Value != "" {
			fmt.Fprintln(w, r.ZoneLine())
			continue
		}
		if r.Type == "HTTPS" {
			fmt.Fprintf(w, "; %s:\n", r.Name)
			for _, line := range strings.Split(strings.TrimRight(r.Value, "\n"), "\n") {
				fmt.Fprintf(w, ";   %s\n", line)
			}
		}
	}
}

// mxLines are the MX records of the relay domain; *.domain patterns, which
// only MTA-STS knows, are left out.
func (z zone) mxLines() []string {
	var out []string
	for i, h := range z.mx {
		if !strings.HasPrefix(h, "*.") {
			out = append(out, fmt.Sprintf("%s. IN MX %d %s.", z.relay, 10*(i+1), h))
		}
	}
	return out
}

// errMismatch: some record is not published as it should be (exit 1).
var errMismatch = errors.New("DNS does not match")

// check looks every record up and prints each mismatch.
func (z zone) check(ctx context.Context, w io.Writer, r *mailauth.Resolver) error {
	ms := mailauth.CheckRecords(ctx, r, z.records)
	for _, m := range ms {
		fmt.Fprintf(w, "MISMATCH %s TXT: %s\n  want: %s\n", m.Record.Name, m.Problem, m.Record.Value)
		for _, f := range m.Found {
			fmt.Fprintf(w, "  found: %s\n", f)
		}
	}
	bad := len(ms)
	if problem := z.checkMX(ctx, r); problem != "" {
		fmt.Fprintf(w, "MISMATCH %s MX: %s\n  want: %s\n", z.relay, problem, strings.Join(z.mx, ", "))
		bad++
	}
	if bad > 0 {
		return fmt.Errorf("%w: %d record(s)", errMismatch, bad)
	}
	fmt.Fprintf(w, "; --check: every record matches\n")
	return nil
}

// checkMX compares the relay domain's MX hosts with the expected ones, in
// any order; "" when they match.
func (z zone) checkMX(ctx context.Context, r *mailauth.Resolver) string {
	var want []string
	for _, h := range z.mx {
		if !strings.HasPrefix(h, "*.") {
			want = append(want, strings.ToLower(h))
		}
	}
	if len(want) == 0 {
		return ""
	}
	mxs, err := r.LookupMX(ctx, z.relay)
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound:
		return "not published"
	case err != nil:
		return "lookup failed: " + err.Error()
	}
	var got []string
	for _, mx := range mxs {
		got = append(got, strings.ToLower(strings.TrimSuffix(mx.Host, ".")))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		return "found " + strings.Join(got, ", ")
	}
	return ""
}
