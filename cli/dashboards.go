package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdr-io/kdr/dashboards"
	"github.com/kdr-io/kdr/topology"
	"github.com/kdr-io/kdr/up"
)

// DashboardsOptions are the parsed options of the kdr dashboards commands.
type DashboardsOptions struct {
	IO     IO
	Global *globalOptions
	File   string // topology file; "" means the built-in demo
	// StateDir is kdr up's state dir, for endpoints.json (and, for
	// `prometheus`, the TSDB); "" means up.DefaultStateDir.
	StateDir string
	// Out is where the command writes: a file, a directory, or "-".
	Out            string
	ScrapeInterval time.Duration
	// UpMetrics is kdr up's own metrics URL ("" means endpoints.json's
	// metrics_url, if any).
	UpMetrics string
	// Listen and Bin are the local Prometheus's address and executable.
	Listen, Bin string
}

// NewCmdDashboards is `kdr dashboards`: Prometheus and Grafana for a
// topology.
func NewCmdDashboards(streams IO, g *globalOptions) *cobra.Command {
	return newCmdDashboards(streams, g, nil)
}

// newCmdDashboards builds the command tree; runF, when set, replaces every
// subcommand's run step (tests), getting the subcommand's name.
func newCmdDashboards(streams IO, g *globalOptions, runF func(string, *DashboardsOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dashboards",
		Short: "Prometheus scrape config, alert rules and Grafana dashboards for a topology",
		Long: `Observability for a topology: a Prometheus configuration that scrapes every broker, mirror worker
and kdr up itself, kdr's alert rules, and the Grafana dashboards (DR overview, mirror flows, broker
clusters, failover and drills). See docs/dashboards.md.`,
		Example: `  kdr dashboards prometheus-config --out /tmp/prom/prometheus.yml
  kdr dashboards prometheus estate.yaml
  kdr dashboards grafana --out grafana/`,
		Args: cobra.NoArgs,
	}
	run := func(name string, opts *DashboardsOptions, f func(context.Context, *DashboardsOptions) error) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.File = args[0]
			}
			if opts.ScrapeInterval < 0 {
				return usageError{fmt.Errorf("--scrape-interval must not be negative, got %s", opts.ScrapeInterval)}
			}
			if runF != nil {
				return runF(name, opts)
			}
			return f(c.Context(), opts)
		}
	}
	stateFlags := func(c *cobra.Command, opts *DashboardsOptions) {
		f := c.Flags()
		f.StringVar(&opts.StateDir, "state-dir", "", "kdr up's state dir, for endpoints.json (default $XDG_STATE_HOME/kdr/<topology name>)")
		f.DurationVar(&opts.ScrapeInterval, "scrape-interval", 5*time.Second, "scrape_interval (and evaluation_interval)")
		f.StringVar(&opts.UpMetrics, "up-metrics", "", "kdr up's own metrics URL (default: the one endpoints.json names, if any)")
	}

	config := &DashboardsOptions{IO: streams, Global: g}
	cfgCmd := &cobra.Command{
		Use:   "prometheus-config [FILE]",
		Short: "Write a prometheus.yml scraping every process of a topology",
		Long: `Write a Prometheus configuration scraping every process of a topology (FILE, or the built-in demo),
and kdr's alert rules next to it as alerts.yml (with the lag thresholds of the topology's failover
policy). While kdr up runs the topology, the targets come from its endpoints.json: every broker
(job kdr-broker, labels cluster and broker), every mirror worker (job kdr-mirror, labels flow and
worker) and kdr up itself (job kdr-up). Otherwise they are the local clusters' brokers at their
metrics ports (mirror workers get their ports when kdr up starts them). --out - prints the
configuration only.`,
		Example: `  kdr dashboards prometheus-config                                # the demo, into ./prometheus.yml
  kdr dashboards prometheus-config estate.yaml --out /etc/prometheus/prometheus.yml
  kdr dashboards prometheus-config --out - | grep job_name`,
		Args: upStatusArgs,
		RunE: run("prometheus-config", config, runPrometheusConfig),
	}
	stateFlags(cfgCmd, config)
	cfgCmd.Flags().StringVar(&config.Out, "out", dashboards.ConfigFile, `file to write ("-": stdout, without the rules)`)

	prom := &DashboardsOptions{IO: streams, Global: g}
	promCmd := &cobra.Command{
		Use:   "prometheus [FILE]",
		Short: "Run a local Prometheus scraping a topology",
		Long: `Write the configuration of prometheus-config into the state dir (prometheus-config/) and run the
prometheus binary on it (Debian: apt-get install prometheus), with its data in <state dir>/prometheus,
until Ctrl-C. While it runs, the targets are refreshed from endpoints.json every 5 seconds and
Prometheus reloads them, so restarted mirror workers stay scraped.`,
		Example: `  kdr up &                                 # the demo
  kdr dashboards prometheus                # then open http://127.0.0.1:9090
  kdr dashboards prometheus estate.yaml --listen 127.0.0.1:19090`,
		Args: upStatusArgs,
		RunE: run("prometheus", prom, runPrometheus),
	}
	stateFlags(promCmd, prom)
	promCmd.Flags().StringVar(&prom.Listen, "listen", dashboards.DefaultListen, "Prometheus's --web.listen-address")
	promCmd.Flags().StringVar(&prom.Bin, "bin", "prometheus", "prometheus executable")

	graf := &DashboardsOptions{IO: streams, Global: g}
	grafCmd := &cobra.Command{
		Use:   "grafana",
		Short: "Write the Grafana dashboards as JSON files",
		Long: `Write kdr's Grafana dashboards (schemaVersion 39) into a directory, one JSON file each, to import in
Grafana or provision. Each has a Prometheus data source variable and cluster and flow variables.`,
		Example: `  kdr dashboards grafana --out /var/lib/grafana/dashboards/kdr`,
		Args:    cobra.NoArgs,
		RunE:    run("grafana", graf, runGrafana),
	}
	grafCmd.Flags().StringVar(&graf.Out, "out", "kdr-dashboards", "directory to write the dashboards into")

	alerts := &DashboardsOptions{IO: streams, Global: g}
	alertsCmd := &cobra.Command{
		Use:   "alerts [FILE]",
		Short: "Print kdr's Prometheus alert rules",
		Long: `Print the alert rules (alerts.yml) with the lag thresholds of the topology's failover policy
(failover.maxLagRecords, failover.maxLag). Runbooks: docs/dashboards.md.`,
		Example: `  kdr dashboards alerts estate.yaml > /etc/prometheus/kdr-alerts.yml`,
		Args:    upStatusArgs,
		RunE:    run("alerts", alerts, runAlerts),
	}
	alertsCmd.Flags().StringVar(&alerts.Out, "out", "-", `file to write ("-": stdout)`)

	cmd.AddCommand(cfgCmd, promCmd, grafCmd, alertsCmd)
	return cmd
}

// dashboardTargets finds what to scrape for the dashboards commands (see
// scrapeTargets).
func dashboardTargets(opts *DashboardsOptions, t *topology.Topology) (targets []dashboards.Target, source string, err error) {
	return scrapeTargets(t, opts.StateDir, opts.UpMetrics)
}

// scrapeTargets finds what to scrape: from endpoints.json while kdr up
// runs the topology (in stateDir, "" for its default), else the local
// brokers of the file. upMetrics is kdr up's own metrics URL ("": the one
// endpoints.json names, if any). source says where the targets came from,
// for the user. kdr dashboards prometheus(-config) and kdr up --prometheus
// both build their configuration with it.
func scrapeTargets(t *topology.Topology, stateDir, upMetrics string) (targets []dashboards.Target, source string, err error) {
	t = up.Normalize(t)
	dir, err := upStateDir(stateDir, t)
	if err != nil {
		return nil, "", usageError{err}
	}
	path := up.Layout{Dir: dir}.Endpoints()
	upURL := upMetrics
	if e, err := up.ReadEndpoints(path); err == nil && e.Running && processAlive(e.PID) {
		for _, c := range e.Clusters {
			for _, b := range c.Brokers {
				targets = append(targets, dashboards.BrokerTarget(e.Topology, c.Name, b.ID, b.MetricsURL))
			}
		}
		for _, f := range e.Flows {
			for _, w := range f.Workers {
				targets = append(targets, dashboards.WorkerTarget(e.Topology, f.Name, f.Source, f.Target, w.InstanceID, w.MetricsURL))
			}
		}
		if upURL == "" {
			upURL = endpointsMetricsURL(path)
		}
		source = "kdr up's " + path
	} else {
		targets = dashboards.LocalTargets(t)
		source = "the local clusters of topology " + t.Metadata.Name + " (kdr up is not running on " + dir + ": no mirror workers)"
	}
	if upURL != "" {
		targets = append(targets, dashboards.UpTarget(t.Metadata.Name, upURL))
	}
	return targets, source, nil
}

// endpointsMetricsURL is kdr up's own metrics URL, the top-level
// metrics_url of endpoints.json, or "" while it has none.
func endpointsMetricsURL(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var e struct {
		MetricsURL string `json:"metrics_url"`
	}
	if json.Unmarshal(b, &e) != nil {
		return ""
	}
	return e.MetricsURL
}

// processAlive reports whether pid is a running process (endpoints.json
// of a SIGKILLed kdr up still says running).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func dashboardAlerts(t *topology.Topology) ([]byte, error) {
	return dashboards.RenderAlerts(t.Failover.MaxLagRecords, t.Failover.MaxLag)
}

func runPrometheusConfig(_ context.Context, opts *DashboardsOptions) error {
	t, err := upLoadTopology(opts.File)
	if err != nil {
		return err
	}
	targets, source, err := dashboardTargets(opts, t)
	if err != nil {
		return err
	}
	cfg, err := dashboards.PrometheusConfig(targets, dashboards.ScrapeOptions{Interval: opts.ScrapeInterval})
	if err != nil {
		return err
	}
	if opts.Out == "-" {
		_, err := opts.IO.Out.Write(cfg)
		return err
	}
	alerts, err := dashboardAlerts(t)
	if err != nil {
		return err
	}
	if _, err := dashboards.WriteConfig(opts.Out, cfg, alerts); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "wrote %s (%d targets from %s) and %s\n", opts.Out, len(targets), source,
		filepath.Join(filepath.Dir(opts.Out), dashboards.AlertsFile))
	return nil
}

// prometheusRefresh is how often `kdr dashboards prometheus` rereads
// endpoints.json.
const prometheusRefresh = 5 * time.Second

func runPrometheus(ctx context.Context, opts *DashboardsOptions) error {
	t, err := upLoadTopology(opts.File)
	if err != nil {
		return err
	}
	logger, err := opts.Global.logger(opts.IO.Err)
	if err != nil {
		return err
	}
	lp, err := startTopologyPrometheus(ctx, t, opts)
	if err != nil {
		return err
	}
	defer lp.logs.Close()
	fmt.Fprintf(opts.IO.Out, "Prometheus on http://%s scrapes %d targets from %s\nconfig %s, log %s\nPress Ctrl-C to stop.\n",
		opts.Listen, len(lp.p.Targets), lp.source, lp.p.ConfigPath(), lp.logFile)
	return lp.supervise(ctx, t, opts, logger)
}

// topologyPrometheus is a local Prometheus scraping a topology (the
// configuration of scrapeTargets), as kdr dashboards prometheus and
// kdr up --prometheus run it.
type topologyPrometheus struct {
	p       *dashboards.LocalPrometheus
	proc    *os.Process
	exited  chan error
	logs    *os.File
	logFile string
	source  string // where the targets came from
}

// startTopologyPrometheus writes the configuration for t into the state
// dir (opts.StateDir, "" for the default), starts opts.Bin on it,
// listening on opts.Listen, with its output in logs/prometheus.log, and
// waits until it is ready (30 s at most). It stops when ctx ends; the
// caller then closes logs. Without a prometheus binary, the error is
// dashboards.ErrNoPrometheus.
func startTopologyPrometheus(ctx context.Context, t *topology.Topology, opts *DashboardsOptions) (*topologyPrometheus, error) {
	dir, err := upStateDir(opts.StateDir, t)
	if err != nil {
		return nil, usageError{err}
	}
	targets, source, err := scrapeTargets(t, dir, opts.UpMetrics)
	if err != nil {
		return nil, err
	}
	alerts, err := dashboardAlerts(t)
	if err != nil {
		return nil, err
	}
	logFile := filepath.Join(dir, "logs", "prometheus.log")
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return nil, err
	}
	logs, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	p := &dashboards.LocalPrometheus{Targets: targets, Scrape: dashboards.ScrapeOptions{Interval: opts.ScrapeInterval},
		Alerts: alerts, StateDir: dir, Listen: opts.Listen, Bin: opts.Bin, Stdout: logs, Stderr: logs}
	cmd, err := dashboards.StartPrometheus(ctx, p)
	if err != nil {
		logs.Close()
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := dashboards.WaitPrometheusReady(readyCtx, opts.Listen); err != nil {
		cmd.Process.Kill()
		<-exited
		logs.Close()
		return nil, fmt.Errorf("%w (its output is in %s)", err, logFile)
	}
	return &topologyPrometheus{p: p, proc: cmd.Process, exited: exited, logs: logs, logFile: logFile, source: source}, nil
}

// supervise refreshes the targets from endpoints.json every
// prometheusRefresh (a restarted mirror worker gets another port; a
// failover starts the reversed flow's workers), rewriting the
// configuration and sending Prometheus SIGHUP when they changed, until
// Prometheus exits or ctx ends (then it waits for Prometheus to stop).
func (lp *topologyPrometheus) supervise(ctx context.Context, t *topology.Topology, opts *DashboardsOptions, logger *slog.Logger) error {
	tick := time.NewTicker(prometheusRefresh)
	defer tick.Stop()
	for {
		select {
		case err := <-lp.exited:
			if ctx.Err() != nil {
				return nil // stopped by Ctrl-C
			}
			return fmt.Errorf("prometheus exited: %v (its output is in %s)", err, lp.logFile)
		case <-tick.C:
			targets, _, err := scrapeTargets(t, lp.p.StateDir, opts.UpMetrics)
			if err != nil {
				continue
			}
			lp.p.Targets = targets
			changed, err := lp.p.WriteConfig()
			if err != nil {
				logger.Warn("cannot rewrite the Prometheus config", "err", err)
				continue
			}
			if changed {
				logger.Info("targets changed: Prometheus reloads its config", "targets", len(targets))
				lp.proc.Signal(syscall.SIGHUP)
			}
		}
	}
}

func runGrafana(_ context.Context, opts *DashboardsOptions) error {
	if err := dashboards.WriteGrafana(opts.Out); err != nil {
		return err
	}
	for _, d := range dashboards.All() {
		fmt.Fprintf(opts.IO.Out, "%s\t%s\n", filepath.Join(opts.Out, d.File), d.Title)
	}
	return nil
}

func runAlerts(_ context.Context, opts *DashboardsOptions) error {
	t, err := upLoadTopology(opts.File)
	if err != nil {
		return err
	}
	b, err := dashboardAlerts(t)
	if err != nil {
		return err
	}
	if opts.Out == "-" {
		_, err := opts.IO.Out.Write(b)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(opts.Out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(opts.Out, b, 0o644)
}
