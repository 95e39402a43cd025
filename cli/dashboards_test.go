package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kdr-io/kdr/dashboards"
)

// TestDashboardsFlags: the subcommands parse their arguments and flags
// into the options, with the documented defaults.
func TestDashboardsFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		name string
		want DashboardsOptions
	}{
		{[]string{"prometheus-config"}, "prometheus-config", DashboardsOptions{Out: "prometheus.yml", ScrapeInterval: 5 * time.Second}},
		{[]string{"prometheus-config", "e.yaml", "--state-dir", "/s", "--out", "-", "--scrape-interval", "1s", "--up-metrics", "http://h:1/metrics"},
			"prometheus-config", DashboardsOptions{File: "e.yaml", StateDir: "/s", Out: "-", ScrapeInterval: time.Second, UpMetrics: "http://h:1/metrics"}},
		{[]string{"prometheus", "--state-dir", "/s"}, "prometheus",
			DashboardsOptions{StateDir: "/s", ScrapeInterval: 5 * time.Second, Listen: dashboards.DefaultListen, Bin: "prometheus"}},
		{[]string{"grafana"}, "grafana", DashboardsOptions{Out: "kdr-dashboards"}},
		{[]string{"alerts", "e.yaml"}, "alerts", DashboardsOptions{File: "e.yaml", Out: "-"}},
	} {
		var got *DashboardsOptions
		var gotName string
		cmd := newCmdDashboards(IO{}, &globalOptions{}, func(name string, o *DashboardsOptions) error {
			gotName, got = name, o
			return nil
		})
		cmd.SetArgs(tc.args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		got.IO, got.Global = IO{}, nil
		if gotName != tc.name || *got != tc.want {
			t.Errorf("%q: got %s %+v, want %s %+v", tc.args, gotName, *got, tc.name, tc.want)
		}
	}
}

// TestDashboardsPrometheusConfigFromEndpoints: with a running kdr up's
// endpoints.json (this process stands in for it), every broker, worker
// and kdr up itself is a target, labelled for the dashboards; without
// one, the local brokers of the file are.
func TestDashboardsPrometheusConfigFromEndpoints(t *testing.T) {
	state := t.TempDir()
	e := map[string]any{
		"topology": "demo", "state_dir": state, "pid": os.Getpid(), "running": true, "healthy": true,
		"metrics_url": "http://127.0.0.1:9600/metrics",
		"clusters": []any{map[string]any{"name": "east", "local": true, "bootstrap": []string{"127.0.0.1:9092"},
			"brokers": []any{map[string]any{"id": 1, "addr": "127.0.0.1:9092", "metrics_url": "http://127.0.0.1:9292/metrics"}}}},
		"flows": []any{map[string]any{"name": "east->west", "source": "east", "target": "west", "group": "g",
			"workers": []any{map[string]any{"instance_id": "east-west-0", "metrics_url": "http://127.0.0.1:40139/metrics"}}}},
	}
	b, _ := json.Marshal(e)
	if err := os.WriteFile(filepath.Join(state, "endpoints.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "p", "prometheus.yml")
	var stdout, stderr bytes.Buffer
	if code := Execute([]string{"dashboards", "prometheus-config", "--state-dir", state, "--out", out}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	cfg, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"job_name: kdr-broker", "127.0.0.1:9292", "cluster: east", `broker: "1"`,
		"job_name: kdr-mirror", "127.0.0.1:40139", "flow: east->west", "worker: east-west-0",
		"job_name: kdr-up", "127.0.0.1:9600", "rule_files:", "- alerts.yml"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("prometheus.yml has no %q:\n%s", want, cfg)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(out), "alerts.yml")); err != nil {
		t.Errorf("alerts.yml not written next to prometheus.yml: %v", err)
	}

	// Not running: the demo's six local brokers, no workers.
	stdout.Reset()
	if code := Execute([]string{"dashboards", "prometheus-config", "--state-dir", t.TempDir(), "--out", "-"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if n := strings.Count(stdout.String(), "cluster: "); n != 6 || strings.Contains(stdout.String(), "kdr-mirror") {
		t.Errorf("without kdr up: %d broker targets, want the demo's 6 and no workers:\n%s", n, stdout.String())
	}
}

// TestDashboardsAlertsUsePolicy: kdr dashboards alerts writes the file's
// failover thresholds into KdrMirrorLagHigh.
func TestDashboardsAlertsUsePolicy(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.yaml")
	topo := `apiVersion: kdr.io/v1
kind: Topology
metadata: {name: p}
clusters:
  - name: east
    local: {brokers: 1, basePort: 31092}
  - name: west
    local: {brokers: 1, basePort: 32092}
replication:
  - {type: active-passive, primary: east, standby: west}
failover:
  maxLagRecords: 777
  maxLag: 2m
`
	if err := os.WriteFile(file, []byte(topo), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := Execute([]string{"dashboards", "alerts", file}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"(kdr_mirror_lag_records)) > 777\n", "(kdr_mirror_lag_seconds) > 120\n"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("alerts have no %q", strings.TrimSpace(want))
		}
	}
}
