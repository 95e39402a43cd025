package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/topology"
)

// exitChanges is the exit code of `kdr topology plan --detailed-exitcode`
// when the plan has changes (terraform's is 2; kdr keeps 2 for usage
// errors).
const exitChanges = 3

// exitCodeError ends a command with a given exit code. Its message is
// for the rare caller that prints it; Execute maps it to Code.
type exitCodeError struct {
	code int
	msg  string
}

func (e exitCodeError) Error() string { return e.msg }

// ExitCode is the process exit code.
func (e exitCodeError) ExitCode() int { return e.code }

// TopologyPlanOptions are the parsed options of `kdr topology plan` and
// `kdr topology apply`.
type TopologyPlanOptions struct {
	IO   IO
	File string
	// Output is text or json (plan only).
	Output outputFormat
	// DetailedExitCode makes plan exit with 3 when there are changes.
	DetailedExitCode bool
	// AutoApprove skips apply's confirmation prompt.
	AutoApprove bool
	// Timeout bounds each request to a cluster.
	Timeout time.Duration
	// StateDir is kdr up's state dir, where the file coordination store
	// keeps the failover state ("" means up.DefaultStateDir).
	StateDir string
}

func newCmdTopologyPlan(streams IO, g *globalOptions) *cobra.Command {
	return newCmdTopologyPlanWith(streams, g, nil)
}

func newCmdTopologyApply(streams IO, g *globalOptions) *cobra.Command {
	return newCmdTopologyApplyWith(streams, g, nil)
}

// newCmdTopologyPlanWith builds `kdr topology plan`; runF replaces the run
// step in tests.
func newCmdTopologyPlanWith(streams IO, _ *globalOptions, runF func(*TopologyPlanOptions) error) *cobra.Command {
	opts := &TopologyPlanOptions{IO: streams}
	var output string
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show what apply would create or change",
		Long: `Compare the clusters with the topology file and print what "kdr topology apply" would change:
remote topics to create (with the source's partitions, replication factor and synced configs), remote
topics to grow, configs to set, and the mirror's internal topics (heartbeats, offset syncs, checkpoints),
exactly as the flows' workers would make them. Flows that are stopped as kdr status says (no workers in
their group on the source although it has a topic they mirror) are listed with "!" (apply does not start
them); an idle flow, one with nothing to mirror yet, is not. Nothing is changed.

Flows are planned in the direction kdr up runs them under the failover state (the file store in
--state-dir, or Consul, as "kdr failover" keeps it): after a switchover or forced promotion the
active-passive flow is planned from the new active cluster, and the first line says so; while a
failback re-copies the old primary's topics that flow is not planned. Without a failover state the
topology file's directions are planned.

  + create topic CLUSTER/TOPIC (...)     ~ grow or configure     ! information

Exit codes: 0 success, 1 error (an unreachable cluster is named with its bootstrap servers), 2 usage.
With --detailed-exitcode (terraform's convention): 0 no changes, 3 changes to apply, 1 error.
FILE "-" reads standard input.`,
		Example: `  kdr topology plan topology.yaml
  kdr topology plan topology.yaml --output json | jq '.changes[] | select(.action == "create")'
  kdr topology plan topology.yaml --detailed-exitcode; [ $? -eq 3 ] && echo "changes pending"`,
		Args: exactArgs(1, "one topology file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Output, err = parseOutput(output); err != nil {
				return err
			}
			if err := checkTimeout(opts.Timeout); err != nil {
				return err
			}
			opts.File = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runTopologyPlan(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&output, "output", string(outputText), "output format: text or json")
	cmd.Flags().StringVar(&opts.StateDir, "state-dir", "", "kdr up's state dir, for the failover state (default $XDG_STATE_HOME/kdr/<topology name>)")
	cmd.Flags().BoolVar(&opts.DetailedExitCode, "detailed-exitcode", false, "exit 0 when there are no changes, 3 when there are, 1 on errors")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", topology.DefaultClusterTimeout, "bound on each request to a cluster, connecting included")
	return cmd
}

// newCmdTopologyApplyWith builds `kdr topology apply`; runF replaces the
// run step in tests.
func newCmdTopologyApplyWith(streams IO, _ *globalOptions, runF func(*TopologyPlanOptions) error) *cobra.Command {
	opts := &TopologyPlanOptions{IO: streams, Output: outputText}
	cmd := &cobra.Command{
		Use:   "apply FILE",
		Short: "Create and update remote topics as the topology says",
		Long: `Plan (see "kdr topology plan"), ask for confirmation, then create the missing remote and internal
topics, add partitions, and set topic configs, printing each step. Every step is idempotent: running
apply twice changes nothing the second time, and a topic a running mirror created meanwhile counts as
done. Configs are set with incremental alter configs, so a topic's other configs are left alone. Flows
are not started: run them with "kdr up" or "kdr mirror run". Like plan, apply follows the failover
state: after a switchover it creates the topics of the flow from the new active cluster.

FILE "-" reads standard input (with --auto-approve).

Exit codes: 0 applied (or nothing to do), 1 error or declined, 2 usage.`,
		Example: `  kdr topology apply topology.yaml
  kdr topology apply topology.yaml --auto-approve     # no prompt, for scripts
  render-topology | kdr topology apply - --auto-approve`,
		Args: exactArgs(1, "one topology file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTimeout(opts.Timeout); err != nil {
				return err
			}
			opts.File = args[0]
			if opts.File == "-" && !opts.AutoApprove {
				return usageError{errors.New("FILE \"-\" reads the topology from standard input, which then cannot answer the prompt: add --auto-approve")}
			}
			if runF != nil {
				return runF(opts)
			}
			return runTopologyApply(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.AutoApprove, "auto-approve", false, "apply without asking for confirmation")
	// --yes, as kdr failover spells it: one word for one thing across kdr.
	cmd.Flags().BoolVar(&opts.AutoApprove, "yes", false, "the same as --auto-approve (kdr failover's name for it)")
	cmd.Flags().StringVar(&opts.StateDir, "state-dir", "", "kdr up's state dir, for the failover state (default $XDG_STATE_HOME/kdr/<topology name>)")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", topology.DefaultClusterTimeout, "bound on each request to a cluster, connecting included")
	return cmd
}

func checkTimeout(d time.Duration) error {
	if d <= 0 {
		return usageError{fmt.Errorf("--timeout %s: must be positive", d)}
	}
	return nil
}

// plan plans the flows that run under the failover state, writing to
// direction which way the active-passive flow runs and why when a
// failover has changed it.
func (o *TopologyPlanOptions) plan(ctx context.Context, direction io.Writer) (*topology.Topology, *topology.PlanResult, error) {
	t, err := loadTopology(o.File, o.IO.In)
	if err != nil {
		return nil, nil, err
	}
	plan, err := topology.Plan(ctx, t, topology.PlanOptions{Timeout: o.Timeout, Flows: o.currentFlows(ctx, t, direction)})
	if err != nil {
		return nil, nil, err
	}
	return t, plan, nil
}

// currentFlows are t's flows as kdr up runs them under the failover state
// (failover.CurrentFlows, as kdr status reports them): planning the
// topology file's directions after a switchover would create the old
// direction's topics and flag the flow kdr up stopped on purpose. With no
// state (no failover yet) they are t.Flows() and nothing is written.
func (o *TopologyPlanOptions) currentFlows(ctx context.Context, t *topology.Topology, direction io.Writer) []topology.FlowSpec {
	dir, err := upStateDir(o.StateDir, t)
	if err != nil {
		return nil // no home to hold a state dir: as kdr status, no state
	}
	st, err := readFailoverState(ctx, t, dir, o.Timeout)
	if err != nil {
		fmt.Fprintf(o.IO.Err, "warning: failover state unreadable, planning the topology file's directions (wrong if a failover reversed one): %v\n", err)
		return nil
	}
	flows := []topology.FlowSpec{}
	for _, f := range failover.CurrentFlows(t, st) {
		switch {
		case !f.Running:
			op := st.Operation
			fmt.Fprintf(direction, "Not planning the flow between %s and %s: the failback to %s is at its %s step, re-copying %s's topics from %s, and until it is done kdr up runs the flow in neither direction.\n",
				f.Spec.Flow.SourceAlias, f.Spec.Flow.TargetAlias, op.To, op.Step, op.To, op.From)
			continue
		case f.Follows && st.Active != "":
			fmt.Fprintf(direction, "%s is active (failover epoch %d): planning %s\n", f.Spec.Flow.SourceAlias, st.Epoch, f.Spec.Name())
		}
		flows = append(flows, f.Spec)
	}
	return flows
}

func runTopologyPlan(ctx context.Context, opts *TopologyPlanOptions) error {
	// The direction line goes with the text plan; JSON output stays one
	// document (its changes name their flow).
	direction := opts.IO.Out
	if opts.Output == outputJSON {
		direction = opts.IO.Err
	}
	_, plan, err := opts.plan(ctx, direction)
	if err != nil {
		return err
	}
	if err := printResult(opts.IO.Out, opts.Output, plan, printPlan); err != nil {
		return err
	}
	if opts.Output == outputText {
		printWarnings(opts.IO.Err, plan)
	}
	if opts.DetailedExitCode && plan.HasChanges() {
		return exitCodeError{code: exitChanges, msg: "the plan has changes (--detailed-exitcode)"}
	}
	return nil
}

func runTopologyApply(ctx context.Context, opts *TopologyPlanOptions) error {
	t, plan, err := opts.plan(ctx, opts.IO.Out)
	if err != nil {
		return err
	}
	out := opts.IO.Out
	if err := printPlan(out, plan); err != nil {
		return err
	}
	printWarnings(opts.IO.Err, plan)
	if !plan.HasChanges() {
		fmt.Fprintln(out, "Apply complete: 0 created, 0 grown, 0 configured.")
		return nil
	}
	if !opts.AutoApprove {
		fmt.Fprint(out, "\nApply these changes? [y/N] ")
		answer, _ := bufio.NewReader(opts.IO.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(out)
			return errors.New("apply cancelled: nothing was changed")
		}
	}
	fmt.Fprintln(out)
	done, err := topology.ApplyPlan(ctx, t, plan, topology.PlanOptions{Timeout: opts.Timeout,
		Progress: func(c topology.Change, err error) {
			if err != nil {
				fmt.Fprintf(out, "x %s topic %s: failed: %v\n", c.Action, address(c), errors.Unwrap(err))
				return
			}
			fmt.Fprintln(out, doneLine(c))
		}})
	counts := fmt.Sprintf("%d created, %d grown, %d configured", done.Count(topology.ActionCreate), done.Count(topology.ActionGrow), done.Count(topology.ActionConfigure))
	if err != nil {
		failed := len(plan.Changes) - len(done.Changes) - plan.Count(topology.ActionStartFlow) - plan.Count(topology.ActionNone)
		fmt.Fprintf(out, "\nApply incomplete: %s, %d failed.\n", counts, failed)
		return err
	}
	fmt.Fprintf(out, "\nApply complete: %s.\n", counts)
	return nil
}

// printPlan prints a plan as terraform does: one line per change, then a
// summary.
func printPlan(w io.Writer, p *topology.PlanResult) error {
	for _, c := range p.Changes {
		if line := planLine(c); line != "" {
			fmt.Fprintln(w, line)
		}
	}
	if len(p.Changes) > 0 {
		fmt.Fprintln(w)
	}
	if !p.HasChanges() {
		_, err := fmt.Fprintln(w, "No changes. The clusters match the topology.")
		return err
	}
	_, err := fmt.Fprintf(w, "Plan: %d to create, %d to grow, %d to configure.\n",
		p.Count(topology.ActionCreate), p.Count(topology.ActionGrow), p.Count(topology.ActionConfigure))
	return err
}

func printWarnings(w io.Writer, p *topology.PlanResult) {
	for _, s := range p.Warnings {
		fmt.Fprintln(w, "Warning:", s)
	}
}

func address(c topology.Change) string { return c.Cluster + "/" + c.Topic }

// planLine is one change as plan prints it; "" for unchanged topics.
func planLine(c topology.Change) string {
	switch c.Action {
	case topology.ActionCreate:
		return fmt.Sprintf("+ create topic %s (%s)", address(c), createDetail(c.Detail))
	case topology.ActionGrow:
		return fmt.Sprintf("~ grow topic %s: %d → %d partitions", address(c), c.Detail.CurrentPartitions, c.Detail.Partitions)
	case topology.ActionConfigure:
		parts := make([]string, len(c.Detail.ConfigChanges))
		for i, cc := range c.Detail.ConfigChanges {
			old := "(unset)"
			if cc.Old != nil {
				old = *cc.Old
			}
			parts[i] = fmt.Sprintf("%s %s → %s", cc.Key, old, cc.New)
		}
		return fmt.Sprintf("~ configure topic %s: %s", address(c), strings.Join(parts, ", "))
	case topology.ActionStartFlow:
		return fmt.Sprintf("! flow %s not running (start it with kdr up or kdr mirror run)", c.Flow)
	}
	return ""
}

// doneLine is one performed change as apply prints it.
func doneLine(c topology.Change) string {
	switch c.Action {
	case topology.ActionCreate:
		return fmt.Sprintf("+ created topic %s (%s)", address(c), createDetail(c.Detail))
	case topology.ActionGrow:
		return fmt.Sprintf("~ grew topic %s to %d partitions", address(c), c.Detail.Partitions)
	default:
		keys := make([]string, len(c.Detail.ConfigChanges))
		for i, cc := range c.Detail.ConfigChanges {
			keys[i] = cc.Key + "=" + cc.New
		}
		return fmt.Sprintf("~ configured topic %s: %s", address(c), strings.Join(keys, ", "))
	}
}

func createDetail(d topology.Detail) string {
	parts := []string{countOf(int(d.Partitions), "partition")}
	if d.ReplicationFactor > 0 {
		parts = append(parts, fmt.Sprintf("RF %d", d.ReplicationFactor))
	} else {
		parts = append(parts, "RF cluster default")
	}
	for _, k := range slices.Sorted(maps.Keys(d.Configs)) {
		parts = append(parts, k+"="+d.Configs[k])
	}
	return strings.Join(parts, ", ")
}

func countOf(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}
