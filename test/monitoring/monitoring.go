// Package monitoring reads the operators' kit in deploy/monitoring (the
// Prometheus alert rules, their promtool unit tests, the Grafana
// dashboard) for the tests that check it: this package's own (promtool
// check and test, the dashboard's structure and PromQL syntax) and
// test/integration's, which checks every metric name they use against the
// /metrics of a running proxy.
package monitoring

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Dir is deploy/monitoring, found from this source file.
func Dir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("monitoring: cannot locate the source directory")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "monitoring"), nil
}

// The kit's files, relative to Dir.
const (
	RulesFile     = "tokenproxy-alerts.yml"
	DashboardFile = "tokenproxy-dashboard.json"
	RuleTestsGlob = "tests/*.test.yml"
)

// Query is one PromQL expression of the kit and where it stands.
type Query struct {
	Where string // "alert TokenproxyNoMailRelayed", "panel 3 (Refusal ratio) target B"
	Expr  string
}

// Rules is the part of a Prometheus rules file the tests read.
type Rules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string `yaml:"alert"`
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ReadRules parses a rules file.
func ReadRules(path string) (*Rules, error) {
	var r Rules
	if err := readYAML(path, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Alerts lists the alert names in file order.
func (r *Rules) Alerts() []string {
	var names []string
	for _, g := range r.Groups {
		for _, rule := range g.Rules {
			if rule.Alert != "" {
				names = append(names, rule.Alert)
			}
		}
	}
	return names
}

// Queries lists every rule's expression.
func (r *Rules) Queries() []Query {
	var qs []Query
	for _, g := range r.Groups {
		for _, rule := range g.Rules {
			qs = append(qs, Query{Where: "alert " + rule.Alert + rule.Record, Expr: rule.Expr})
		}
	}
	return qs
}

// RuleTest is the part of a promtool unit-test file the tests read.
type RuleTest struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string           `yaml:"eval_time"`
			AlertName string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// ReadRuleTest parses a promtool unit-test file.
func ReadRuleTest(path string) (*RuleTest, error) {
	var rt RuleTest
	if err := readYAML(path, &rt); err != nil {
		return nil, err
	}
	return &rt, nil
}

func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Dashboard is the part of a Grafana dashboard model the tests read.
type Dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []Panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

// Panel is a dashboard panel; rows may hold panels of their own.
type Panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []Panel `json:"panels"`
}

// ReadDashboard parses a dashboard; unknown fields are allowed (Grafana's
// model is large), trailing data is not.
func ReadDashboard(path string) (*Dashboard, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: data after the dashboard object", path)
	}
	return &d, nil
}

// AllPanels flattens rows.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// Queries lists every panel target's expression, and each query
// variable's metric as a plain selector (label_values(m, l) is Grafana's
// syntax, not PromQL).
func (d *Dashboard) Queries() []Query {
	var qs []Query
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			qs = append(qs, Query{Where: fmt.Sprintf("panel %d (%s) target %s", p.ID, p.Title, t.RefID), Expr: t.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if m := labelValues.FindStringSubmatch(v.Definition); m != nil {
			qs = append(qs, Query{Where: "variable " + v.Name, Expr: m[1]})
		}
	}
	return qs
}

var labelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$`)

// grafanaVars are the dashboard's variables with a value that makes the
// expression plain PromQL.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$instance", ".*",
)

// PlainPromQL replaces Grafana's variables in expr with sample values.
func PlainPromQL(expr string) string { return grafanaVars.Replace(expr) }

// metricName matches the names of the families a tokenproxy node exports:
// its own, and the Go runtime's and process's collectors.
var metricName = regexp.MustCompile(`\b(?:tokenproxy|go|process)_[a-zA-Z0-9_]+\b`)

// MetricNames lists the metric names expr uses, sorted, without repeats.
func MetricNames(expr string) []string {
	names := metricName.FindAllString(expr, -1)
	slices.Sort(names)
	return slices.Compact(names)
}

// Family is the metric family a sample name belongs to: a histogram's
// _bucket, _sum and _count series belong to it when types says it is
// one (types: family name → "counter", "gauge", "histogram", ...).
func Family(name string, types map[string]string) (string, bool) {
	if _, ok := types[name]; ok {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if ok && (types[base] == "histogram" || (suffix != "_bucket" && types[base] == "summary")) {
			return base, true
		}
	}
	return "", false
}
