package dashboards

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kdr-io/kdr/topology"
)

// TestDashboardsPrometheusConfig: one job per kind of process, one static
// config per target with its labels, honor_labels where the metrics carry
// flow and topology, and a config promtool accepts.
func TestDashboardsPrometheusConfig(t *testing.T) {
	targets := []Target{
		BrokerTarget("demo", "east", 1, "http://127.0.0.1:9292/metrics"),
		BrokerTarget("demo", "west", 1, "http://127.0.0.1:19292/metrics"),
		WorkerTarget("demo", "east->west", "east", "west", "east-west-0", "http://127.0.0.1:40000/metrics"),
		UpTarget("demo", "http://127.0.0.1:9600/other"),
	}
	b, err := PrometheusConfig(targets, ScrapeOptions{Interval: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var cfg promConfig
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Global.ScrapeInterval != "1500ms" || len(cfg.RuleFiles) != 1 || cfg.RuleFiles[0] != AlertsFile {
		t.Errorf("global %+v, rule_files %v", cfg.Global, cfg.RuleFiles)
	}
	want := map[string]struct {
		path   string
		honor  bool
		n      int
		labels string
	}{
		JobBroker: {"/metrics", false, 2, "cluster"},
		JobMirror: {"/metrics", true, 1, "flow"},
		JobUp:     {"/other", true, 1, "topology"},
	}
	for _, sc := range cfg.ScrapeConfigs {
		w, ok := want[sc.JobName]
		if !ok || sc.MetricsPath != w.path || sc.HonorLabels != w.honor || len(sc.StaticConfigs) != w.n || sc.StaticConfigs[0].Labels[w.labels] == "" {
			t.Errorf("scrape config %+v", sc)
		}
		delete(want, sc.JobName)
	}
	if len(want) > 0 {
		t.Errorf("no scrape config for %v", want)
	}
	if _, err := PrometheusConfig([]Target{{Job: JobBroker, URL: "127.0.0.1:9292"}}, ScrapeOptions{}); err == nil {
		t.Error("a URL without scheme accepted")
	}
	for d, s := range map[time.Duration]string{time.Second: "1s", 90 * time.Second: "1m30s", 2 * time.Hour: "2h", 250 * time.Millisecond: "250ms"} {
		if got := promDuration(d); got != s {
			t.Errorf("promDuration(%s) = %s, want %s", d, got, s)
		}
	}
	tool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found (make test installs it): prometheus.yml not checked by promtool")
	}
	path := filepath.Join(t.TempDir(), ConfigFile)
	if _, err := WriteConfig(path, b, Alerts()); err != nil {
		t.Fatal(err)
	}
	if changed, err := WriteConfig(path, b, Alerts()); err != nil || changed {
		t.Errorf("rewriting the same config: changed %v, %v", changed, err)
	}
	if out, err := exec.Command(tool, "check", "config", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}

// TestDashboardsLocalTargets: a local cluster's brokers at basePort+200+i,
// existing clusters left out.
func TestDashboardsLocalTargets(t *testing.T) {
	topo := &topology.Topology{Metadata: topology.Metadata{Name: "x"}, Clusters: []topology.Cluster{
		{Name: "east", Local: &topology.LocalCluster{Brokers: 2, BasePort: 11092}},
		{Name: "prod", Bootstrap: []string{"kafka:9092"}},
	}}
	got := LocalTargets(topo)
	if len(got) != 2 || got[1].URL != "http://127.0.0.1:11293/metrics" || got[1].Labels["broker"] != "2" ||
		got[1].Labels["cluster"] != "east" || got[1].Labels["topology"] != "x" {
		t.Fatalf("%+v", got)
	}
}
