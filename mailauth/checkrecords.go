package mailauth

import (
	"context"
	"errors"
	"maps"
	"net"
	"strings"
)

// Mismatch is a record that DNS does not answer as Records says it should.
type Mismatch struct {
	Record  Record   // what should be published
	Found   []string // the TXT records of the same kind found at Record.Name
	Problem string   // "not published", "differs", "several records", or the look-up failure
}

// CheckRecords looks up each TXT record of recs through r and returns those
// DNS does not answer as expected; records of other types (the MTA-STS
// policy file) are not checked. Among the TXT records at a name only those
// of the same kind count (the same "v=" tag: an SPF record and a site
// verification string can share a name). SPF records compare as strings
// after white space is normalized; tag=value records (DKIM, DMARC,
// MTA-STS, TLS-RPT) compare tag by tag, in any order, white space inside p=
// ignored.
func CheckRecords(ctx context.Context, r *Resolver, recs []Record) []Mismatch {
	var out []Mismatch
	for _, rec := range recs {
		if rec.Type != "TXT" {
			continue
		}
		if m, bad := checkRecord(ctx, r, rec); bad {
			out = append(out, m)
		}
	}
	return out
}

func checkRecord(ctx context.Context, r *Resolver, rec Record) (Mismatch, bool) {
	m := Mismatch{Record: rec}
	txts, err := r.LookupTXT(ctx, rec.Name)
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound:
		m.Problem = "not published"
		return m, true
	case err != nil:
		m.Problem = "lookup failed: " + err.Error()
		return m, true
	}
	want := recordKind(rec.Value)
	for _, t := range txts {
		// A DKIM key record may omit v= (RFC 6376 §3.6.1).
		if k := recordKind(t); k == want || (k == "" && want == dkimKind) {
			m.Found = append(m.Found, t)
		}
	}
	switch {
	case len(m.Found) == 0:
		m.Problem = "not published"
	case len(m.Found) > 1:
		// RFC 7208 §4.5 (SPF) and RFC 7489 §6.6.3 (DMARC) make several
		// records an error; RFC 6376 §3.6.2.2 leaves DKIM undefined.
		m.Problem = "several records"
	case !sameRecord(rec.Value, m.Found[0]):
		m.Problem = "differs"
	default:
		return m, false
	}
	return m, true
}

const dkimKind = "v=dkim1"

// recordKind is a record's version tag, lower-cased ("v=spf1",
// "v=dkim1"); "" for a record without one.
func recordKind(v string) string {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(strings.ToLower(v), "v=") {
		return ""
	}
	end := strings.IndexAny(v, "; \t")
	if end < 0 {
		end = len(v)
	}
	return strings.ToLower(v[:end])
}

// sameRecord compares an expected record with a published one.
func sameRecord(want, got string) bool {
	if recordKind(want) == "v=spf1" {
		return strings.EqualFold(strings.Join(strings.Fields(want), " "), strings.Join(strings.Fields(got), " "))
	}
	w, g := normTags(want), normTags(got)
	if _, ok := g["v"]; !ok && recordKind(want) == dkimKind {
		g["v"] = "dkim1" // the default of an omitted v= (RFC 6376 §3.6.1)
	}
	return maps.Equal(w, g)
}

// normTags parses a tag=value record for comparison; the base64 of a DKIM
// p= may be split by white space (RFC 6376 §3.6.1), v= is case-insensitive.
func normTags(v string) map[string]string {
	tags := parseTags(v)
	if p, ok := tags["p"]; ok {
		tags["p"] = stripSpace(p)
	}
	if ver, ok := tags["v"]; ok {
		tags["v"] = strings.ToLower(ver)
	}
	return tags
}
