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
			// Info: every start of a fresh standby does this; a fence a
			// cluster lost shows in kdr_broker_fenced and failover status.
			opts.Logger.Info("fenced a cluster that must not take client writes", "cluster", c, "epoch", s.Epoch, "active", active)
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
		s.Operation = operationStatus(*op)
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

// dataEpoch is the Operation.Data key of the epoch the operation fences
// and promotes at.
const dataEpoch = "epoch"

// fixEpoch settles the epoch the operation fences and promotes at, once
// (kept in its data): one above the state's and above every fence epoch
// the clusters carry. The clusters' fences can be ahead of the state: a
// new coordination store (file to Consul) or a reset one starts at epoch
// 0 while the clusters keep the fences of the failovers made through the
// old one, and a fence refuses an older epoch, so an operation at the
// state's epoch + 1 would fail at its fence on every rerun. clusters are
// those to read (ones known to answer); it returns a note for the step's
// message when the fences were ahead.
func (o *opRun) fixEpoch(ctx context.Context, clusters ...string) (string, error) {
	var e int64
	if ok, err := o.getData(dataEpoch, &e); ok || err != nil {
		return "", err
	}
	highest, on := o.state.Epoch, ""
	for _, c := range clusters {
		adm, err := o.cl.admin(c)
		if err != nil {
			return "", err
		}
		fctx, cancel := context.WithTimeout(ctx, probeTimeout)
		f, err := readFence(fctx, adm)
		cancel()
		if err != nil {
			return "", fmt.Errorf("reading %s's fence: %w", c, err)
		}
		if f.Supported && f.Epoch > highest {
			highest, on = f.Epoch, c
		}
	}
	o.setData(dataEpoch, highest+1)
	if on == "" {
		return "", nil
	}
	return fmt.Sprintf("%s's fence carries epoch %d, above the state's %d (a new or reset coordination store): this %s takes epoch %d",
		on, highest, o.state.Epoch, o.kind, highest+1), nil
}

// epoch is the epoch the operation fences and promotes at: fixEpoch's, or
// for an operation started by a kdr that did not record it, the state's
// epoch + 1.
func (o *opRun) epoch() int64 {
	e := o.state.Epoch + 1
	if ok, err := o.getData(dataEpoch, &e); !ok || err != nil {
		return o.state.Epoch + 1
	}
	return e
}
