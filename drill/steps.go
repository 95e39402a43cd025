package drill

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/internal/checker"
)

// runStep runs step i and its wait, records and prints it, and reports
// whether the drill goes on.
func (r *runner) runStep(ctx context.Context, i int, s Step) bool {
	started := time.Now()
	r.printf("step %d/%d: %s", i+1, len(r.sc.Steps), s)
	kind := "step"
	switch s.Action {
	case ActKillBroker, ActKillCluster, ActIsolateCluster, ActKillMirror, ActCutNetwork:
		kind = "fault"
	case ActRestartCluster, ActHealCluster, ActRestartMirror, ActHealNetwork:
		kind = "heal"
	case ActSwitchover, ActPromote, ActFailback, ActRepoint:
		kind = "failover"
	}
	if s.Action != ActWait {
		r.event(kind, s.String())
	}
	msg, err := r.do(ctx, s)
	if err == nil && s.Wait != nil && s.Action != ActWait {
		var wmsg string
		wmsg, err = r.wait(ctx, *s.Wait)
		msg = strings.TrimSpace(msg + "; " + wmsg)
	}
	finished := time.Now()
	rep := StepReport{Index: i, Action: s.Action, Description: s.String(), Started: started, Finished: finished,
		Seconds: finished.Sub(started).Seconds(), OK: err == nil, Message: strings.Trim(msg, "; ")}
	if err != nil {
		rep.Message = strings.TrimSpace(rep.Message + " " + err.Error())
		r.printf("step %d/%d FAILED after %.1fs: %v", i+1, len(r.sc.Steps), rep.Seconds, err)
	} else {
		r.printf("step %d/%d ok (%.1fs) %s", i+1, len(r.sc.Steps), rep.Seconds, rep.Message)
	}
	r.mu.Lock()
	r.steps = append(r.steps, rep)
	r.mu.Unlock()
	return err == nil
}

// do performs the step's action.
func (r *runner) do(ctx context.Context, s Step) (string, error) {
	a := s.Args
	switch s.Action {
	case ActStartLoad:
		if err := r.load.start(); err != nil {
			return "", err
		}
		return fmt.Sprintf("%g records/s over %d keys to %s on %s, group %s", r.sc.Load.Rate, r.sc.Load.Keys, r.sc.Load.Topic, r.cl.Active(), r.sc.Load.ConsumerGroup), nil
	case ActStopLoad:
		r.load.stopProducing(30 * time.Second)
		c := r.load.counts()
		return fmt.Sprintf("produced %d, acknowledged %d, failed %d", c.Produced, c.Acked, c.Failed), nil
	case ActWait:
		return r.wait(ctx, *s.Wait)
	case ActKillBroker:
		return "SIGKILL; kdr up restarts it", r.env.killBroker(a.Cluster, a.Broker)
	case ActKillCluster:
		return "every broker SIGKILLed, and again whenever kdr up restarts one, until restart-cluster",
			r.env.setHold("cluster:"+a.Cluster, syscall.SIGKILL, brokerPIDs(a.Cluster, 0))
	case ActIsolateCluster:
		return "every broker SIGSTOPped (a black hole: connections hang) until heal-cluster",
			r.env.setHold("isolate:"+a.Cluster, syscall.SIGSTOP, brokerPIDs(a.Cluster, 0))
	case ActRestartCluster, ActHealCluster:
		released := r.env.releaseHold("cluster:"+a.Cluster) || r.env.releaseHold("isolate:"+a.Cluster)
		if !released {
			return "", fmt.Errorf("cluster %s was not killed or isolated by this drill", a.Cluster)
		}
		if err := r.env.waitHealthyCluster(ctx, a.Cluster); err != nil {
			return "", fmt.Errorf("cluster %s did not come back: %w", a.Cluster, err)
		}
		return "cluster healthy" + r.readUnreplicated(ctx, a.Cluster), nil
	case ActKillMirror:
		return "workers SIGKILLed; kdr up restarts them", r.env.killMirror(a.Flow)
	case ActRestartMirror:
		return "workers running and healthy", r.env.waitMirror(ctx, a.Flow)
	case ActCutNetwork:
		x, y := a.Between[0], a.Between[1]
		ep, err := r.env.endpoints()
		if err != nil {
			return "", err
		}
		if len(flowPIDs(flowBetween(x, y))(ep)) == 0 {
			return "", fmt.Errorf("%w: clients reach %s and %s directly (no fault proxy in between) and no mirror worker links them now, so there is nothing the drill can cut",
				ErrNotSupported, x, y)
		}
		return "the mirror workers between them are SIGSTOPped (their connections hang, as in a partition) until heal-network; clients still reach both clusters",
			r.env.setHold("net:"+x+","+y, syscall.SIGSTOP, flowPIDs(flowBetween(x, y)))
	case ActHealNetwork:
		x, y := a.Between[0], a.Between[1]
		if !r.env.releaseHold("net:"+x+","+y) && !r.env.releaseHold("net:"+y+","+x) {
			return "", fmt.Errorf("the network between %s and %s was not cut by this drill", x, y)
		}
		return "mirror workers continued", nil
	case ActSwitchover, ActPromote, ActFailback:
		if s.Background {
			r.background.Add(1)
			go func() {
				defer r.background.Done()
				if _, err := r.failover(ctx, s.Action, a.To); err != nil {
					r.mu.Lock()
					r.bgErrs = append(r.bgErrs, fmt.Errorf("%s to %s: %w", s.Action, a.To, err))
					r.mu.Unlock()
				}
			}()
			return "started in the background", nil
		}
		res, err := r.failover(ctx, s.Action, a.To)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s → %s at epoch %d in %.1fs", res.From, res.To, res.Epoch, res.Finished.Sub(res.Started).Seconds()), nil
	case ActRepoint:
		return r.repoint(ctx, a.To)
	case ActVerify:
		return "", nil // Run's finish checks the thresholds
	}
	return "", fmt.Errorf("unknown action %q", s.Action)
}

// failover runs an orchestrator operation, printing its steps.
func (r *runner) failover(ctx context.Context, kind, to string) (*failover.Result, error) {
	opts := failover.Options{Topology: r.topo, StateDir: r.opts.StateDir, Store: r.store, Logger: r.logger,
		Holder: "kdr-drill", Progress: r.onStep}
	started := time.Now()
	res, err := orchestrate(ctx, kind, opts, to)
	sum := FailoverSummary{Kind: kind, To: to, Started: started, Finished: time.Now()}
	sum.Seconds = sum.Finished.Sub(started).Seconds()
	if err != nil {
		sum.Error = err.Error()
	}
	if res != nil {
		sum.ID, sum.From, sum.Epoch, sum.LastReceived, sum.Diverged = res.ID, res.From, res.Epoch, res.LastReceived, len(res.Diverged)
		for _, d := range res.Diverged {
			sum.DivergedIDs = append(sum.DivergedIDs, divergedID(d))
		}
	}
	r.mu.Lock()
	r.failovers = append(r.failovers, sum)
	if err == nil && kind == ActPromote {
		r.promoted = res
	}
	r.mu.Unlock()
	r.event("failover", fmt.Sprintf("%s done (%.1fs)", kind, sum.Seconds))
	return res, err
}

// onStep prints an orchestrator step and lets waits on it proceed.
func (r *runner) onStep(e failover.StepEvent) {
	if e.State == failover.StepProgress {
		r.logger.Info("drill: failover progress", "step", e.Step, "message", e.Message)
		return
	}
	r.printf("  %s %d/%d %s %s %s", e.Operation, e.Index+1, e.Total, e.Step, e.State, e.Message)
	if e.State == failover.StepStarted {
		r.mu.Lock()
		r.seenSteps[e.Step] = true
		close(r.stepSeen)
		r.stepSeen = make(chan struct{})
		r.mu.Unlock()
	}
}

// repoint moves clients only: it sets State.Active and ConsumerOffsets to
// cluster to, for patterns the orchestrator does not switch (active-active,
// hub-and-spoke), where both clusters already take writes.
func (r *runner) repoint(ctx context.Context, to string) (string, error) {
	for range 10 {
		v, err := r.store.Get(ctx)
		if err != nil {
			return "", err
		}
		st := v.State
		if st.Topology == "" {
			st.Topology = r.topo.Metadata.Name
		}
		from := st.Active
		st.Active, st.ConsumerOffsets = to, to
		st.Record(store.Event{At: time.Now().UTC(), Kind: "drill-repoint", Message: fmt.Sprintf("kdr drill %s moved clients from %s to %s", r.sc.Name, from, to), Epoch: st.Epoch})
		if _, err := r.store.CompareAndSwap(ctx, st, v.Version); err == nil {
			return "State.Active set to " + to, nil
		} else if !errors.Is(err, store.ErrConflict) {
			return "", err
		}
	}
	return "", errors.New("the failover state kept changing; gave up after 10 conflicts")
}

// wait waits for w.
func (r *runner) wait(ctx context.Context, w Wait) (string, error) {
	if w.Until == "" {
		t := time.NewTimer(w.Duration)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
			return "", nil
		}
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = DefaultWaitTimeout
	}
	started := time.Now()
	var err error
	switch w.Until {
	case UntilRecords:
		base := r.load.counts().Distinct
		err = pollUntil(ctx, timeout, 50*time.Millisecond, func() (bool, string) {
			n := r.load.counts().Distinct - base
			return n >= w.Records, fmt.Sprintf("consumed %d of %d new records", n, w.Records)
		}, nil)
	case UntilLagZero:
		c := r.newCatchUp()
		err = pollUntil(ctx, timeout, 250*time.Millisecond, func() (bool, string) { return c.check(ctx) }, nil)
	case UntilHealthy:
		err = r.env.waitHealthyCluster(ctx)
	case UntilStep:
		err = r.waitStep(ctx, timeout, w.Step)
	case UntilBackground:
		err = r.waitBackground(ctx, timeout)
	}
	if err != nil {
		return "", fmt.Errorf("wait %s: %w", w, err)
	}
	return fmt.Sprintf("waited %.1fs for %s", time.Since(started).Seconds(), w), nil
}

func (r *runner) waitStep(ctx context.Context, timeout time.Duration, name string) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		r.mu.Lock()
		seen, ch := r.seenSteps[name], r.stepSeen
		r.mu.Unlock()
		if seen {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("no failover step %q started within %s", name, timeout)
		}
	}
}

// waitBackground waits for the background operations and returns their
// errors.
func (r *runner) waitBackground(ctx context.Context, timeout time.Duration) error {
	done := make(chan struct{})
	go func() { r.background.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return fmt.Errorf("background operations still running after %s", timeout)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	err := errors.Join(r.bgErrs...)
	r.bgErrs = nil
	return err
}

// readUnreplicated: when cluster was the old primary of the last promote,
// read its records beyond Result.LastReceived that it acknowledged itself:
// the unreplicated suffix a forced promote loses.
func (r *runner) readUnreplicated(ctx context.Context, cluster string) string {
	r.mu.Lock()
	res := r.promoted
	r.mu.Unlock()
	if res == nil || res.From != cluster || r.unreplSet {
		return ""
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	recs, err := readLog(rctx, r.cl, cluster, r.sc.Load.Topic, res.LastReceived)
	if err != nil {
		return fmt.Sprintf("; reading the unreplicated suffix failed: %v", err)
	}
	produced, _ := r.load.snapshot()
	ackedBy := map[string]string{}
	for _, p := range produced {
		if p.Acked {
			ackedBy[p.ID] = p.Cluster
		}
	}
	var ids []string
	for _, rec := range recs {
		if rec.Topic == r.sc.Load.Topic && ackedBy[rec.ID] == cluster {
			ids = append(ids, rec.ID)
		}
	}
	r.mu.Lock()
	r.unreplicated, r.unreplSet = ids, true
	r.mu.Unlock()
	return fmt.Sprintf("; %d records it acknowledged lie beyond the promote's last_received (unreplicated)", len(ids))
}

// divergedID decodes a diverged record's workload id ("" if foreign).
func divergedID(d failover.DivergedRecord) string {
	if _, id, ok := checker.DecodeValue(d.Key, d.Value); ok {
		return id
	}
	return ""
}
