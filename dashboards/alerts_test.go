package dashboards

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const runbookBase = "https://github.com/kdr-io/kdr/blob/main/docs/dashboards.md#"

// promtool returns promtool's path, or skips: make test installs it
// (scripts/test-deps.sh, Debian's prometheus package).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found: install Debian's prometheus package (make test does, through scripts/test-deps.sh) to check and unit-test the alert rules")
	}
	return p
}

// TestDashboardsAlertRules runs `promtool check rules` on alerts.yml and
// `promtool test rules` on alerts_test.yml, after checking that the tests
// cover every rule both firing (with all of the rule's labels) and not
// firing.
func TestDashboardsAlertRules(t *testing.T) {
	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				EvalTime  string `yaml:"eval_time"`
				Alertname string `yaml:"alertname"`
				ExpAlerts []struct {
					ExpLabels map[string]string `yaml:"exp_labels"`
				} `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	b, err := os.ReadFile(filepath.Join("prometheus", "alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatal(err)
	}
	quiet := map[string]bool{}
	var fired []map[string]string
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertRuleTest {
			if len(at.ExpAlerts) == 0 {
				quiet[at.Alertname] = true
			}
			for _, a := range at.ExpAlerts {
				l := map[string]string{"alertname": at.Alertname}
				for k, v := range a.ExpLabels {
					l[k] = v
				}
				fired = append(fired, l)
			}
		}
	}
	for _, r := range alertRules(t, Alerts()) {
		if !quiet[r.Alert] {
			t.Errorf("alerts_test.yml has no case where %s must not fire", r.Alert)
		}
		covered := false
		for _, l := range fired {
			match := l["alertname"] == r.Alert
			for k, v := range r.Labels {
				match = match && l[k] == v
			}
			covered = covered || match
		}
		if !covered {
			t.Errorf("alerts_test.yml has no case where %s %v fires", r.Alert, r.Labels)
		}
	}
	tool := promtool(t)
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(tool, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestDashboardsAlertsAnnotated checks that every alert has a severity, a
// summary, a description and a runbook_url pointing at its own section of
// docs/dashboards.md, and that the section exists.
func TestDashboardsAlertsAnnotated(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "dashboards.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range alertRules(t, Alerts()) {
		if r.Labels["severity"] != "warning" && r.Labels["severity"] != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", r.Alert, r.Labels["severity"])
		}
		for _, a := range []string{"summary", "description"} {
			if r.Annotations[a] == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		if want := runbookBase + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
		}
		if !regexp.MustCompile(`(?m)^### ` + r.Alert + `$`).Match(doc) {
			t.Errorf("docs/dashboards.md has no section \"### %s\" (its runbook)", r.Alert)
		}
	}
}

// TestDashboardsAlertsRender checks that the failover policy's thresholds
// land in KdrMirrorLagHigh, and that the result is still valid rules.
func TestDashboardsAlertsRender(t *testing.T) {
	same, err := RenderAlerts(0, 0)
	if err != nil || string(same) != string(Alerts()) {
		t.Fatalf("RenderAlerts(0, 0) changed the rules (%v)", err)
	}
	b, err := RenderAlerts(5000, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	for _, r := range alertRules(t, b) {
		if r.Alert == "KdrMirrorLagHigh" {
			exprs[r.Labels["lag"]] = r.Expr
		}
	}
	if exprs["records"] != "max by (flow) (kdr_mirror_flow_lag_records or sum by (flow) (kdr_mirror_lag_records)) > 5000" || exprs["seconds"] != "max by (flow) (kdr_mirror_lag_seconds) > 90" {
		t.Fatalf("rendered lag expressions %q", exprs)
	}
	if _, err := RenderAlerts(-1, 0); err == nil {
		t.Fatal("negative threshold accepted")
	}
	tool := promtool(t)
	f := filepath.Join(t.TempDir(), "alerts.yml")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the rendered rules: %v\n%s", err, out)
	}
}
