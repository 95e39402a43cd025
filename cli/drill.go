package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kdr-io/kdr/drill"
	"github.com/kdr-io/kdr/topology"
)

// DrillOptions are the parsed options of `kdr drill run` and `validate`.
type DrillOptions struct {
	IO       IO
	Global   *globalOptions
	Scenario string // the scenario file
	// Topology replaces the scenario's topology file.
	Topology  string
	StateDir  string // "" makes a temporary one
	ReportDir string // "" means <state dir>/report
	Bin       string // "" means this executable
}

// drillFailed ends kdr drill run with exit code 1 once the report, which
// says why, has been printed.
type drillFailed struct{ err error }

func (e drillFailed) Error() string { return e.err.Error() }
func (e drillFailed) Unwrap() error { return e.err }
func (e drillFailed) ExitCode() int { return exitError }

// NewCmdDrill is `kdr drill`.
func NewCmdDrill(streams IO, g *globalOptions) *cobra.Command {
	return newCmdDrill(streams, g, nil)
}

// newCmdDrill builds the command; runF replaces the run step in tests.
func newCmdDrill(streams IO, g *globalOptions, runF func(string, *DrillOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Rehearse failures and failovers under load, and measure RPO and RTO",
		Long: `A drill runs a scenario file: it starts the scenario's topology with kdr up, runs a
producer and a consumer group through the failover client (which follows the active cluster), injects
faults (broker, cluster and mirror kills, partitions), runs switchovers, promotes and failbacks, and
checks every record: lost, duplicated, reordered, plus the RTO clients saw and the RPO. See
docs/drills.md.`,
		Example: `  kdr drill run scenarios/planned-switchover.yaml
  kdr drill validate scenarios/*.yaml`,
	}
	cmd.AddCommand(newCmdDrillRun(streams, g, runF), newCmdDrillValidate(streams, g, runF))
	return cmd
}

func newCmdDrillRun(streams IO, g *globalOptions, runF func(string, *DrillOptions) error) *cobra.Command {
	opts := &DrillOptions{IO: streams, Global: g}
	cmd := &cobra.Command{
		Use:   "run SCENARIO",
		Short: "Run a drill scenario and write its report",
		Long: `Run a drill scenario: kdr up on the scenario's topology (in --state-dir, by default a new
temporary directory), the load, the steps, the final audit. Prints one line per step and a load line
every 5 s, writes report.json and a self-contained report.html to --report-dir (default
<state dir>/report), and stores a summary as the failover state's last_drill.

Exit status: 0 when every step succeeded and every verify threshold held, 1 when not (or on an
error), 2 for bad usage or an invalid scenario.`,
		Example: `  kdr drill run scenarios/planned-switchover.yaml --report-dir drills-out/planned-switchover
  kdr drill run my-drill.yaml --topology estate.yaml --state-dir /tmp/drill`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Scenario = args[0]
			if runF != nil {
				return runF("run", opts)
			}
			return runDrill(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Topology, "topology", "", "topology file to run instead of the scenario's")
	f.StringVar(&opts.StateDir, "state-dir", "", "kdr up's state dir (default: a new temporary directory, kept)")
	f.StringVar(&opts.ReportDir, "report-dir", "", "where report.json and report.html go (default <state dir>/report)")
	f.StringVar(&opts.Bin, "bin", "", "kdr binary kdr up runs (default: this one)")
	return cmd
}

func newCmdDrillValidate(streams IO, g *globalOptions, runF func(string, *DrillOptions) error) *cobra.Command {
	opts := &DrillOptions{IO: streams, Global: g}
	cmd := &cobra.Command{
		Use:     "validate SCENARIO...",
		Short:   "Check scenario files and their topologies without running them",
		Example: `  kdr drill validate scenarios/*.yaml`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, a := range args {
				o := *opts
				o.Scenario = a
				if runF != nil {
					errs = append(errs, runF("validate", &o))
					continue
				}
				if _, _, err := loadDrill(&o); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(streams.Out, "%s: valid\n", a)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVar(&opts.Topology, "topology", "", "topology file to check against instead of the scenario's")
	return cmd
}

func loadDrill(opts *DrillOptions) (*drill.Scenario, *topology.Topology, error) {
	s, t, err := drill.LoadScenario(opts.Scenario, opts.Topology)
	if err != nil {
		return nil, nil, usageError{err}
	}
	return s, t, nil
}

func runDrill(cmd *cobra.Command, opts *DrillOptions) error {
	s, t, err := loadDrill(opts)
	if err != nil {
		return err
	}
	logger, err := opts.Global.logger(opts.IO.Err)
	if err != nil {
		return err
	}
	file := opts.Topology
	if file == "" {
		file = s.TopologyPath()
	}
	_, err = drill.Run(cmd.Context(), drill.Options{Scenario: s, Topology: t, TopologyFile: file, StateDir: opts.StateDir,
		ReportDir: opts.ReportDir, Bin: opts.Bin, Out: opts.IO.Out, Logger: logger})
	if errors.Is(err, drill.ErrVerifyFailed) {
		return drillFailed{err}
	}
	return err
}
