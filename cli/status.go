package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/status"
	"github.com/kdr-io/kdr/topology"
	"github.com/kdr-io/kdr/up"
)

// StatusOptions are the parsed options of `kdr status`.
type StatusOptions struct {
	IO       IO
	Global   *globalOptions
	File     string // "" means the built-in demo
	StateDir string // where endpoints.json is ("" means up.DefaultStateDir)
	Output   outputFormat
	Watch    bool
	// Timeout bounds each cluster's queries.
	Timeout time.Duration
}

// statusWatchInterval is how often --watch refreshes.
const statusWatchInterval = 2 * time.Second

// errUnhealthy is why kdr status exits 1.
var errUnhealthy = errors.New("not healthy")

// unhealthyError ends kdr status with exit code 1 once the report, which
// says why, has been printed.
type unhealthyError struct{ topology string }

func (e unhealthyError) Error() string { return "topology " + e.topology + ": not healthy" }
func (e unhealthyError) Unwrap() error { return errUnhealthy }
func (e unhealthyError) ExitCode() int { return exitError }

// NewCmdStatus is `kdr status [FILE]`.
func NewCmdStatus(streams IO, g *globalOptions) *cobra.Command {
	return newCmdStatus(streams, g, nil)
}

// newCmdStatus builds the command; runF replaces the run step in tests.
func newCmdStatus(streams IO, g *globalOptions, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{IO: streams, Global: g}
	var output string
	cmd := &cobra.Command{
		Use:   "status [FILE]",
		Short: "Show clusters, brokers and flows of a topology",
		Long: `Show the state of a topology (FILE, or the built-in demo), asked through the Kafka protocol:
per cluster the brokers up against those expected, the controller, leaders per broker, under-replicated
and offline partitions; per flow, in the direction the failover state has kdr up run it (reversed
after a switchover or promotion), whether its mirror workers run, the lag in records (source high
watermarks minus the workers' committed offsets) and, when kdr up's endpoints.json in the state dir
lists the workers' metrics, their p99 replication latency. A cluster that does not answer within
--timeout is shown unreachable.

Healthy means: every cluster reachable with all its expected brokers, a controller and no offline
partitions, and every flow running or idle (no workers in its group, and no topic on its source to
mirror yet: workers join their group only once there is one). Exit status: 0 healthy, 1 not healthy (or an error), 2 bad usage; with --watch,
that of the last refresh. --output json is a stable interface for scripts (snake_case keys).`,
		Example: `  kdr status
  kdr status estate.yaml --output json | jq .flows
  kdr status --watch`,
		Args: upStatusArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.File = args[0]
			}
			var err error
			if opts.Output, err = parseOutput(output); err != nil {
				return err
			}
			if opts.Timeout <= 0 {
				return usageError{fmt.Errorf("--timeout must be positive, got %s", opts.Timeout)}
			}
			if runF != nil {
				return runF(opts)
			}
			return runStatus(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&output, "output", string(outputText), "output format: text or json")
	f.BoolVar(&opts.Watch, "watch", false, "refresh every 2s until Ctrl-C")
	f.StringVar(&opts.StateDir, "state-dir", "", "kdr up's state dir, for endpoints.json (default $XDG_STATE_HOME/kdr/<topology name>)")
	f.DurationVar(&opts.Timeout, "timeout", status.DefaultTimeout, "how long to wait for each cluster")
	return cmd
}

func runStatus(ctx context.Context, opts *StatusOptions) error {
	t, err := upLoadTopology(opts.File)
	if err != nil {
		return err
	}
	t = up.Normalize(t)
	sopts := status.Options{Timeout: opts.Timeout}
	if dir, err := upStateDir(opts.StateDir, t); err == nil {
		if e, err := up.ReadEndpoints(up.Layout{Dir: dir}.Endpoints()); err == nil {
			sopts.WorkerMetrics = e.WorkerMetrics()
		}
		st, err := readFailoverState(ctx, t, dir, opts.Timeout)
		if err != nil {
			fmt.Fprintf(opts.IO.Err, "warning: failover state unreadable, showing the topology's default active cluster and flows: %v\n", err)
		}
		sopts.Active = st.Active
		// The flows kdr up runs under this state, not the topology's
		// directions: after a switchover the reversed flow is the one
		// to judge, and the old one is stopped on purpose.
		sopts.Flows = []topology.FlowSpec{}
		for _, f := range failover.CurrentFlows(t, st) {
			if f.Running {
				sopts.Flows = append(sopts.Flows, f.Spec)
			}
		}
	}
	tty := isTerminal(opts.IO.Out)
	for {
		r := status.Gather(ctx, t, sopts)
		if opts.Watch && ctx.Err() != nil {
			return healthErr(r) // interrupted while gathering: keep the last screen
		}
		if opts.Watch && tty {
			io.WriteString(opts.IO.Out, "\x1b[H\x1b[2J")
		}
		if err := printStatusReport(opts.IO.Out, opts.Output, r); err != nil {
			return err
		}
		if !opts.Watch {
			return healthErr(r)
		}
		select {
		case <-ctx.Done():
			return healthErr(r)
		case <-time.After(statusWatchInterval):
		}
	}
}

func healthErr(r *status.Report) error {
	if r.Healthy {
		return nil
	}
	return unhealthyError{r.Topology}
}

// printStatusReport prints r as text or JSON; JSON keeps "east->west"
// readable (no HTML escaping), since scripts and people both read it.
func printStatusReport(w io.Writer, f outputFormat, r *status.Report) error {
	if f == outputJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	}
	return printStatus(w, r)
}

// printStatus is the text form of a status report.
func printStatus(w io.Writer, r *status.Report) error {
	health := "healthy"
	if !r.Healthy {
		health = "NOT HEALTHY"
	}
	fmt.Fprintf(w, "topology %s: %s; active cluster %s\n\n", r.Topology, health, orDash(r.ActiveCluster))
	t := newTable(w, "CLUSTER", "REGION", "BROKERS", "CONTROLLER", "UNDER-REPLICATED", "OFFLINE", "HEALTHY", "BOOTSTRAP")
	for _, c := range r.Clusters {
		brokers, ctrl, urp, off := "unreachable", "-", "-", "-"
		if c.Reachable {
			brokers = fmt.Sprintf("%d/%d", c.BrokersUp(), c.BrokersExpected)
			if c.ControllerID >= 0 {
				ctrl = strconv.Itoa(int(c.ControllerID))
			}
			urp, off = strconv.Itoa(c.UnderReplicatedPartitions), strconv.Itoa(c.OfflinePartitions)
		}
		t.row(c.Name, orDash(c.Region), brokers, ctrl, urp, off, statusYesNo(c.Healthy), strings.Join(c.Bootstrap, ","))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	t = newTable(w, "CLUSTER", "BROKER", "ADDRESS", "UP", "LEADERS")
	for _, c := range r.Clusters {
		for _, b := range c.Brokers {
			t.row(c.Name, b.ID, b.Addr, statusYesNo(b.Up), b.Leaders)
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(r.Flows) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "FLOW", "STATE", "WORKERS", "LAG", "LATENCY-P99", "HEALTHY")
		for _, f := range r.Flows {
			lag, p99 := "-", "-"
			if f.LagRecords >= 0 {
				lag = strconv.FormatInt(f.LagRecords, 10)
			}
			if f.ReplicationLatencyP99Seconds != nil {
				p99 = (time.Duration(*f.ReplicationLatencyP99Seconds * float64(time.Second))).Round(time.Millisecond).String()
			}
			t.row(f.Name, f.State, f.Workers, lag, p99, statusYesNo(f.Healthy))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	var problems []string
	for _, c := range r.Clusters {
		if c.Error != "" {
			problems = append(problems, fmt.Sprintf("cluster %s: %s", c.Name, c.Error))
		}
	}
	for _, f := range r.Flows {
		if f.Error != "" {
			problems = append(problems, fmt.Sprintf("flow %s: %s", f.Name, f.Error))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(problems, "\n"))
	}
	return nil
}

func statusYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
