package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

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
	console := up.NewConsole(opts.IO.Out, upIsTerminal(opts.IO.Out))
	logger, err := opts.Global.logger(console.Wrap(opts.IO.Err))
	if err != nil {
		return err
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
	})
}

// upIsTerminal reports whether w is a character device (a terminal).
func upIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// upStatusArgs accepts at most one argument, the topology file.
func upStatusArgs(_ *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usageError{fmt.Errorf("want at most one topology file, got %d arguments", len(args))}
	}
	return nil
}
