package mailauth

import (
	"bytes"
	"strings"

	"github.com/emersion/go-msgauth/authres"
)

// AuthenticationResults returns the value of an Authentication-Results
// field (RFC 8601) reporting v, for the route to prepend as
// "Authentication-Results: " + value. authservID names our service (RFC
// 8601 §2.5), typically the host name of the route.
//
// Every identity that is an address (smtp.mailfrom, a DKIM header.i with a
// local part) goes through tokenize, so that the field carries no more than
// the rewritten message does; domains (smtp.helo, header.d, header.from)
// are kept. With a nil tokenize an address is reduced to its domain, which
// the pvalue syntax allows (RFC 8601 §2.2). The value is one line; a header
// writer that folds long fields may fold it.
func (v *Verdicts) AuthenticationResults(authservID string, tokenize func(addr string) string) string {
	hide := addressHider(tokenize)
	var results []authres.Result
	results = append(results, v.spfResults(hide)...)
	results = append(results, v.dkimResults(hide)...)
	results = append(results, v.dmarcResult())
	out := tidy(authres.Format(authservID, results))
	if arc := v.arcResult(); arc != "" {
		out += "; " + arc
	}
	return out
}

// spfResults reports each SPF identity under its ptype (RFC 8601 §2.7.2).
func (v *Verdicts) spfResults(hide func(string) string) []authres.Result {
	if len(v.SPF) == 0 {
		return []authres.Result{&authres.SPFResult{Value: authres.ResultNone}}
	}
	var out []authres.Result
	for _, s := range v.SPF {
		params := map[string]string{}
		if s.Identity == "helo" {
			params["smtp.helo"] = s.Domain
		} else {
			params["smtp.mailfrom"] = hide(s.MailFrom)
		}
		v.Relay.addParams(params)
		out = append(out, &authres.GenericResult{Method: "spf", Value: authres.ResultValue(orNone(s.Result)), Params: params})
	}
	return out
}

// dkimResults reports each signature with header.d, header.i, header.s and
// header.a (RFC 8601 §2.7.1). go-msgauth's DKIMResult has no header.s or
// header.a, hence the generic result.
func (v *Verdicts) dkimResults(hide func(string) string) []authres.Result {
	if len(v.DKIM) == 0 {
		return []authres.Result{&authres.DKIMResult{Value: authres.ResultNone}}
	}
	var out []authres.Result
	for _, d := range v.DKIM {
		out = append(out, &authres.GenericResult{
			Method: "dkim",
			Value:  authres.ResultValue(orNone(d.Result)),
			Params: map[string]string{
				"reason":   d.Reason,
				"header.d": d.Domain,
				"header.i": hide(d.Identifier),
				"header.s": d.Selector,
				"header.a": d.Algorithm,
			},
		})
	}
	return out
}

// addressHider returns the function applied to address identities: tokenize
// for an address with a local part, nothing for a bare "@domain" (the DKIM
// AUID default), the domain when tokenize is nil.
func addressHider(tokenize func(string) string) func(string) string {
	return func(addr string) string {
		switch {
		case addr == "" || strings.HasPrefix(addr, "@"):
			return addr
		case tokenize == nil:
			return domainOf(addr)
		default:
			return tokenize(addr)
		}
	}
}

func orNone(r Result) Result {
	if r == "" {
		return ResultNone
	}
	return r
}

// tidy removes the blanks authres.Format leaves after a result without
// properties ("spf=none ; dkim=…").
func tidy(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(s, " ;", ";"))
}

// StripAuthResults removes from a header section (raw bytes, as received)
// every Authentication-Results field whose authserv-id is authservID,
// compared case-insensitively, and returns the rest and how many fields it
// removed. RFC 8601 §5: a border MTA MUST remove such fields that come from
// outside, since they would be read as our own verdicts. Fields of other
// authserv-ids, every other field, the field order and the bytes of what is
// kept, and anything after the header section (the empty line and the body,
// if present) are unchanged.
//
// The authserv-id is found after any comments and folding white space that
// precede it (RFC 8601 §2.2: "[CFWS] authserv-id"), as a token or a
// quoted-string.
func StripAuthResults(hdr []byte, authservID string) ([]byte, int) {
	return removeFields(hdr, func(f []byte) bool { return isAuthResultsOf(f, authservID) })
}

// isAuthResultsOf reports whether a raw field is an Authentication-Results
// field whose authserv-id is id.
func isAuthResultsOf(f []byte, id string) bool {
	name, value, ok := bytes.Cut(f, []byte(":"))
	if !ok || !strings.EqualFold(strings.TrimRight(string(name), " \t"), "Authentication-Results") {
		return false
	}
	got, ok := parseAuthservID(value)
	return ok && strings.EqualFold(got, id)
}

// parseAuthservID returns the authserv-id at the start of an
// Authentication-Results value: after CFWS, a quoted-string or a token that
// ends at white space, ";" or a comment.
func parseAuthservID(value []byte) (string, bool) {
	b := skipCFWS(value)
	if len(b) == 0 {
		return "", false
	}
	if b[0] == '"' {
		return quotedString(b)
	}
	end := bytes.IndexAny(b, " \t\r\n;(")
	if end < 0 {
		end = len(b)
	}
	return string(b[:end]), end > 0
}

// skipCFWS skips folding white space and comments (RFC 5322 §3.2.2).
func skipCFWS(b []byte) []byte {
	for len(b) > 0 {
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			b = b[1:]
		case '(':
			b = skipComment(b)
		default:
			return b
		}
	}
	return b
}

// skipComment skips one comment, nested comments and quoted-pairs included;
// an unterminated comment swallows the rest.
func skipComment(b []byte) []byte {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return b[i+1:]
			}
		}
	}
	return nil
}

// quotedString decodes the quoted-string at the start of b (RFC 5322
// §3.2.4); ok is false when it is not terminated.
func quotedString(b []byte) (string, bool) {
	var sb strings.Builder
	for i := 1; i < len(b); i++ {
		switch c := b[i]; c {
		case '\\':
			if i+1 < len(b) {
				i++
				sb.WriteByte(b[i])
			}
		case '"':
			return sb.String(), true
		case '\r', '\n':
			// folding inside the quotes is not part of the content
		default:
			sb.WriteByte(c)
		}
	}
	return "", false
}
