package up

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/topology"
)

// Following the failover state: the flow of the topology's active-passive
// pattern runs from the active cluster (State.Active in the coordination
// store; the primary when there is no state) to the other one. kdr up
// watches the store and, when the active cluster changes, stops the old
// direction's workers (SIGTERM) and starts the new direction's. During a
// failback's resync step no flow runs into the old primary (its topics are
// being re-copied). When the store cannot be reached, kdr up logs it and
// keeps the current direction: data keeps flowing.
//
// It also fences returning old primaries (failover.EnsureFenced) whenever
// the state changes and every fenceInterval, and exports the state as
// Prometheus metrics (see metrics.go).

// fenceInterval is how often kdr up checks that the clusters the state
// lists as fenced are fenced.
const fenceInterval = 3 * time.Second

// storeRetry is the pause after a failed store call.
const storeRetry = 2 * time.Second

// flowSlot is one flow of the topology: its current direction and workers.
type flowSlot struct {
	fi int // index in Topology.Flows() and Endpoints.Flows
	// dynamic slots belong to the failover pattern and follow the state.
	dynamic bool
	spec    topology.FlowSpec // the direction running (or last run)
	running bool
	workers []*child
}

// failoverView is the state kdr up follows, shared with the metrics.
type failoverView struct {
	mu    sync.Mutex
	state store.State
	known bool
}

func (v *failoverView) set(s store.State) {
	v.mu.Lock()
	v.state, v.known = s, true
	v.mu.Unlock()
}

func (v *failoverView) get() (store.State, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state, v.known
}

// initialState reads the state once at start (bounded), so that the
// first workers already run in the right direction.
func (r *runner) initialState(ctx context.Context) {
	if r.store == nil {
		return
	}
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := r.store.Get(gctx)
	if err != nil {
		r.logger.Warn("coordination store unavailable: running the flow from the primary until it answers", "err", err)
		return
	}
	r.view.set(v.State)
	r.version = v.Version
}

// newWorkers builds the children of slot's current direction and records
// them in the endpoints (under r.mu).
func (r *runner) newWorkersLocked(s *flowSlot) error {
	f := s.spec.Flow
	fi := s.fi
	fe := FlowEndpoints{Name: f.Name(), Source: f.SourceAlias, Target: f.TargetAlias, Group: f.Group()}
	s.workers = nil
	for n := range max(s.spec.Workers, 1) {
		instance := f.SourceAlias + "-" + f.TargetAlias + "-" + strconv.Itoa(n)
		port, err := freePort()
		if err != nil {
			return err
		}
		fe.Workers = append(fe.Workers, WorkerEndpoints{InstanceID: instance,
			MetricsURL: metricsURL(port), Log: r.layout.WorkerLog(f.SourceAlias, f.TargetAlias, n)})
		args := func() []string {
			// Restarts keep the port unless something else took it.
			if !portFree(port) {
				if p, err := freePort(); err == nil {
					port = p
					r.setPID(func(e *Endpoints) {
						if fi < len(e.Flows) && n < len(e.Flows[fi].Workers) && e.Flows[fi].Workers[n].InstanceID == instance {
							e.Flows[fi].Workers[n].MetricsURL = metricsURL(port)
						}
					})
				}
			}
			return WorkerArgs(f, instance, hostPort("127.0.0.1", port))
		}
		ch := newChild(fmt.Sprintf("%s worker %d", f.Name(), n), r.opts.Bin,
			r.layout.WorkerLog(f.SourceAlias, f.TargetAlias, n), args, r.logger,
			func(pid int) {
				r.setPID(func(e *Endpoints) {
					if fi < len(e.Flows) && n < len(e.Flows[fi].Workers) && e.Flows[fi].Workers[n].InstanceID == instance {
						e.Flows[fi].Workers[n].PID = pid
					}
				})
			})
		ch.group = f.Name()
		ch.env = WorkerEnv(f)
		s.workers = append(s.workers, ch)
	}
	r.endpoints.Flows[fi] = fe
	return nil
}

// workersNow is every worker child of the running slots.
func (r *runner) workersNow() []*child {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*child
	for _, s := range r.slots {
		if s.running {
			out = append(out, s.workers...)
		}
	}
	return out
}

// specsNow are the flows running now.
func (r *runner) specsNow() []topology.FlowSpec {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []topology.FlowSpec
	for _, s := range r.slots {
		if s.running {
			out = append(out, s.spec)
		}
	}
	return out
}

// follow watches the store until ctx ends, reconciling the flows and
// fencing returning old primaries.
func (r *runner) follow(ctx context.Context) {
	if r.store == nil {
		return
	}
	changes := make(chan store.Versioned, 1)
	go func() {
		after := r.version
		failing := false
		for ctx.Err() == nil {
			v, err := r.store.Watch(ctx, after)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if !failing {
					r.logger.Error("coordination store unavailable: keeping the current flow direction", "err", err)
					failing = true
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(storeRetry):
				}
				continue
			}
			if failing {
				r.logger.Info("coordination store answers again")
				failing = false
			}
			after = v.Version
			select {
			case <-changes:
			default:
			}
			changes <- v
		}
	}()
	r.registerClusters(ctx)
	if st, ok := r.view.get(); ok {
		r.ensureFenced(ctx, st)
	}
	tick := time.NewTicker(fenceInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case v := <-changes:
			r.view.set(v.State)
			r.reconcile(ctx, v.State)
			r.ensureFenced(ctx, v.State)
		case <-tick.C:
			if st, ok := r.view.get(); ok {
				r.ensureFenced(ctx, st)
			}
		}
	}
}

// ensureFenced fences the clusters st lists as fenced, if any.
func (r *runner) ensureFenced(ctx context.Context, st store.State) {
	err := failover.EnsureFenced(ctx, failover.Options{Topology: r.topo, StateDir: r.layout.Dir, Store: r.store, Logger: r.logger})
	if err != nil && ctx.Err() == nil {
		r.logger.Warn("fencing returning old primaries", "err", err)
	}
}

// reconcile stops the workers of flows the state no longer wants and
// starts the wanted ones.
func (r *runner) reconcile(ctx context.Context, st store.State) {
	for _, s := range r.slots {
		if !s.dynamic {
			continue
		}
		want, ok := failover.PatternFlow(r.pattern, st)
		same := ok && s.running && want.Flow.SourceAlias == s.spec.Flow.SourceAlias
		if same || (!ok && !s.running) {
			continue
		}
		if s.running {
			r.logger.Info("failover state changed: stopping flow", "flow", s.spec.Name(), "active", st.Active, "epoch", st.Epoch)
			stopAll(r.logger, "mirror workers of "+s.spec.Name(), s.workers, WorkerStopGrace)
			r.mu.Lock()
			s.running = false
			r.endpoints.Flows[s.fi].Workers = nil
			r.writeLocked()
			r.mu.Unlock()
		}
		if !ok || ctx.Err() != nil {
			continue
		}
		r.mu.Lock()
		s.spec = want
		err := r.newWorkersLocked(s)
		if err == nil {
			s.running = true
		}
		r.writeLocked()
		r.mu.Unlock()
		if err != nil {
			r.logger.Error("cannot start flow", "flow", want.Name(), "err", err)
			continue
		}
		r.logger.Info("failover state changed: starting flow", "flow", want.Name(), "active", st.Active, "epoch", st.Epoch)
		r.start(s.workers)
	}
}

// registerClusters announces every cluster's brokers to the store, so that
// with Consul each cluster is a service with a TCP check per broker
// (failover commands and operators read their health there). A failure is
// logged; kdr up runs on without it.
func (r *runner) registerClusters(ctx context.Context) {
	for _, c := range r.topo.Clusters {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.store.RegisterCluster(rctx, store.ClusterRegistration{Cluster: c.Name, Region: c.Region, Brokers: c.BootstrapServers()})
		cancel()
		if err != nil {
			r.logger.Warn("registering the cluster with the coordination store", "cluster", c.Name, "err", err)
		}
	}
}
