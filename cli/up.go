package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdr-io/kdr/dashboards"
	"github.com/kdr-io/kdr/topology"
	"github.com/kdr-io/kdr/up"
)

// UpOptions are the parsed options of `kdr up`.
type UpOptions struct {
	IO       IO
	Global   *globalOptions
	File     string // "" runs the built-in demo
	StateDir string // "" means up.DefaultStateDir
	Bin      string // "" means this executable
	// NoDemoProducer turns off the demo's built-in producer.
	NoDemoProducer bool
	// MetricsListen serves kdr up's failover metrics ("" for none).
	MetricsListen string
	// Prometheus runs a local Prometheus scraping everything once healthy,
	// listening on PrometheusListen.
	Prometheus       bool
	PrometheusListen string
}

// NewCmdUp is `kdr up [FILE]`.
func NewCmdUp(streams IO, g *globalOptions) *cobra.Command {
	return newCmdUp(streams, g, nil)
}

// newCmdUp builds the command; runF replaces the run step in tests.
func newCmdUp(streams IO, g *globalOptions, runF func(*UpOptions) error) *cobra.Command {
	opts := &UpOptions{IO: streams, Global: g}
	cmd := &cobra.Command{
		Use:   "up [FILE]",
		Short: "Run a topology's local clusters and mirror flows",
		Long: `Run every local cluster of a topology file (or, without FILE, the built-in demo: clusters east
and west, three brokers each, east mirrored to west) as kdr broker processes, and every flow's mirror
workers as kdr mirror run processes, all children of this one. Children that die are restarted.
Once every cluster has all its brokers and a controller and every worker reports healthy, kdr up
prints the bootstrap servers and metrics endpoints and runs until Ctrl-C (SIGINT) or SIGTERM, then
stops the mirror workers, then the brokers.

Everything is kept in the state dir ($XDG_STATE_HOME/kdr/<name> or ~/.local/state/kdr/<name>):
broker data, one log per process under logs/, and endpoints.json, which kdr status reads. Running kdr
up again resumes with the same data; a second kdr up on the same state dir is refused.

The demo also runs a producer writing about 20 small JSON orders a second to topic "orders" on east
(--no-demo-producer turns it off).`,
		Example: `  kdr up                      # the east/west demo
  kdr up estate.yaml          # a topology file
  kdr status                  # in another terminal`,
		Args: upStatusArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.File = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return runUp(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.StateDir, "state-dir", "", "directory for data, logs and endpoints.json (default $XDG_STATE_HOME/kdr/<topology name>)")
	f.StringVar(&opts.Bin, "bin", "", "kdr binary the brokers and workers run (default: this one)")
	f.BoolVar(&opts.NoDemoProducer, "no-demo-producer", false, "do not run the demo's producer")
	f.StringVar(&opts.MetricsListen, "metrics-listen", up.DefaultMetricsListen, "address of kdr up's /metrics (failover state, last drill) and /healthz; \"\" for none")
	f.BoolVar(&opts.Prometheus, "prometheus", false, "once healthy, run a local Prometheus scraping everything (needs prometheus on PATH)")
	f.StringVar(&opts.PrometheusListen, "prometheus-listen", dashboards.DefaultListen, "address of --prometheus's Prometheus")
	return cmd
}

// upLoadTopology reads FILE, or returns the demo without one.
func upLoadTopology(file string) (*topology.Topology, error) {
	if file == "" {
		return topology.Demo(), nil
	}
	t, err := topology.Load(file)
	if err != nil {
		return nil, usageError{err}
	}
	return t, nil
}

// upStateDir is dir, or the topology's default state dir.
func upStateDir(dir string, t *topology.Topology) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return up.DefaultStateDir(t.Metadata.Name)
}

func runUp(cmd *cobra.Command, opts *UpOptions) error {
	t, err := upLoadTopology(opts.File)
	if err != nil {
		return err
	}
	dir, err := upStateDir(opts.StateDir, t)
	if err != nil {
		return usageError{err}
	}
	console := up.NewConsole(opts.IO.Out, isTerminal(opts.IO.Out))
	logger, err := opts.Global.logger(console.Wrap(opts.IO.Err))
	if err != nil {
		return err
	}
	var onHealthy func(context.Context, up.Endpoints) ([]up.ExtraEndpoint, func())
	if opts.Prometheus && prometheusInstalled(opts.IO.Err, upPrometheusBin) {
		onHealthy = upPrometheus(t, dir, opts.PrometheusListen, logger)
	}
	return up.Run(cmd.Context(), up.Options{
		Topology:      t,
		StateDir:      dir,
		Bin:           opts.Bin,
		DemoProducer:  opts.File == "" && !opts.NoDemoProducer,
		Logger:        logger,
		Out:           opts.IO.Out,
		Console:       console,
		MetricsListen: opts.MetricsListen,
		OnHealthy:     onHealthy,
	})
}

// upPrometheusBin is the Prometheus kdr up --prometheus runs.
const upPrometheusBin = "prometheus"

// prometheusInstalled reports whether bin is on PATH, and otherwise warns
// on w that kdr up goes on without Prometheus.
func prometheusInstalled(w io.Writer, bin string) bool {
	if _, err := exec.LookPath(bin); err != nil {
		fmt.Fprintf(w, "warning: --prometheus: %s is not installed (%v); install it (Debian/Ubuntu: apt-get install prometheus) for a local Prometheus. kdr up goes on without one.\n", bin, err)
		return false
	}
	return true
}

// upPrometheus is kdr up --prometheus's OnHealthy: it starts a local
// Prometheus on listen, configured like kdr dashboards prometheus from kdr
// up's endpoints.json in dir (brokers, mirror workers, kdr up's own
// /metrics) and kept in step with it, and returns its URL and how to stop
// it. A Prometheus that cannot start is logged, and kdr up goes on.
func upPrometheus(t *topology.Topology, dir, listen string, logger *slog.Logger) func(context.Context, up.Endpoints) ([]up.ExtraEndpoint, func()) {
	return func(ctx context.Context, _ up.Endpoints) ([]up.ExtraEndpoint, func()) {
		opts := &DashboardsOptions{StateDir: dir, ScrapeInterval: 5 * time.Second, Listen: listen, Bin: upPrometheusBin}
		pctx, cancel := context.WithCancel(ctx)
		lp, err := startTopologyPrometheus(pctx, t, opts)
		if err != nil {
			cancel()
			logger.Warn("--prometheus: Prometheus did not start; kdr up goes on without it", "err", err)
			return nil, nil
		}
		logger.Info("Prometheus started", "url", "http://"+listen, "targets", len(lp.p.Targets), "log", lp.logFile)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer lp.logs.Close()
			if err := lp.supervise(pctx, t, opts, logger); err != nil {
				logger.Warn("--prometheus: Prometheus stopped; kdr up goes on without it", "err", err)
			}
		}()
		stop := func() {
			logger.Info("stopping Prometheus")
			cancel()
			<-done
		}
		return []up.ExtraEndpoint{{Name: "prometheus", URL: "http://" + listen}}, stop
	}
}

// upStatusArgs accepts at most one argument, the topology file.
func upStatusArgs(_ *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usageError{fmt.Errorf("want at most one topology file, got %d arguments", len(args))}
	}
	return nil
}
