package failover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/kdr-io/kdr/failover/store"
)

// EnsureFenced fences every cluster that must not take client writes and
// answers but is not fenced at the state's epoch yet: those the state lists
// in Fenced, and the failover pattern's passive cluster (only the mirror
// writes there). An old primary that was unreachable when it was promoted
// away from thus comes back fenced, and at no time do both clusters take
// writes.
// Clusters that do not answer are left for the next call. It takes no
// lock: fencing at an epoch is idempotent, and the brokers refuse an older
// epoch. Every failover command calls it first; kdr up calls it whenever
// the state changes and every few seconds.
func EnsureFenced(ctx context.Context, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	st, closeStore, err := opts.openStore()
	if err != nil {
		return err
	}
	defer closeStore()
	v, err := st.Get(ctx)
	if err != nil {
		return err
	}
	cl := newClusters(opts.Topology)
	defer cl.close()
	return ensureFenced(ctx, opts, v.State, cl)
}

// ensureFenced is EnsureFenced with the state read and clients made. It
// logs what it did and returns the errors of reachable clusters it could
// not fence.
func ensureFenced(ctx context.Context, opts Options, s store.State, cl *clusters) error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	active := s.Active
	fenced := s.Fenced
	if p, err := ActivePassive(opts.Topology, s.Active, ""); err == nil {
		active = ActiveOf(p, s)
		fenced = FencedSet(p, s)
	}
	for _, c := range fenced {
		if c == active || opts.Topology.ClusterByName(c) == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			if cl.reachable(fctx, c) != nil {
				return // pending: fenced when it is back
			}
			adm, err := cl.admin(c)
			if err != nil {
				return
			}
			cur, err := readFence(fctx, adm)
			// A fence epoch above the state's was set by a newer
			// operation than the state read here: leave it alone.
			if err == nil && (!cur.Supported || cur.Epoch > s.Epoch || (cur.Fenced && cur.Epoch >= s.Epoch)) {
				return
			}
			reason := fmt.Sprintf("failover epoch %d: %s is active", s.Epoch, active)
			if err == nil {
				err = setFence(fctx, adm, true, s.Epoch, reason)
			}
			if err != nil && !errors.Is(err, errFenceUnsupported) {
				opts.Logger.Warn("could not fence a cluster that must not take client writes", "cluster", c, "epoch", s.Epoch, "err", err)
				mu.Lock()
				errs = append(errs, fmt.Errorf("fencing %s: %w", c, err))
				mu.Unlock()
				return
			}
			opts.Logger.Warn("fenced a cluster that must not take client writes", "cluster", c, "epoch", s.Epoch, "active", active)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// GetStatus reads the failover state: the active cluster, epoch, the
// operation in progress, fenced clusters, the timeline and the last drill.
// It takes no lock.
func GetStatus(ctx context.Context, opts Options) (*Status, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	st, closeStore, err := opts.openStore()
	if err != nil {
		return nil, err
	}
	defer closeStore()
	v, err := st.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("failover: reading the state: %w", err)
	}
	p, err := ActivePassive(opts.Topology, "", "")
	if err != nil && v.State.Operation != nil {
		p, err = ActivePassive(opts.Topology, v.State.Operation.From, v.State.Operation.To)
	}
	if err != nil {
		p, err = ActivePassive(opts.Topology, v.State.Active, "")
	}
	if err != nil {
		return nil, err
	}
	s := &Status{Topology: opts.Topology.Metadata.Name, Primary: p.Primary, Standby: p.Standby,
		Active: ActiveOf(p, v.State), Epoch: v.State.Epoch, Fenced: FencedSet(p, v.State),
		ConsumerOffsets: v.State.ConsumerOffsets, History: v.State.History, LastDrill: v.State.LastDrill, Version: v.Version}
	if s.Fenced == nil {
		s.Fenced = []string{}
	}
	if s.History == nil {
		s.History = []store.Event{}
	}
	if s.ConsumerOffsets == "" {
		s.ConsumerOffsets = s.Active
	}
	if op := v.State.Operation; op != nil {
		s.Operation = &OperationStatus{ID: op.ID, Kind: op.Kind, From: op.From, To: op.To, Step: op.Step,
			StepIndex: op.StepIndex, Total: len(stepsFor(op.Kind)), Started: op.Started, Resume: resumeCommand(op.Kind, op.To)}
	}
	return s, nil
}

// FencedSet is every cluster that must be fenced under st: State.Fenced
// plus the pattern's passive cluster, sorted.
func FencedSet(p Pattern, st store.State) []string {
	out := slices.Clone(st.Fenced)
	if other := p.Other(ActiveOf(p, st)); !slices.Contains(out, other) {
		out = append(out, other)
	}
	slices.Sort(out)
	return out
}
