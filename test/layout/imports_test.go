package layout

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/tokenproxy/tokenproxy"

// allowed lists, for each package of ours (relative to the module; a
// trailing /... covers the subtree), the packages of ours it may import.
// Imports point one way: cmd/proxy wires everything; smtp and admin use
// the packages below them; compliance uses tokenize and audit; rewrite
// reaches the map through a small interface; tokenize uses address and
// vault; policy, address, audit and vault import nothing of ours but
// leaf helpers (internal/...). A package missing here fails the test:
// a new package is placed on purpose.
var allowed = map[string][]string{
	"cmd/proxy":       {"..."},
	"test/...":        {"..."},
	"deploy/examples": {},
	"internal/...":    {},

	"address": {"internal/..."},
	"policy":  {"internal/..."},
	"audit":   {"internal/..."},
	"vault":   {"internal/..."},

	"tokenize":           {"address", "vault", "internal/..."},
	"tokenize/boltstore": {"tokenize", "vault", "internal/..."},
	"tokenize/etcdstore": {"tokenize", "vault", "internal/..."},
	"tokenize/storetest": {"tokenize", "vault", "internal/..."},

	"rewrite":        {"rewrite/...", "tokenize", "address", "internal/..."},
	"rewrite/scan":   {"address", "internal/..."},
	"rewrite/pdf":    {"rewrite/scan"}, // finds addresses in PDFs with the body scanner
	"rewrite/header": {"rewrite/scan", "tokenize", "address", "internal/..."},
	// Attachments (office documents, archives) find addresses with the
	// same scanner as bodies; what each becomes is the caller's AddrFunc.
	// PDFs in archives are read by the PDF reader, as attached ones are.
	"rewrite/attach": {"rewrite/scan", "rewrite/pdf", "internal/..."},

	"mailauth": {"internal/..."},
	// compliance/reason.go refuses a reason in which the mail scanner
	// sees an address: the same scanner, not a second, weaker copy.
	// It also audits every access to the quarantine of stripped attachments.
	"compliance": {"tokenize", "audit", "policy", "address", "rewrite/scan", "quarantine", "internal/..."},
	"admin":      {"compliance", "audit", "policy", "internal/..."},
	// The console's pages call the compliance service (the same audited
	// acts as the API) and show audit records; cmd/proxy mounts it on
	// the admin listener.
	"console": {"compliance", "audit", "policy", "tokenize", "internal/..."},
	// The quarantine seals stripped attachments under the record key.
	"quarantine": {"vault", "internal/..."},

	"smtp/downstream":                {"policy", "internal/..."},
	"smtp/downstream/downstreamtest": {},
	"smtp": {"smtp/downstream", "rewrite/...", "tokenize", "address", "audit", "mailauth", "policy",
		"vault", "internal/..."},
}

type pkg struct {
	ImportPath string
	Imports    []string
}

func TestImportGraph(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		from := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		rules, ok := rulesFor(from)
		if !ok {
			t.Errorf("package %s has no entry in the allowed import graph", from)
			continue
		}
		for _, imp := range p.Imports {
			to, ours := strings.CutPrefix(imp, module+"/")
			if ours && !matchesAny(to, rules) {
				t.Errorf("%s imports %s: not an allowed edge (DESIGN.md, Layout and import rules)", from, to)
			}
		}
	}
}

// rulesFor finds the most specific entry for a package.
func rulesFor(p string) ([]string, bool) {
	if r, ok := allowed[p]; ok {
		return r, true
	}
	for dir := p; dir != "." && dir != "/"; dir = path.Dir(dir) {
		if r, ok := allowed[dir+"/..."]; ok {
			return r, true
		}
	}
	return nil, false
}

func matchesAny(p string, patterns []string) bool {
	return slices.ContainsFunc(patterns, func(pat string) bool {
		if pat == "..." {
			return true
		}
		if base, ok := strings.CutSuffix(pat, "/..."); ok {
			return p == base || strings.HasPrefix(p, base+"/")
		}
		return p == pat
	})
}

func TestMatchesAny(t *testing.T) {
	for _, c := range []struct {
		p    string
		pats []string
		want bool
	}{
		{"tokenize", []string{"tokenize"}, true},
		{"tokenize/boltstore", []string{"tokenize"}, false},
		{"rewrite/scan", []string{"rewrite/..."}, true},
		{"rewriter", []string{"rewrite/..."}, false},
		{"anything", []string{"..."}, true},
		{"audit", nil, false},
	} {
		if got := matchesAny(c.p, c.pats); got != c.want {
			t.Errorf("matchesAny(%q, %q) = %v", c.p, c.pats, got)
		}
	}
}
