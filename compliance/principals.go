package compliance

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/tokenproxy/tokenproxy/policy"
)

// principals maps credentials to configured principals. It is swapped
// whole on a configuration reload, so a revoked token stops working at
// the next request.
type principals struct {
	list atomic.Pointer[[]policy.Principal]
}

func newPrincipals(ps []policy.Principal) *principals {
	p := &principals{}
	p.set(ps)
	return p
}

func (p *principals) set(ps []policy.Principal) {
	c := slices.Clone(ps)
	p.list.Store(&c)
}

// identify returns the principal of a request: by verified client
// certificate first, else by bearer token. ok is false when neither
// matches.
func (p *principals) identify(r *http.Request) (policy.Principal, bool) {
	ps := *p.list.Load()
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		leaf := r.TLS.VerifiedChains[0][0]
		if pr, ok := byCertificate(ps, leaf); ok {
			return pr, true
		}
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return policy.Principal{}, false
	}
	return byToken(ps, token)
}

// byToken finds the principal of a bearer token.
func byToken(ps []policy.Principal, token string) (policy.Principal, bool) {
	token = strings.TrimSpace(token)
	if token == "" {
		return policy.Principal{}, false
	}
	sum := sha256.Sum256([]byte(token))
	for _, pr := range ps {
		want, err := hex.DecodeString(pr.TokenSHA256)
		if err == nil && len(want) == len(sum) && subtle.ConstantTimeCompare(want, sum[:]) == 1 {
			return pr, true
		}
	}
	return policy.Principal{}, false
}

func byCertificate(ps []policy.Principal, leaf *x509.Certificate) (policy.Principal, bool) {
	fp := sha256.Sum256(leaf.Raw)
	for _, pr := range ps {
		if pr.ClientCertSHA256 != "" && strings.EqualFold(pr.ClientCertSHA256, hex.EncodeToString(fp[:])) {
			return pr, true
		}
		if pr.ClientCertCN != "" && pr.ClientCertCN == leaf.Subject.CommonName {
			return pr, true
		}
	}
	return policy.Principal{}, false
}

func hasRole(p policy.Principal, role string) bool { return slices.Contains(p.Roles, role) }
