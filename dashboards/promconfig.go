package dashboards

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kdr-io/kdr/internal/atomicfile"
	"github.com/kdr-io/kdr/topology"
)

// Scrape jobs. The dashboards and alerts select on them.
const (
	JobBroker = "kdr-broker" // labels topology, cluster, broker (node id)
	JobMirror = "kdr-mirror" // labels topology, flow ("east->west"), worker (instance id), source, target
	JobUp     = "kdr-up"     // label topology; kdr up's own failover and drill metrics
)

// ConfigFile is the scrape configuration's file name.
const ConfigFile = "prometheus.yml"

// Target is one process Prometheus scrapes.
type Target struct {
	Job string
	// URL of the process's metrics, http://host:port/metrics.
	URL    string
	Labels map[string]string
}

// BrokerTarget is broker id of cluster.
func BrokerTarget(topo, cluster string, id int, metricsURL string) Target {
	return Target{Job: JobBroker, URL: metricsURL,
		Labels: map[string]string{"topology": topo, "cluster": cluster, "broker": strconv.Itoa(id)}}
}

// WorkerTarget is mirror worker instance of flow (source->target).
func WorkerTarget(topo, flow, source, target, instance, metricsURL string) Target {
	return Target{Job: JobMirror, URL: metricsURL,
		Labels: map[string]string{"topology": topo, "flow": flow, "worker": instance, "source": source, "target": target}}
}

// UpTarget is kdr up's own /metrics.
func UpTarget(topo, metricsURL string) Target {
	return Target{Job: JobUp, URL: metricsURL, Labels: map[string]string{"topology": topo}}
}

// LocalTargets are the brokers of t's local clusters, at the metrics ports
// kdr up gives them (LocalCluster.LocalPorts). t must have its defaults
// filled in (up.Normalize). Mirror workers are not included: kdr up picks
// their ports when it starts them, so only its endpoints.json knows them.
func LocalTargets(t *topology.Topology) []Target {
	var out []Target
	for _, c := range t.Clusters {
		if c.Local == nil {
			continue
		}
		host := c.Local.Host
		if host == "" {
			host = "127.0.0.1"
		}
		for i := range c.Local.Brokers {
			_, _, metrics := c.Local.LocalPorts(i)
			u := "http://" + host + ":" + strconv.Itoa(metrics) + "/metrics"
			out = append(out, BrokerTarget(t.Metadata.Name, c.Name, i+1, u))
		}
	}
	return out
}

// ScrapeOptions shape the generated prometheus.yml.
type ScrapeOptions struct {
	// Interval is scrape_interval (default 5s); EvaluationInterval is
	// evaluation_interval (default Interval).
	Interval, EvaluationInterval time.Duration
	// RuleFiles are rule_files, relative to the config file's directory
	// (default [AlertsFile]).
	RuleFiles []string
}

type promConfig struct {
	Global        promGlobal     `yaml:"global"`
	RuleFiles     []string       `yaml:"rule_files,omitempty"`
	ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
}

type promGlobal struct {
	ScrapeInterval     string `yaml:"scrape_interval"`
	ScrapeTimeout      string `yaml:"scrape_timeout"`
	EvaluationInterval string `yaml:"evaluation_interval"`
}

type scrapeConfig struct {
	JobName       string         `yaml:"job_name"`
	MetricsPath   string         `yaml:"metrics_path"`
	Scheme        string         `yaml:"scheme"`
	HonorLabels   bool           `yaml:"honor_labels"`
	StaticConfigs []staticConfig `yaml:"static_configs"`
}

type staticConfig struct {
	Targets []string          `yaml:"targets"`
	Labels  map[string]string `yaml:"labels"`
}

// PrometheusConfig renders prometheus.yml scraping targets: one job per
// Target.Job (in the order of their first target), one static config per
// target so that each carries its own labels. The mirror and kdr up jobs
// honor the labels their metrics carry (flow, topology, cluster) so that
// these stay the metrics' own.
func PrometheusConfig(targets []Target, opts ScrapeOptions) ([]byte, error) {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.EvaluationInterval <= 0 {
		opts.EvaluationInterval = opts.Interval
	}
	if opts.RuleFiles == nil {
		opts.RuleFiles = []string{AlertsFile}
	}
	cfg := promConfig{
		Global: promGlobal{ScrapeInterval: promDuration(opts.Interval), ScrapeTimeout: promDuration(opts.Interval),
			EvaluationInterval: promDuration(opts.EvaluationInterval)},
		RuleFiles: opts.RuleFiles,
	}
	jobs := map[string]int{} // job and metrics path → index in ScrapeConfigs
	for _, t := range targets {
		u, err := url.Parse(t.URL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("dashboards: target %s %v: metrics URL %q is not http(s)://host:port/path", t.Job, t.Labels, t.URL)
		}
		path := u.Path
		if path == "" {
			path = "/metrics"
		}
		key := t.Job + " " + u.Scheme + " " + path
		i, ok := jobs[key]
		if !ok {
			name := t.Job
			for n := 2; slices.ContainsFunc(cfg.ScrapeConfigs, func(s scrapeConfig) bool { return s.JobName == name }); n++ {
				name = t.Job + "-" + strconv.Itoa(n) // same job, another path: a job name must be unique
			}
			i = len(cfg.ScrapeConfigs)
			jobs[key] = i
			cfg.ScrapeConfigs = append(cfg.ScrapeConfigs, scrapeConfig{JobName: name, MetricsPath: path, Scheme: u.Scheme,
				HonorLabels: t.Job == JobMirror || t.Job == JobUp})
		}
		labels := map[string]string{}
		for k, v := range t.Labels {
			labels[k] = v
		}
		if cfg.ScrapeConfigs[i].JobName != t.Job {
			labels["job"] = t.Job // the dashboards and alerts select on job
		}
		cfg.ScrapeConfigs[i].StaticConfigs = append(cfg.ScrapeConfigs[i].StaticConfigs,
			staticConfig{Targets: []string{u.Host}, Labels: labels})
	}
	if len(cfg.ScrapeConfigs) == 0 {
		cfg.ScrapeConfigs = []scrapeConfig{} // a valid config that scrapes nothing
	}
	var buf bytes.Buffer
	buf.WriteString("# Generated by kdr dashboards prometheus-config: every broker, mirror worker and kdr up of the\n" +
		"# topology, labelled for kdr's Grafana dashboards (cluster, broker, flow, worker).\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// promDuration formats d as a Prometheus duration ("1s", "1m30s", "500ms").
func promDuration(d time.Duration) string {
	if d%time.Second != 0 {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	s := int64(d / time.Second)
	out := ""
	if s >= 3600 {
		out += strconv.FormatInt(s/3600, 10) + "h"
		s %= 3600
	}
	if s >= 60 {
		out += strconv.FormatInt(s/60, 10) + "m"
		s %= 60
	}
	if s > 0 || out == "" {
		out += strconv.FormatInt(s, 10) + "s"
	}
	return out
}

// WriteConfig writes config as path and alerts as AlertsFile next to it,
// each atomically, and reports whether either changed.
func WriteConfig(path string, config, alerts []byte) (changed bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("dashboards: %w", err)
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{filepath.Join(dir, AlertsFile), alerts}, {path, config}} {
		if old, err := os.ReadFile(f.path); err == nil && string(old) == string(f.data) {
			continue
		}
		if err := atomicfile.Write(f.path, f.data, 0o644); err != nil {
			return changed, fmt.Errorf("dashboards: writing %s: %w", f.path, err)
		}
		changed = true
	}
	return changed, nil
}
