package dashboards

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ErrNoPrometheus is returned by StartPrometheus when no prometheus binary
// is found (Debian: apt-get install prometheus).
var ErrNoPrometheus = errors.New("dashboards: prometheus not found (install it, e.g. apt-get install prometheus, or pass its path)")

// DefaultListen is where a local Prometheus serves its UI and API.
const DefaultListen = "127.0.0.1:9090"

// PrometheusConfig's file layout in a state dir: the configuration and
// rules in prometheus-config/, the TSDB in prometheus/.
const (
	promConfigDir = "prometheus-config"
	promDataDir   = "prometheus"
)

// LocalPrometheus is a Prometheus that StartPrometheus runs for a
// topology, keeping everything under StateDir.
type LocalPrometheus struct {
	// Targets to scrape, and how (see PrometheusConfig).
	Targets []Target
	Scrape  ScrapeOptions
	// Alerts are the rules (default Alerts()).
	Alerts []byte
	// StateDir holds prometheus-config/prometheus.yml, its alerts.yml and
	// the TSDB in prometheus/. Required.
	StateDir string
	// Listen is --web.listen-address (default DefaultListen).
	Listen string
	// Bin is the prometheus executable (default: "prometheus" on PATH).
	Bin string
	// Stdout and Stderr receive Prometheus's output (default: discarded).
	Stdout, Stderr io.Writer
	// Args are appended to the command line.
	Args []string
}

// ConfigPath is where the configuration is written.
func (p *LocalPrometheus) ConfigPath() string {
	return filepath.Join(p.StateDir, promConfigDir, ConfigFile)
}

// WriteConfig (re)writes the configuration and rules from Targets and
// reports whether they changed; a running Prometheus rereads them on
// SIGHUP.
func (p *LocalPrometheus) WriteConfig() (changed bool, err error) {
	cfg, err := PrometheusConfig(p.Targets, p.Scrape)
	if err != nil {
		return false, err
	}
	alerts := p.Alerts
	if alerts == nil {
		alerts = Alerts()
	}
	return WriteConfig(p.ConfigPath(), cfg, alerts)
}

// StartPrometheus writes p's configuration and starts prometheus on it,
// with its TSDB in StateDir/prometheus, listening on p.Listen. The process
// gets SIGTERM when ctx ends (SIGKILL 10 s later) and, on Linux, dies with
// its parent. The caller Waits for it; WaitPrometheusReady tells when it
// serves queries.
func StartPrometheus(ctx context.Context, p *LocalPrometheus) (*exec.Cmd, error) {
	if p.StateDir == "" {
		return nil, errors.New("dashboards: StartPrometheus needs a state dir")
	}
	bin := p.Bin
	if bin == "" {
		bin = "prometheus"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoPrometheus, err)
	}
	if _, err := p.WriteConfig(); err != nil {
		return nil, err
	}
	data := filepath.Join(p.StateDir, promDataDir)
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, fmt.Errorf("dashboards: %w", err)
	}
	listen := p.Listen
	if listen == "" {
		listen = DefaultListen
	}
	args := append([]string{
		"--config.file=" + p.ConfigPath(),
		"--storage.tsdb.path=" + data,
		"--web.listen-address=" + listen,
		"--web.enable-lifecycle",
	}, p.Args...)
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = p.Stdout, p.Stderr
	cmd.SysProcAttr = childAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dashboards: starting %s: %w", path, err)
	}
	return cmd, nil
}

// WaitPrometheusReady polls http://listen/-/ready until Prometheus answers
// 200 or ctx ends.
func WaitPrometheusReady(ctx context.Context, listen string) error {
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+listen+"/-/ready", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dashboards: prometheus on %s not ready: %w", listen, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
