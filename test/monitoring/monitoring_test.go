package monitoring

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/tools"
)

func kitDir(t *testing.T) string {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// promtool runs Prometheus's promtool (Debian package prometheus, installed
// by test/tools/install.sh when missing) in dir.
func promtool(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), tools.Path(t, "promtool"), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestAlertRulesCheck: the rules file passes promtool's own checks
// (syntax, PromQL, templates).
func TestAlertRulesCheck(t *testing.T) {
	if out, err := promtool(t, kitDir(t), "check", "rules", RulesFile); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", RulesFile, err, out)
	}
}

// TestAlertRulesUnitTests runs every promtool unit-test file: each alert
// fires on the series that should fire it, with its labels and
// annotations, and stays quiet on the others.
func TestAlertRulesUnitTests(t *testing.T) {
	dir := kitDir(t)
	files, err := filepath.Glob(filepath.Join(dir, RuleTestsGlob))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule tests %s in %s (%v)", RuleTestsGlob, dir, err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		t.Run(rel, func(t *testing.T) {
			if out, err := promtool(t, dir, "test", "rules", rel); err != nil {
				t.Fatalf("promtool test rules %s: %v\n%s", rel, err, out)
			}
		})
	}
}

// TestEveryAlertIsTested: each alert of the rules file has a unit-test
// case where it fires and one where it must not, and every test file
// loads the shipped rules file.
func TestEveryAlertIsTested(t *testing.T) {
	dir := kitDir(t)
	rules, err := ReadRules(filepath.Join(dir, RulesFile))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, RuleTestsGlob))
	fires, quiet := map[string]int{}, map[string]int{}
	for _, f := range files {
		rt, err := ReadRuleTest(f)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rt.RuleFiles, []string{"../" + RulesFile}) {
			t.Errorf("%s: rule_files %v, want [../%s]", f, rt.RuleFiles, RulesFile)
		}
		for _, tc := range rt.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.AlertName]++
				} else {
					quiet[a.AlertName]++
				}
			}
		}
	}
	alerts := rules.Alerts()
	if len(alerts) == 0 {
		t.Fatal("no alerts in the rules file")
	}
	for _, a := range alerts {
		if fires[a] == 0 || quiet[a] == 0 {
			t.Errorf("alert %s: %d firing and %d quiet test cases; want at least one of each", a, fires[a], quiet[a])
		}
	}
	for a := range fires {
		if !slices.Contains(alerts, a) {
			t.Errorf("a test expects alert %s, which the rules file does not have", a)
		}
	}
}

// TestDashboardStructure: the dashboard parses, has its uid, unique panel
// ids within the 24-column grid, a query on every panel that is not a row,
// and a metric of the proxy in every query.
func TestDashboardStructure(t *testing.T) {
	d, err := ReadDashboard(filepath.Join(kitDir(t), DashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	if d.UID != "tokenproxy" || d.Title == "" {
		t.Errorf("uid %q title %q; want uid tokenproxy and a title", d.UID, d.Title)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Type+":"+v.Name)
	}
	if !slices.Contains(vars, "datasource:datasource") || !slices.Contains(vars, "query:instance") {
		t.Errorf("variables %v; want a datasource variable and an instance query", vars)
	}
	ids := map[int]bool{}
	for _, p := range d.AllPanels() {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %d (%s): gridPos %+v outside the 24-column grid", p.ID, p.Title, g)
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %d (%s) has no query", p.ID, p.Title)
		}
	}
	qs := d.Queries()
	if len(qs) < 20 {
		t.Errorf("%d queries; the dashboard lost its panels?", len(qs))
	}
	for _, q := range qs {
		if len(MetricNames(q.Expr)) == 0 {
			t.Errorf("%s: %q uses no tokenproxy, go or process metric", q.Where, q.Expr)
		}
	}
}

// TestKitPromQLSyntax passes every dashboard query (Grafana's variables
// replaced) and every alert expression through promtool's PromQL parser,
// as recording rules of a scratch rules file; a broken expression is
// refused, so the check checks.
func TestKitPromQLSyntax(t *testing.T) {
	dir := kitDir(t)
	d, err := ReadDashboard(filepath.Join(dir, DashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := ReadRules(filepath.Join(dir, RulesFile))
	if err != nil {
		t.Fatal(err)
	}
	kit := append(d.Queries(), rules.Queries()...)
	tests := []struct {
		name    string
		queries []Query
		ok      bool
	}{
		{"the kit", kit, true},
		{"a broken expression", []Query{{Where: "test", Expr: "sum by (route (rate(tokenproxy_messages_total[5m]))"}}, false},
		{"a Grafana variable left", []Query{{Where: "test", Expr: "rate(tokenproxy_messages_total[$__unknown])"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := scratchRules(t, tt.queries)
			out, err := promtool(t, filepath.Dir(file), "check", "rules", filepath.Base(file))
			if (err == nil) != tt.ok {
				t.Fatalf("promtool check rules: err %v, want ok=%v\n%s", err, tt.ok, out)
			}
		})
	}
}

// scratchRules writes queries as recording rules.
func scratchRules(t *testing.T, qs []Query) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("groups:\n  - name: kit\n    rules:\n")
	for i, q := range qs {
		fmt.Fprintf(&b, "      # %s\n      - record: kit:query_%d\n        expr: %q\n", strings.ReplaceAll(q.Where, "\n", " "), i, PlainPromQL(q.Expr))
	}
	file := filepath.Join(t.TempDir(), "kit.yml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
