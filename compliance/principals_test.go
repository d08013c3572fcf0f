package compliance

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"testing"

	"github.com/tokenproxy/tokenproxy/policy"
)

// TestPrincipalsRevokedOnReload: a reload that drops a principal stops
// its token at the next request.
func TestPrincipalsRevokedOnReload(t *testing.T) {
	sum := sha256.Sum256([]byte("secret-alice"))
	who := newPrincipals([]policy.Principal{{Name: "alice", Roles: []string{"officer"}, TokenSHA256: hex.EncodeToString(sum[:])}})
	req := httptest.NewRequest("POST", "/v1/compliance/resolve", nil)
	req.Header.Set("Authorization", "Bearer secret-alice")
	if p, ok := who.identify(req); !ok || p.Name != "alice" {
		t.Fatal("configured token not accepted")
	}
	who.set(nil)
	if _, ok := who.identify(req); ok {
		t.Fatal("revoked token still accepted")
	}
}
