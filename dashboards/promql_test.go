package dashboards

import (
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// TestValues replace the Grafana variables in queries for tests: every
// cluster and flow, and a rate window of 1m.
var TestValues = strings.NewReplacer(VarRateInterval, "1m", VarCluster, ".*", VarFlow, ".*")

// alertRule is one rule of alerts.yml.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(t *testing.T, b []byte) []alertRule {
	t.Helper()
	var f struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var out []alertRule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return out
}

// selectedMetrics parses expr as PromQL and returns the metric names its
// selectors name.
func selectedMetrics(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		names = append(names, name)
		return nil
	})
	return names, nil
}

// TestDashboardsQueriesUseExportedMetrics parses every panel query and
// alert expression with Prometheus's own PromQL parser and fails on any
// metric the code does not export (exportedMetrics: the registries of an
// in-process broker and mirror worker, and kdr up's failover collector).
func TestDashboardsQueriesUseExportedMetrics(t *testing.T) {
	e := exportedMetrics(t)
	for _, bad := range []string{"kdr_no_such_metric", "kdr_broker_partitions_bucket", "kdr_mirror_records_total_sum"} {
		if e.has(bad) {
			t.Fatalf("exported metrics accept %s", bad)
		}
	}
	if !e.has("kdr_mirror_replication_latency_seconds_bucket") || !e.has("kdr_broker_under_replicated_partitions") {
		t.Fatal("exported metrics miss a histogram bucket or a broker gauge")
	}
	check := func(where, expr string) {
		names, err := selectedMetrics(TestValues.Replace(expr))
		if err != nil {
			t.Errorf("%s: %q does not parse: %v", where, expr, err)
			return
		}
		if len(names) == 0 {
			t.Errorf("%s: %q selects no metric", where, expr)
		}
		for _, n := range names {
			if n == "" {
				t.Errorf("%s: %q has a selector without a metric name", where, expr)
			} else if !e.has(n) {
				t.Errorf("%s: %q uses %s, which no kdr registry exports", where, expr, n)
			}
		}
	}
	queries := 0
	for _, d := range All() {
		for _, q := range d.Queries() {
			check(d.Title+" / "+q.Panel, q.Expr)
			queries++
		}
	}
	for v, q := range VariableQueries {
		check("variable "+v, q.Metric+`{`+q.Label+`!=""}`)
	}
	for _, r := range alertRules(t, Alerts()) {
		check("alert "+r.Alert, r.Expr)
	}
	t.Logf("%d panel queries checked against %d exported metric names", queries, len(e.names))
}
