package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdr-io/kdr/drill"
	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/topology"
)

// exitLocked is the exit code of a failover command refused because
// another orchestrator holds the lock.
const exitLocked = 4

// FailoverOptions are the parsed options of `kdr failover switchover`,
// `promote`, `failback` and `status`.
type FailoverOptions struct {
	IO       IO
	Global   *globalOptions
	Kind     string // failover.KindSwitchover, KindPromote, KindFailback, or "status"
	To       string
	File     string // "" means the built-in demo
	StateDir string // "" means up.DefaultStateDir
	DryRun   bool
	Yes      bool
	Force    bool
	LockWait time.Duration
	Output   outputFormat
}

// failoverExit ends a command with its own exit code after printing err.
type failoverExit struct {
	err  error
	code int
}

func (e failoverExit) Error() string { return e.err.Error() }
func (e failoverExit) Unwrap() error { return e.err }
func (e failoverExit) ExitCode() int { return e.code }

// NewCmdFailover builds `kdr failover` and its subcommands.
func NewCmdFailover(streams IO, g *globalOptions) *cobra.Command {
	return newCmdFailover(streams, g, nil)
}

func newCmdFailover(streams IO, g *globalOptions, runF func(*FailoverOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Switch, promote and fail back the active cluster of a topology",
		Long: `Move a topology's active-passive pattern from one cluster to the other, step by step, with the
state kept in the coordination store (failover.coordination: a file under the state dir, or Consul).
Every command prints its plan, then each step as it runs, then a summary. A failed or interrupted
command leaves the operation in progress: rerun the same command to resume it where it stopped.

An operation whose preflight fails has changed nothing and is dropped; one that got further can be
dropped with "kdr failover abort" until it has made the standby active.

Exit status: 0 done, 1 failed (the message names the step and how to resume), 2 bad usage, 4 another
orchestrator holds the lock.`,
		Example: `  kdr failover switchover --to west
  kdr failover status`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(
		newCmdFailoverOp(streams, g, runF, failover.KindSwitchover),
		newCmdFailoverOp(streams, g, runF, failover.KindPromote),
		newCmdFailoverOp(streams, g, runF, failover.KindFailback),
		newCmdFailoverStatus(streams, g, runF),
		newCmdFailoverAbort(streams, g, runF),
	)
	return cmd
}

func newCmdFailoverOp(streams IO, g *globalOptions, runF func(*FailoverOptions) error, kind string) *cobra.Command {
	opts := &FailoverOptions{IO: streams, Global: g, Kind: kind}
	cmd := &cobra.Command{Use: kind + " --to CLUSTER [FILE]", Args: upStatusArgs}
	switch kind {
	case failover.KindSwitchover:
		cmd.Short = "Planned switchover: fence, drain, promote, move consumer offsets, reverse the flow"
		cmd.Long = `Switch the active cluster to --to while both clusters are up, losing nothing: check both clusters
and the mirror's lag, fence the active cluster (clients can no longer produce there), wait until the
mirror has copied everything, make --to active, move the consumer groups' committed offsets there
exactly, wait for the reverse flow, and verify.`
		cmd.Example = `  kdr failover switchover --to west
  kdr failover switchover --to west estate.yaml --dry-run
  kdr failover switchover --to west --yes --state-dir /var/lib/kdr/demo`
	case failover.KindPromote:
		cmd.Short = "Unplanned failover (--force): make the standby active while the primary is down"
		cmd.Long = `Make --to active at once because the active cluster is unreachable. Records the primary acknowledged
but the mirror had not copied yet are not on --to; what --to had received is recorded, so that
failback can find and preserve them. The old primary is fenced now if it answers, otherwise as soon
as it is back (kdr up, or any kdr failover command, does it). Needs --force.`
		cmd.Example = `  kdr failover promote --to west --force
  kdr failover promote --to west --force --dry-run`
	case failover.KindFailback:
		cmd.Short = "Return to the old primary after a forced promotion, preserving its diverged records"
		cmd.Long = `Return to --to, the old primary that a forced promotion left behind (fenced, reachable again):
copy its records that never reached the active cluster to "<to>.diverged" there, replace its topics
with copies of the active cluster's, then switch over to it. Identity naming only.`
		cmd.Example = `  kdr failover failback --to east
  kdr failover failback --to east --dry-run`
	}
	var output string
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 {
			opts.File = args[0]
		}
		if strings.TrimSpace(opts.To) == "" {
			return usageError{errors.New("--to is required: the cluster to make active")}
		}
		if kind == failover.KindPromote && !opts.Force {
			return usageError{errors.New("promote is an unplanned failover that may lose the records the standby has not received: add --force (use switchover while the active cluster is up)")}
		}
		var err error
		if opts.Output, err = parseOutput(output); err != nil {
			return err
		}
		if runF != nil {
			return runF(opts)
		}
		return runFailoverOp(cmd.Context(), opts)
	}
	f := cmd.Flags()
	f.StringVar(&opts.To, "to", "", "the cluster to make active (required)")
	f.StringVar(&opts.StateDir, "state-dir", "", "kdr up's state dir, where the file coordination store lives (default $XDG_STATE_HOME/kdr/<topology name>)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and stop")
	f.BoolVar(&opts.Yes, "yes", false, "do not ask for confirmation on a terminal")
	f.DurationVar(&opts.LockWait, "lock-wait", failover.DefaultLockWait, "how long to wait while another orchestrator holds the lock (a Consul lock of one that died is freed within ~31 s); 0 tries once")
	f.StringVar(&output, "output", string(outputText), "output format of the summary: text or json")
	if kind == failover.KindPromote {
		f.BoolVar(&opts.Force, "force", false, "confirm the unplanned failover (required)")
	}
	return cmd
}

func newCmdFailoverStatus(streams IO, g *globalOptions, runF func(*FailoverOptions) error) *cobra.Command {
	opts := &FailoverOptions{IO: streams, Global: g, Kind: "status"}
	var output string
	cmd := &cobra.Command{
		Use:   "status [FILE]",
		Short: "Show the active cluster, epoch, operation in progress, fenced clusters and timeline",
		Example: `  kdr failover status
  kdr failover status estate.yaml --output json | jq .active`,
		Args: upStatusArgs,
		RunE: fileOutputRunE(opts, &output, runF, runFailoverStatus),
	}
	cmd.Flags().StringVar(&opts.StateDir, "state-dir", "", "kdr up's state dir (default $XDG_STATE_HOME/kdr/<topology name>)")
	cmd.Flags().StringVar(&output, "output", string(outputText), "output format: text or json")
	return cmd
}

func newCmdFailoverAbort(streams IO, g *globalOptions, runF func(*FailoverOptions) error) *cobra.Command {
	opts := &FailoverOptions{IO: streams, Global: g, Kind: "abort"}
	var output string
	cmd := &cobra.Command{
		Use:   "abort [FILE]",
		Short: "Drop the operation in progress and undo what it did, if it has not made the standby active yet",
		Long: `Drop the failover operation in progress (a failed or interrupted switchover, promote or failback)
and put back what it did: a switchover that fenced the active cluster unfences it, an operation that
reached its promote step fences the standby again. The active cluster stays as it was.

A switchover or promote that has made the standby active, or a failback that has begun deleting the
old primary's topics to re-copy them, cannot be aborted: the command says how far it got and what
resuming it does (and how to switch back after it). With nothing in progress it does nothing.`,
		Example: `  kdr failover abort
  kdr failover abort estate.yaml --state-dir /var/lib/kdr/estate`,
		Args: upStatusArgs,
		RunE: fileOutputRunE(opts, &output, runF, runFailoverAbort),
	}
	f := cmd.Flags()
	f.StringVar(&opts.StateDir, "state-dir", "", "kdr up's state dir (default $XDG_STATE_HOME/kdr/<topology name>)")
	f.DurationVar(&opts.LockWait, "lock-wait", failover.DefaultLockWait, "how long to wait while another orchestrator holds the lock; 0 tries once")
	f.StringVar(&output, "output", string(outputText), "output format: text or json")
	return cmd
}

// fileOutputRunE runs a failover command that takes [FILE] and --output
// (status, abort): runF in tests, else run.
func fileOutputRunE(opts *FailoverOptions, output *string, runF func(*FailoverOptions) error,
	run func(context.Context, *FailoverOptions) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 {
			opts.File = args[0]
		}
		var err error
		if opts.Output, err = parseOutput(*output); err != nil {
			return err
		}
		if runF != nil {
			return runF(opts)
		}
		return run(cmd.Context(), opts)
	}
}

func runFailoverAbort(ctx context.Context, opts *FailoverOptions) error {
	fo, err := failoverBase(opts)
	if err != nil {
		return err
	}
	res, err := failover.Abort(ctx, fo)
	if err != nil {
		return failoverErr(opts.IO.Err, err)
	}
	return printResult(opts.IO.Out, opts.Output, res, func(w io.Writer, a *failover.Aborted) error {
		op := a.Operation
		if op == nil {
			_, err := fmt.Fprintf(w, "Nothing in progress to abort; %s is active.\n", a.Active)
			return err
		}
		fmt.Fprintf(w, "Aborted %s %s (%s -> %s) at step %s (%d/%d).\n", op.Kind, op.ID, op.From, op.To, op.Step, op.StepIndex+1, op.Total)
		for _, u := range a.Undone {
			fmt.Fprintf(w, "  %s\n", u)
		}
		_, err := fmt.Fprintf(w, "%s is active, as before.\n", a.Active)
		return err
	})
}

// failoverBase loads the topology and the state dir into failover.Options.
func failoverBase(opts *FailoverOptions) (failover.Options, error) {
	t, err := upLoadTopology(opts.File)
	if err != nil {
		return failover.Options{}, err
	}
	dir, err := upStateDir(opts.StateDir, t)
	if err != nil {
		return failover.Options{}, usageError{err}
	}
	logger, err := opts.Global.logger(opts.IO.Err)
	if err != nil {
		return failover.Options{}, err
	}
	lockWait := opts.LockWait
	if lockWait == 0 {
		lockWait = -1 // try once
	}
	return failover.Options{Topology: t, StateDir: dir, Logger: logger, LockWait: lockWait}, nil
}

// failoverErr maps an error to the exit codes: 4 locked, 1 otherwise.
func failoverErr(w io.Writer, err error) error {
	if err == nil {
		return nil
	}
	var ue usageError
	if errors.As(err, &ue) {
		return err
	}
	if errors.Is(err, failover.ErrUnknownCluster) {
		return usageError{err}
	}
	fmt.Fprintln(w, "Error:", err)
	if errors.Is(err, store.ErrLocked) {
		return failoverExit{err, exitLocked}
	}
	return failoverExit{err, exitError}
}

func runFailoverOp(ctx context.Context, opts *FailoverOptions) error {
	fo, err := failoverBase(opts)
	if err != nil {
		return err
	}
	steps, err := failover.Plan(opts.Kind, opts.To, fo)
	if err != nil {
		return failoverErr(opts.IO.Err, err)
	}
	st, err := failover.GetStatus(ctx, fo)
	if err != nil {
		return failoverErr(opts.IO.Err, err)
	}
	// Another operation in progress refuses this one: say so, not a plan
	// of this command from an active cluster the other is moving away
	// from.
	if err := st.Refuses(opts.Kind, opts.To); err != nil {
		return failoverErr(opts.IO.Err, err)
	}
	w := opts.IO.Out
	from := st.Active
	if st.Operation != nil {
		from = st.Operation.From
	}
	fmt.Fprintf(w, "Plan: %s %s -> %s (topology %s, epoch %d)\n", opts.Kind, from, opts.To, fo.Topology.Metadata.Name, st.Epoch)
	for i, s := range steps {
		note := ""
		if op := st.Operation; op != nil && op.Kind == opts.Kind && op.To == opts.To && i < op.StepIndex {
			note = "  (done; resuming after it)"
		}
		fmt.Fprintf(w, "  %2d. %s%s\n", i+1, s, note)
	}
	if opts.DryRun {
		fo.DryRun = true
		if _, err := runKind(ctx, opts.Kind, fo, opts.To); err != nil {
			return failoverErr(opts.IO.Err, err)
		}
		fmt.Fprintln(w, "Dry run: nothing was changed.")
		return nil
	}
	if !opts.Yes && !isTerminal(opts.IO.In) {
		// Nobody can answer (cron, systemd, ssh -n, a pipe): going ahead
		// unasked would make --yes meaningless, and a prompt that reads
		// end-of-file looks like a refusal.
		return usageError{fmt.Errorf("the %s asks for confirmation, and stdin is not a terminal: pass --yes to run it without asking; nothing was changed", opts.Kind)}
	}
	if !opts.Yes {
		fmt.Fprintf(w, "Proceed with the %s to %s? [y/N] ", opts.Kind, opts.To)
		line, _ := bufio.NewReader(opts.IO.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return failoverErr(opts.IO.Err, errors.New("not confirmed; nothing was changed"))
		}
	}
	fmt.Fprintln(w)
	fo.Progress = progressPrinter(w)
	res, err := runKind(ctx, opts.Kind, fo, opts.To)
	if res != nil {
		if opts.Output == outputJSON {
			writeJSON(w, res)
		} else {
			printFailoverResult(w, res, err)
		}
	}
	return failoverErr(opts.IO.Err, err)
}

func runKind(ctx context.Context, kind string, fo failover.Options, to string) (*failover.Result, error) {
	switch kind {
	case failover.KindSwitchover:
		return failover.Switchover(ctx, fo, to)
	case failover.KindPromote:
		return failover.Promote(ctx, fo, to)
	default:
		return failover.Failback(ctx, fo, to)
	}
}

// progressPrinter prints one line per finished step with its duration,
// and a drain's progress at most once a second.
func progressPrinter(w io.Writer) func(failover.StepEvent) {
	started := map[string]time.Time{}
	var lastProgress time.Time
	return func(e failover.StepEvent) {
		prefix := fmt.Sprintf("[%d/%d] %-26s", e.Index+1, e.Total, e.Step)
		switch e.State {
		case failover.StepStarted:
			started[e.Step] = e.At
		case failover.StepProgress:
			if time.Since(lastProgress) >= time.Second {
				lastProgress = time.Now()
				fmt.Fprintf(w, "%s ... %s\n", prefix, e.Message)
			}
		default:
			d := e.At.Sub(started[e.Step]).Round(time.Millisecond)
			fmt.Fprintf(w, "%s %-7s %8s  %s\n", prefix, e.State, d, e.Message)
		}
	}
}

func printFailoverResult(w io.Writer, r *failover.Result, err error) {
	fmt.Fprintln(w)
	if err != nil {
		left := "stays in progress; rerun the same command to resume, or see kdr failover abort"
		if r.Dropped {
			left = "dropped: nothing was changed"
		}
		fmt.Fprintf(w, "%s %s -> %s FAILED after %s (operation %s %s)\n",
			r.Kind, r.From, r.To, r.Finished.Sub(r.Started).Round(time.Millisecond), r.ID, left)
		return
	}
	fmt.Fprintf(w, "%s %s -> %s done in %s: %s is active at epoch %d (operation %s)\n",
		r.Kind, r.From, r.To, r.Finished.Sub(r.Started).Round(time.Millisecond), r.To, r.Epoch, r.ID)
	if len(r.LastReceived) > 0 {
		n := 0
		for _, ps := range r.LastReceived {
			n += len(ps)
		}
		fmt.Fprintf(w, "recorded what %s had received of %d partition(s) (for failback)\n", r.To, n)
	}
	if len(r.Diverged) > 0 {
		fmt.Fprintf(w, "%d record(s) that %s acknowledged but never mirrored are preserved in %s:\n", len(r.Diverged), r.To, failover.DivergedTopic(r.To))
		for i, d := range r.Diverged {
			if i == 10 {
				fmt.Fprintf(w, "  ... and %d more\n", len(r.Diverged)-i)
				break
			}
			fmt.Fprintf(w, "  %s[%d]@%d key=%q\n", d.Topic, d.Partition, d.Offset, d.Key)
		}
	}
}

func runFailoverStatus(ctx context.Context, opts *FailoverOptions) error {
	fo, err := failoverBase(opts)
	if err != nil {
		return err
	}
	st, err := failover.GetStatus(ctx, fo)
	if err != nil {
		return failoverErr(opts.IO.Err, err)
	}
	return printResult(opts.IO.Out, opts.Output, st, printFailoverStatus)
}

func printFailoverStatus(w io.Writer, s *failover.Status) error {
	fenced := "none"
	if len(s.Fenced) > 0 {
		fenced = strings.Join(s.Fenced, ", ")
	}
	fmt.Fprintf(w, "Topology:          %s (%s -> %s active-passive)\nActive:            %s\nEpoch:             %d\nFenced:            %s\nConsumer offsets:  %s\n",
		s.Topology, s.Primary, s.Standby, s.Active, s.Epoch, fenced, s.ConsumerOffsets)
	if op := s.Operation; op != nil {
		fmt.Fprintf(w, "In progress:       %s %s (%s -> %s) at step %s (%d/%d) since %s; resume: %s\n",
			op.Kind, op.ID, op.From, op.To, op.Step, op.StepIndex+1, op.Total, op.Started.Format(time.RFC3339), op.Resume)
	} else {
		fmt.Fprintf(w, "In progress:       nothing\n")
	}
	if len(s.LastDrill) > 0 {
		printLastDrill(w, s.LastDrill)
	}
	if len(s.History) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nTimeline (newest last):")
	t := newTable(w, "AT", "KIND", "STEP", "EPOCH", "MESSAGE")
	from := max(0, len(s.History)-20)
	for _, e := range s.History[from:] {
		t.row(e.At.Format(time.RFC3339), e.Kind, e.Step, e.Epoch, e.Message)
	}
	return t.flush()
}

// printLastDrill prints the last drill's record (a drill.Summary, which
// kdr drill run writes to the state) as a few readable lines; a record it
// cannot read is printed as it is stored.
func printLastDrill(w io.Writer, raw json.RawMessage) {
	var d drill.Summary
	if err := json.Unmarshal(raw, &d); err != nil {
		fmt.Fprintf(w, "Last drill:        %s\n", raw)
		return
	}
	result := "passed"
	if !d.Passed {
		result = "FAILED"
	}
	seconds := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)).Round(time.Millisecond) }
	fmt.Fprintf(w, "Last drill:        %s %s, finished %s\n", d.Scenario, result, d.FinishedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "                   records lost %d, duplicated %d, reordered %d; RTO %s; RPO %d records (%s)\n",
		d.Lost, d.Duplicated, d.Reordered, seconds(d.RTOSeconds), d.RPORecords, seconds(d.RPOSeconds))
	if d.Report != "" {
		fmt.Fprintf(w, "                   report: %s\n", d.Report)
	}
}

// DiscoverOptions are the parsed options of `kdr discover`.
type DiscoverOptions struct {
	IO       IO
	Global   *globalOptions
	File     string
	StateDir string
	Watch    bool
}

// NewCmdDiscover is `kdr discover [FILE]`.
func NewCmdDiscover(streams IO, g *globalOptions) *cobra.Command {
	return newCmdDiscover(streams, g, nil)
}

func newCmdDiscover(streams IO, g *globalOptions, runF func(*DiscoverOptions) error) *cobra.Command {
	opts := &DiscoverOptions{IO: streams, Global: g}
	cmd := &cobra.Command{
		Use:   "discover [FILE]",
		Short: "Print the active cluster's bootstrap servers (for scripts and consul-template)",
		Long: `Print the bootstrap servers of the topology's active cluster, comma-separated, as the failover state
says. With --watch, print a new line whenever the active cluster changes, until Ctrl-C.`,
		Example: `  kafka-console-producer --bootstrap-server "$(kdr discover)" --topic orders
  kdr discover estate.yaml --watch`,
		Args: upStatusArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.File = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return runDiscover(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.StateDir, "state-dir", "", "kdr up's state dir (default $XDG_STATE_HOME/kdr/<topology name>)")
	cmd.Flags().BoolVar(&opts.Watch, "watch", false, "print a new line on every change of the active cluster")
	return cmd
}

func runDiscover(ctx context.Context, opts *DiscoverOptions) error {
	fo, err := failoverBase(&FailoverOptions{IO: opts.IO, Global: opts.Global, File: opts.File, StateDir: opts.StateDir})
	if err != nil {
		return err
	}
	p, err := failover.ActivePassive(fo.Topology, "", "")
	if err != nil {
		return failoverErr(opts.IO.Err, err)
	}
	s, err := store.Open(fo.Topology, fo.StateDir)
	if err != nil {
		return failoverErr(opts.IO.Err, err)
	}
	defer s.Close()
	v, err := s.Get(ctx)
	if err != nil {
		return failoverErr(opts.IO.Err, err)
	}
	last := ""
	for {
		line := activeBootstrap(fo.Topology, failover.ActiveOf(p, v.State))
		if line != last {
			fmt.Fprintln(opts.IO.Out, line)
			last = line
		}
		if !opts.Watch {
			return nil
		}
		next, err := s.Watch(ctx, v.Version)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			fmt.Fprintln(opts.IO.Err, "kdr discover: store:", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(2 * time.Second):
			}
			continue
		}
		v = next
	}
}

func activeBootstrap(t *topology.Topology, name string) string {
	if c := t.ClusterByName(name); c != nil {
		return strings.Join(c.BootstrapServers(), ",")
	}
	return ""
}
