package failover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kdr-io/kdr/clientsec"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/mirror"
	"github.com/kdr-io/kdr/mirror/offsets"
)

// Switchover is a planned switch to cluster to: pre-flight checks, fence
// the active cluster, drain the mirror, promote to, move the consumer
// groups' offsets, reverse the flow, verify. See the package doc.
func Switchover(ctx context.Context, opts Options, to string) (*Result, error) {
	return execute(ctx, opts, KindSwitchover, to)
}

// switchoverSteps are the planned switchover's steps; prefix names them
// inside a failback ("switchover:").
func switchoverSteps(prefix string) []step {
	return []step{
		{prefix + "preflight", func(o *opRun, ctx context.Context) (stepOut, error) { return o.preflight(ctx, prefix != "") }},
		{prefix + "fence", (*opRun).fence},
		{prefix + "drain", (*opRun).drain},
		{prefix + "promote", (*opRun).promoteStep},
		{prefix + "sync-offsets", (*opRun).syncOffsets},
		{prefix + "reverse", (*opRun).reverse},
		{prefix + "verify", (*opRun).verify},
	}
}

// doneStep ends every operation: the state document drops it.
var doneStep = step{"done", func(o *opRun, _ context.Context) (stepOut, error) {
	msg := fmt.Sprintf("%s %s finished: %s is active at epoch %d", o.kind, o.id, o.state.Active, o.state.Epoch)
	return stepOut{msg: msg, apply: func(st *store.State) { st.Operation = nil }}, nil
}}

// stepsFor lists the steps of kind.
func stepsFor(kind string) []step {
	var steps []step
	switch kind {
	case KindSwitchover:
		steps = switchoverSteps("")
	case KindPromote:
		steps = promoteSteps()
	case KindFailback:
		steps = append(failbackSteps(), switchoverSteps("switchover:")...)
	}
	return append(steps, doneStep)
}

// Plan returns the names of the steps kind ("switchover", "promote" or
// "failback") runs, in order.
func Plan(kind, to string, opts Options) ([]string, error) {
	switch kind {
	case KindSwitchover, KindPromote, KindFailback:
	default:
		return nil, fmt.Errorf("failover: unknown operation %q: want %s, %s or %s", kind, KindSwitchover, KindPromote, KindFailback)
	}
	if opts.Topology != nil && to != "" {
		if _, err := patternFor(opts.Topology, store.State{}, to); err != nil {
			return nil, err
		}
	}
	var out []string
	for _, s := range stepsFor(kind) {
		out = append(out, s.name)
	}
	return out, nil
}

// preflight checks both clusters, the flow from → to and its lag. Inside
// a failback it first waits (promote timeout) for the flow, which kdr up
// restarts after the resync.
func (o *opRun) preflight(ctx context.Context, waitFlow bool) (stepOut, error) {
	var msgs []string
	for _, c := range []string{o.from, o.to} {
		s := o.cl.probe(ctx, c)
		if !s.Reachable {
			return stepOut{}, fmt.Errorf("cluster %s (%s) unreachable: %s; a planned switchover needs both clusters (use promote --force when the active one is down)",
				c, bootstrapString(o.opts.Topology, c), s.Error)
		}
		if !s.Healthy {
			return stepOut{}, fmt.Errorf("cluster %s is not healthy: %d/%d brokers up, controller %d, %d offline partitions",
				c, s.BrokersUp(), s.BrokersExpected, s.ControllerID, s.OfflinePartitions)
		}
		msgs = append(msgs, fmt.Sprintf("%s %d/%d brokers", c, s.BrokersUp(), s.BrokersExpected))
	}
	f := o.pat.Flow(o.from)
	adm, err := o.cl.admin(o.from)
	if err != nil {
		return stepOut{}, err
	}
	members := 0
	check := func(ctx context.Context) error {
		return poll(ctx, 500*time.Millisecond, func() (bool, string, error) {
			n, err := offsets.GroupMembers(ctx, adm, f.Group())
			if err != nil {
				return false, err.Error(), nil
			}
			members = n
			return n > 0, fmt.Sprintf("flow %s has no running workers (group %s on %s is empty)", f.Name(), f.Group(), o.from), nil
		})
	}
	if waitFlow {
		err = withTimeout(ctx, o.opts.Promote, "waiting for flow "+f.Name(), check)
	} else {
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err = check(cctx)
		cancel()
	}
	if err != nil {
		return stepOut{}, fmt.Errorf("%w; start it (kdr up does, or: %s)", err, mirrorRunCommand(o.pat, o.from))
	}
	maxRecords, maxAge := o.opts.maxLag()
	var lag int64
	var age time.Duration
	checkLag := func() error {
		parts, err := flowLag(ctx, adm, f)
		if err != nil {
			return err
		}
		lag = totalLag(parts)
		if lag > maxRecords {
			return lagError(fmt.Sprintf("flow %s lags %d records, more than failover.maxLagRecords %d: let it catch up first", f.Name(), lag, maxRecords))
		}
		octx, cancel := context.WithTimeout(ctx, probeTimeout)
		oldest, err := o.cl.oldestUnmirrored(octx, o.from, parts)
		cancel()
		age = 0
		if err == nil && !oldest.IsZero() {
			age = time.Since(oldest)
		}
		if age > maxAge {
			return lagError(fmt.Sprintf("flow %s lags %s (oldest record not copied yet), more than failover.maxLag %s: let it catch up first", f.Name(), age.Round(time.Millisecond), maxAge))
		}
		return nil
	}
	// A flow that has just started (after the previous switchover, or the
	// resync of a failback) is still working through its backlog, and its
	// age-based lag counts records it will only skip: give it a moment to
	// come within the policy before refusing (a failback, whose reverse
	// flow has a whole resync to catch up on, up to the drain timeout).
	wait, step := min(o.opts.Drain, preflightLagWait), "preflight"
	if o.kind == KindFailback {
		wait, step = o.opts.Drain, "switchover:preflight"
	}
	err = withTimeout(ctx, wait, "waiting for "+f.Name()+" to catch up", func(ctx context.Context) error {
		return poll(ctx, 500*time.Millisecond, func() (bool, string, error) {
			if err := checkLag(); err != nil {
				var lagErr lagError
				if errors.As(err, &lagErr) {
					o.progress(step, err.Error())
					return false, err.Error(), nil
				}
				return false, "", err
			}
			return true, "", nil
		})
	})
	if err != nil {
		return stepOut{}, err
	}
	msgs = append(msgs, fmt.Sprintf("flow %s running (%d workers), lag %d records (%s)", f.Name(), members, lag, age.Round(time.Millisecond)))
	note, err := o.fixEpoch(ctx, o.from, o.to)
	if err != nil {
		return stepOut{}, err
	}
	if note != "" {
		msgs = append(msgs, note)
	}
	return stepOut{msg: strings.Join(msgs, "; ")}, nil
}

// lagError: the flow is further behind than the failover policy allows.
type lagError string

func (e lagError) Error() string { return string(e) }

// preflightLagWait bounds how long a switchover's preflight waits for the
// flow to come within the lag policy before refusing.
const preflightLagWait = 20 * time.Second

// fence makes the old primary refuse client writes at the next epoch.
func (o *opRun) fence(ctx context.Context) (stepOut, error) {
	// An operation resumed from a kdr that did not fix its epoch at the
	// preflight fixes it here, or it would refuse forever at a fence
	// that is ahead of the state.
	if _, err := o.fixEpoch(ctx, o.from, o.to); err != nil {
		return stepOut{}, err
	}
	epoch := o.epoch()
	adm, err := o.cl.admin(o.from)
	if err != nil {
		return stepOut{}, err
	}
	reason := fmt.Sprintf("%s %s to %s", o.kind, o.id, o.to)
	err = withTimeout(ctx, o.opts.Fence, "fencing "+o.from, func(ctx context.Context) error {
		return setFenceRetrying(ctx, adm, true, epoch, reason)
	})
	if errors.Is(err, errFenceUnsupported) {
		o.setData("fence_skipped", true)
		return stepOut{msg: fmt.Sprintf("fencing skipped on %s: discovery-based only (%v)", o.from, err), skipped: true}, nil
	}
	if err != nil {
		return stepOut{}, fmt.Errorf("fencing %s: %w", o.from, err)
	}
	return stepOut{msg: fmt.Sprintf("%s fenced at epoch %d: clients can no longer produce there", o.from, epoch)}, nil
}

// drain waits until the flow has copied every record of the fenced
// cluster: its committed position equals the high watermark everywhere.
func (o *opRun) drain(ctx context.Context) (stepOut, error) {
	f := o.pat.Flow(o.from)
	adm, err := o.cl.admin(o.from)
	if err != nil {
		return stepOut{}, err
	}
	name := o.steps[o.stepIndex("drain")].name
	var parts []partLag
	start := time.Now()
	err = withTimeout(ctx, o.opts.Drain, "draining "+f.Name(), func(ctx context.Context) error {
		return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
			qctx, cancel := context.WithTimeout(ctx, probeTimeout)
			p, err := flowLag(qctx, adm, f)
			cancel()
			if err != nil {
				return false, err.Error(), nil
			}
			parts = p
			lag := totalLag(parts)
			o.progress(name, fmt.Sprintf("%d records left to mirror", lag))
			return lag == 0, fmt.Sprintf("%d records of %s not mirrored yet (is the flow running?)", lag, o.from), nil
		})
	})
	if err != nil {
		return stepOut{}, err
	}
	return stepOut{msg: fmt.Sprintf("drained %d partitions in %s", len(parts), time.Since(start).Round(time.Millisecond))}, nil
}

// stepIndex finds the step whose name ends with suffix (the switchover
// steps run with a prefix inside a failback).
func (o *opRun) stepIndex(suffix string) int {
	for i, s := range o.steps {
		if s.name == suffix || strings.HasSuffix(s.name, ":"+suffix) {
			return i
		}
	}
	return 0
}

// promoteStep makes to active: unfences it if it was fenced, then the
// state says Active=to at the operation's epoch with from fenced.
func (o *opRun) promoteStep(ctx context.Context) (stepOut, error) {
	epoch := o.epoch()
	msg := fmt.Sprintf("%s is active at epoch %d", o.to, epoch)
	if slices.Contains(FencedSet(o.pat, o.state), o.to) {
		adm, err := o.cl.admin(o.to)
		if err != nil {
			return stepOut{}, err
		}
		err = withTimeout(ctx, o.opts.Fence, "unfencing "+o.to, func(ctx context.Context) error {
			return setFenceRetrying(ctx, adm, false, epoch, fmt.Sprintf("%s %s: active again", o.kind, o.id))
		})
		if err != nil && !errors.Is(err, errFenceUnsupported) {
			return stepOut{}, fmt.Errorf("unfencing %s: %w", o.to, err)
		}
		msg += fmt.Sprintf("; %s unfenced", o.to)
	}
	return stepOut{msg: msg, apply: func(st *store.State) {
		if st.Active != o.to {
			st.Active = o.to
			st.Epoch = max(epoch, st.Epoch+1)
		}
		st.Fenced = withFenced(FencedSet(o.pat, *st), o.from, o.to)
	}}, nil
}

// withFenced returns fenced with add in and remove out, sorted.
func withFenced(fenced []string, add, remove string) []string {
	var out []string
	for _, c := range fenced {
		if c != remove && c != add {
			out = append(out, c)
		}
	}
	out = append(out, add)
	slices.Sort(out)
	return out
}

// reverse waits until the reverse flow to → from runs (kdr up starts it
// when it sees the new state).
func (o *opRun) reverse(ctx context.Context) (stepOut, error) {
	f := o.pat.Flow(o.to)
	adm, err := o.cl.admin(o.to)
	if err != nil {
		return stepOut{}, err
	}
	members := 0
	err = withTimeout(ctx, o.opts.Promote, "waiting for the reverse flow "+f.Name(), func(ctx context.Context) error {
		return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
			n, err := offsets.GroupMembers(ctx, adm, f.Group())
			if err != nil {
				return false, err.Error(), nil
			}
			members = n
			return n > 0, fmt.Sprintf("no worker of %s runs (group %s on %s is empty)", f.Name(), f.Group(), o.to), nil
		})
	})
	if err != nil {
		return stepOut{}, fmt.Errorf("%w; kdr up starts it by itself, otherwise run: %s", err, mirrorRunCommand(o.pat, o.to))
	}
	return stepOut{msg: fmt.Sprintf("reverse flow %s running (%d workers)", f.Name(), members)}, nil
}

// verify checks that to answers and from is still fenced.
func (o *opRun) verify(ctx context.Context) (stepOut, error) {
	if err := o.cl.reachable(ctx, o.to); err != nil {
		return stepOut{}, err
	}
	msg := o.to + " answers Metadata"
	if skipped, _ := o.getData("fence_skipped", new(bool)); skipped {
		return stepOut{msg: msg + "; " + o.from + " not fenced (no kdr fence): discovery-based only"}, nil
	}
	adm, err := o.cl.admin(o.from)
	if err != nil {
		return stepOut{}, err
	}
	fctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	f, err := readFence(fctx, adm)
	if err != nil {
		return stepOut{}, fmt.Errorf("checking %s's fence: %w", o.from, err)
	}
	if !f.Fenced {
		return stepOut{}, fmt.Errorf("%s is not fenced any more (epoch %d): something unfenced it; rerun to fence it again", o.from, f.Epoch)
	}
	return stepOut{msg: fmt.Sprintf("%s; %s fenced at epoch %d", msg, o.from, f.Epoch)}, nil
}

// mirrorRunCommand is the kdr mirror run command of the flow from → the
// other cluster, for people who run workers by hand.
func mirrorRunCommand(p Pattern, from string) string {
	f := p.Flow(from)
	cmd := fmt.Sprintf("kdr mirror run --source-alias %s --source-brokers %s --target-alias %s --target-brokers %s --naming %s --topics '%s'",
		f.SourceAlias, strings.Join(f.Source.Brokers, ","), f.TargetAlias, strings.Join(f.Target.Brokers, ","), f.Naming, f.Topics)
	if f.TopicsExclude != "" {
		cmd += fmt.Sprintf(" --topics-exclude '%s'", f.TopicsExclude)
	}
	// Where the syncs are must match what failover reads next time.
	if f.OffsetSyncsLocation != mirror.SyncsOnSource {
		cmd += " --offset-syncs-topic-location " + f.OffsetSyncsLocation
	}
	if f.MaxBytesPerSecond > 0 {
		cmd += fmt.Sprintf(" --max-bytes-per-second %d", f.MaxBytesPerSecond)
	}
	var env []string
	for _, s := range []struct {
		side string
		sec  clientsec.Config
	}{{"source", f.Source.Security}, {"target", f.Target.Security}} {
		for _, a := range s.sec.Args(s.side+"-", false) {
			cmd += " '" + a + "'"
		}
		if s.sec.SASL.Password != "" {
			// Never printed: the worker reads it from the variable.
			env = append(env, "KDR_"+strings.ToUpper(s.side)+"_SASL_PASSWORD")
		}
	}
	if len(env) > 0 {
		cmd += " (with the topology's password in " + strings.Join(env, " and ") + ")"
	}
	return cmd
}

// setFenceRetrying is setFence retried until ctx ends, for the errors that
// may pass (a broker losing its raft leadership answers "may or may not
// have been applied"; the same epoch again is idempotent). A newer epoch on
// the cluster, or a cluster without fencing, ends it at once.
func setFenceRetrying(ctx context.Context, adm *kadm.Client, fenced bool, epoch int64, reason string) error {
	return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
		err := setFence(ctx, adm, fenced, epoch, reason)
		switch {
		case err == nil:
			return true, "", nil
		case errors.Is(err, errFenceUnsupported), errors.Is(err, errNewerFence):
			return false, "", err
		}
		return false, err.Error(), nil
	})
}
