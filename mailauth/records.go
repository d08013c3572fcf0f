package mailauth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// DefaultMTASTSMaxAge is the MTA-STS policy lifetime when RecordsInput sets
// none: one week, the order RFC 8461 §3.2 suggests for a stable policy.
const DefaultMTASTSMaxAge = 7 * 24 * time.Hour

// RecordsInput describes what the proxy sends and receives as, for Records.
type RecordsInput struct {
	// SenderDomains are the domains the outbound route sends as (MAIL FROM
	// and From after detokenization, e.g. company.example): each gets an SPF
	// and a DMARC record.
	SenderDomains []string
	// SPFNetworks are the smarthost's addresses (a single address is a /32
	// or /128 prefix): ip4:/ip6: mechanisms (RFC 7208 §5.6).
	SPFNetworks []netip.Prefix
	// SPFIncludes are domains whose SPF records also authorize senders
	// (include:, RFC 7208 §5.2), e.g. a hosted smarthost's.
	SPFIncludes []string
	// DKIMKeys are the signing keys to publish, one record each.
	DKIMKeys []DKIMKey
	// DMARCPolicy is p= (RFC 7489 §6.3); "" means reject.
	DMARCPolicy Policy
	// DMARCReports are the rua= addresses for aggregate reports, without
	// "mailto:" (RFC 7489 §6.2).
	DMARCReports []string

	// RelayDomain is the token domain (relay.company.example): customers'
	// servers deliver to it, so it gets MTA-STS and TLS-RPT records.
	RelayDomain string
	// MX are the relay domain's MX host names or "*.domain" patterns the
	// MTA-STS policy lists (RFC 8461 §3.2).
	MX []string
	// MTASTSMaxAge is the policy's max_age; zero means DefaultMTASTSMaxAge.
	MTASTSMaxAge time.Duration
	// TLSReports are the rua= addresses for TLS reports, without "mailto:"
	// (RFC 8460 §3).
	TLSReports []string
}

// DKIMKey is a DKIM public key to publish.
type DKIMKey struct {
	Domain, Selector string
	Public           crypto.PublicKey // *rsa.PublicKey or ed25519.PublicKey, e.g. SignerConfig.Key.Public()
}

// Record is one thing to publish: a DNS TXT record, or (Type "HTTPS") the
// MTA-STS policy file, whose Name is its URL.
type Record struct {
	Name  string // owner name, without trailing dot; the URL for Type "HTTPS"
	Type  string // "TXT" or "HTTPS"
	Value string // the TXT strings joined, or the file's text
	Why   string // what the record does, for the operator
}

// Records returns the records that make mail from and to the proxy
// authenticate: SPF, DKIM and DMARC for the sender domains, MTA-STS and
// TLS-RPT for the relay domain. Parts whose input is empty are left out. A
// key of a type DKIM cannot publish yields a record with an empty Value
// whose Why says so.
func Records(p RecordsInput) []Record {
	var recs []Record
	for _, d := range p.SenderDomains {
		if spf, ok := spfRecord(d, p); ok {
			recs = append(recs, spf)
		}
		recs = append(recs, dmarcRecord(d, p))
	}
	for _, k := range p.DKIMKeys {
		recs = append(recs, dkimRecord(k))
	}
	if p.RelayDomain != "" && len(p.MX) > 0 {
		recs = append(recs, mtaSTSRecords(p)...)
	}
	if p.RelayDomain != "" && len(p.TLSReports) > 0 {
		recs = append(recs, Record{
			Name:  "_smtp._tls." + p.RelayDomain,
			Type:  "TXT",
			Value: "v=TLSRPTv1; rua=" + mailtos(p.TLSReports),
			Why:   "TLS-RPT (RFC 8460): where senders report TLS failures delivering to the relay domain",
		})
	}
	return recs
}

// spfRecord authorizes the smarthost for a sender domain and fails
// everything else (-all, RFC 7208 §5.1), so that DMARC's SPF check passes
// only for our mail.
func spfRecord(domain string, p RecordsInput) (Record, bool) {
	terms := []string{"v=spf1"}
	for _, n := range p.SPFNetworks {
		terms = append(terms, spfIPTerm(n))
	}
	for _, inc := range p.SPFIncludes {
		terms = append(terms, "include:"+inc)
	}
	if len(terms) == 1 {
		return Record{}, false
	}
	terms = append(terms, "-all")
	return Record{
		Name: domain, Type: "TXT", Value: strings.Join(terms, " "),
		Why: "SPF (RFC 7208): the smarthost may send as " + domain + "; anything else fails",
	}, true
}

func spfIPTerm(n netip.Prefix) string {
	n = n.Masked()
	mech := "ip4:"
	if n.Addr().Is6() && !n.Addr().Is4In6() {
		mech = "ip6:"
	}
	if n.IsSingleIP() {
		return mech + n.Addr().Unmap().String()
	}
	return mech + n.Addr().Unmap().String() + "/" + strconv.Itoa(n.Bits())
}

func dmarcRecord(domain string, p RecordsInput) Record {
	policy := p.DMARCPolicy
	if policy == "" {
		policy = PolicyReject
	}
	value := "v=DMARC1; p=" + string(policy)
	if len(p.DMARCReports) > 0 {
		value += "; rua=" + mailtos(p.DMARCReports)
	}
	return Record{
		Name: "_dmarc." + domain, Type: "TXT", Value: value,
		Why: "DMARC (RFC 7489): receivers " + string(policy) + " mail From " + domain + " that no aligned SPF or DKIM authenticates",
	}
}

// dkimRecord publishes a key (RFC 6376 §3.6.1): RSA as SubjectPublicKeyInfo,
// Ed25519 as its 32 raw bytes (RFC 8463 §4.2).
func dkimRecord(k DKIMKey) Record {
	r := Record{Name: k.Selector + "._domainkey." + k.Domain, Type: "TXT",
		Why: "DKIM (RFC 6376): the public key verifying signatures with d=" + k.Domain + " s=" + k.Selector}
	value, err := dkimValue(k.Public)
	if err != nil {
		r.Why = "cannot publish: " + err.Error()
		return r
	}
	r.Value = value
	return r
}

func dkimValue(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k), nil
	default:
		return "", fmt.Errorf("unsupported key type %T", pub)
	}
}

// mtaSTSRecords returns the MTA-STS policy file and the TXT record
// announcing it (RFC 8461 §3.1, §3.2). The id is derived from the policy
// text, so it changes exactly when the policy does, which is what tells
// senders to fetch it again.
func mtaSTSRecords(p RecordsInput) []Record {
	policy := mtaSTSPolicy(p)
	sum := sha256.Sum256([]byte(policy))
	return []Record{
		{
			Name: "_mta-sts." + p.RelayDomain, Type: "TXT",
			Value: "v=STSv1; id=" + hex.EncodeToString(sum[:10]),
			Why:   "MTA-STS (RFC 8461): senders must deliver to the relay domain over verified TLS; the id changes with the policy",
		},
		{
			Name: "https://mta-sts." + p.RelayDomain + "/.well-known/mta-sts.txt", Type: "HTTPS",
			Value: policy,
			Why:   "MTA-STS policy file, served over HTTPS with a valid certificate for mta-sts." + p.RelayDomain,
		},
	}
}

func mtaSTSPolicy(p RecordsInput) string {
	maxAge := p.MTASTSMaxAge
	if maxAge <= 0 {
		maxAge = DefaultMTASTSMaxAge
	}
	var b strings.Builder
	b.WriteString("version: STSv1\nmode: enforce\n")
	for _, mx := range p.MX {
		b.WriteString("mx: " + mx + "\n")
	}
	fmt.Fprintf(&b, "max_age: %d\n", int64(maxAge/time.Second))
	return b.String()
}

func mailtos(addrs []string) string {
	uris := make([]string, len(addrs))
	for i, a := range addrs {
		uris[i] = "mailto:" + strings.TrimPrefix(a, "mailto:")
	}
	return strings.Join(uris, ",")
}

// ZoneLine returns a TXT record as a zone-file line, its value split into
// strings of at most 255 bytes (RFC 1035 §3.3.14; RFC 7208 §3.3 and RFC
// 6376 §3.6.2.2 join them again). Other types return "".
func (r Record) ZoneLine() string {
	if r.Type != "TXT" {
		return ""
	}
	var quoted []string
	for _, s := range splitTXT(r.Value) {
		quoted = append(quoted, strconv.Quote(s))
	}
	return r.Name + ". IN TXT " + strings.Join(quoted, " ")
}

// splitTXT splits a value into character-strings of at most 255 bytes.
func splitTXT(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}
