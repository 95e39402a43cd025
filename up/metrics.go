package up

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/internal/obs"
	"github.com/kdr-io/kdr/topology"
)

// kdr up's /metrics exports the failover state document, which the
// short-lived kdr failover commands cannot be scraped for:
//
//	kdr_failover_epoch{topology}
//	kdr_failover_active_cluster{topology,cluster}                1 for the active cluster, 0 for the others
//	kdr_failover_operation_in_progress{topology,kind,step}       1 while an operation is at that step
//	kdr_failover_operations_total{topology,kind,result}          finished operations in the history (succeeded|failed|aborted)
//	kdr_failover_last_operation_duration_seconds{topology,kind}  start to finish of the last successful one
//	kdr_failover_fenced{topology,cluster}                        1 for clusters the state keeps fenced
//	kdr_up_flow_expected{topology,flow}                          1 for flows kdr up runs, 0 for a direction it stops on purpose
//	kdr_drill_last_{lost,duplicated,reordered}_records{scenario}, kdr_drill_last_rto_seconds{scenario},
//	kdr_drill_last_rpo_records{scenario}, kdr_drill_last_rpo_seconds{scenario},
//	kdr_drill_last_timestamp_seconds{scenario}                   from State.LastDrill
//
// Nothing is exported until the state has been read once.

var (
	descEpoch     = prometheus.NewDesc("kdr_failover_epoch", "Failover epoch of the topology (bumped on every promotion).", []string{"topology"}, nil)
	descActive    = prometheus.NewDesc("kdr_failover_active_cluster", "1 for the active cluster of the topology, 0 for the others.", []string{"topology", "cluster"}, nil)
	descOperation = prometheus.NewDesc("kdr_failover_operation_in_progress", "1 while a failover operation is at this step.", []string{"topology", "kind", "step"}, nil)
	descOpsTotal  = prometheus.NewDesc("kdr_failover_operations_total", "Failover operations in the state's history, by result.", []string{"topology", "kind", "result"}, nil)
	descDuration  = prometheus.NewDesc("kdr_failover_last_operation_duration_seconds", "Duration of the last successful operation of the kind.", []string{"topology", "kind"}, nil)
	descFenced    = prometheus.NewDesc("kdr_failover_fenced", "1 for clusters the failover state keeps write-fenced.", []string{"topology", "cluster"}, nil)
	// KdrMirrorDown (no_workers) joins on it: a flow whose workers kdr up
	// stopped because of the failover state must not page anyone.
	descFlowExpected = prometheus.NewDesc("kdr_up_flow_expected",
		"1 for a flow kdr up runs mirror workers for, 0 for a direction of the failover pattern's flow it keeps stopped because of the failover state.",
		[]string{"topology", "flow"}, nil)

	drillMetrics = []struct {
		key  string
		desc *prometheus.Desc
	}{
		{"lost", prometheus.NewDesc("kdr_drill_last_lost_records", "Acknowledged records lost in the last drill.", []string{"scenario"}, nil)},
		{"duplicated", prometheus.NewDesc("kdr_drill_last_duplicated_records", "Records delivered twice in the last drill.", []string{"scenario"}, nil)},
		{"reordered", prometheus.NewDesc("kdr_drill_last_reordered_records", "Records out of order in the last drill.", []string{"scenario"}, nil)},
		{"rto_seconds", prometheus.NewDesc("kdr_drill_last_rto_seconds", "Recovery time of the last drill.", []string{"scenario"}, nil)},
		{"rpo_records", prometheus.NewDesc("kdr_drill_last_rpo_records", "Recovery point of the last drill, in records.", []string{"scenario"}, nil)},
		{"rpo_seconds", prometheus.NewDesc("kdr_drill_last_rpo_seconds", "Recovery point of the last drill, in seconds.", []string{"scenario"}, nil)},
		{"finished_at", prometheus.NewDesc("kdr_drill_last_timestamp_seconds", "When the last drill finished (Unix seconds).", []string{"scenario"}, nil)},
	}
)

// NewFailoverCollector is the collector of kdr up's /metrics: the failover
// state and the last drill of topology t (each of its clusters gets its
// kdr_failover_active_cluster and kdr_failover_fenced series), and which of
// its flows kdr up runs under that state. state returns the state and
// whether it is known; nothing is exported while it is not. Its Active
// must already name the active cluster (kdr up resolves the pattern's
// default, the primary, before).
func NewFailoverCollector(t *topology.Topology, state func() (store.State, bool)) prometheus.Collector {
	return failoverCollector{topo: t, state: state}
}

// failoverCollector exports the state kdr up follows.
type failoverCollector struct {
	topo  *topology.Topology
	state func() (store.State, bool)
}

func (c failoverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEpoch, descActive, descOperation, descOpsTotal, descDuration, descFenced, descFlowExpected} {
		ch <- d
	}
	for _, m := range drillMetrics {
		ch <- m.desc
	}
}

func (c failoverCollector) Collect(ch chan<- prometheus.Metric) {
	st, ok := c.state()
	if !ok {
		return
	}
	topo := c.topo.Metadata.Name
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descEpoch, float64(st.Epoch), topo)
	for _, cl := range c.topo.Clusters {
		gauge(descActive, b2f(cl.Name == st.Active), topo, cl.Name)
		gauge(descFenced, b2f(slices.Contains(st.Fenced, cl.Name)), topo, cl.Name)
	}
	// The flows as kdr up runs them (failover.CurrentFlows, as its plan
	// and reconcile do). The pattern's flow gets both directions, so that
	// the one stopped after a failover is 0 rather than absent: absent
	// means kdr up does not say, and the alert keeps firing.
	for _, f := range failover.CurrentFlows(c.topo, st) {
		fl := f.Spec.Flow
		if !f.Follows {
			gauge(descFlowExpected, 1, topo, fl.Name())
			continue
		}
		gauge(descFlowExpected, b2f(f.Running), topo, fl.Name())
		gauge(descFlowExpected, 0, topo, fl.TargetAlias+"->"+fl.SourceAlias)
	}
	if op := st.Operation; op != nil {
		gauge(descOperation, 1, topo, op.Kind, op.Step)
	}
	counts, durations := historyStats(st.History)
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(descOpsTotal, prometheus.CounterValue, float64(n), topo, k[0], k[1])
	}
	for kind, d := range durations {
		gauge(descDuration, d.Seconds(), topo, kind)
	}
	if len(st.LastDrill) > 0 {
		var drill map[string]any
		if json.Unmarshal(st.LastDrill, &drill) == nil {
			scenario, _ := drill["scenario"].(string)
			for _, m := range drillMetrics {
				if v, ok := drillValue(drill[m.key]); ok {
					gauge(m.desc, v, scenario)
				}
			}
		}
	}
}

// failoverState is the state the metrics export: the one kdr up follows,
// with Active resolved to the pattern's active cluster.
func (r *runner) failoverState() (store.State, bool) {
	st, ok := r.view.get()
	if !ok || !r.hasPattern {
		return store.State{}, false
	}
	st.Active = failover.ActiveOf(r.pattern, st)
	return st, true
}

// historyStats counts finished operations per kind and result, and the
// duration of the last successful one per kind (from its "started" event).
// An operation dropped by kdr failover abort ends with a
// failover.StepAborted event.
func historyStats(h []store.Event) (map[[2]string]int, map[string]time.Duration) {
	counts := map[[2]string]int{}
	durations := map[string]time.Duration{}
	started := map[string]time.Time{}
	for _, e := range h {
		switch e.Step {
		case failover.StepStarted:
			started[e.Kind] = e.At
		case failover.StepDone:
			counts[[2]string{e.Kind, "succeeded"}]++
			if s, ok := started[e.Kind]; ok {
				durations[e.Kind] = e.At.Sub(s)
			}
		case failover.StepFailed:
			counts[[2]string{e.Kind, "failed"}]++
		case failover.StepAborted:
			counts[[2]string{e.Kind, "aborted"}]++
		}
	}
	return counts, durations
}

// drillValue reads a number, or a time (as Unix seconds).
func drillValue(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return float64(t.UnixNano()) / 1e9, true
		}
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return f, true
		}
	}
	return 0, false
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// serveMetrics starts the metrics listener; a busy address is logged, not
// fatal: the data plane does not need it.
func (r *runner) serveMetrics() {
	if r.opts.MetricsListen == "" {
		return
	}
	reg := obs.NewRegistry()
	reg.MustRegister(NewFailoverCollector(r.topo, r.failoverState))
	srv, err := obs.ServeHTTP(r.opts.MetricsListen, reg, func() error {
		if r.hasPattern && r.store != nil {
			if _, ok := r.view.get(); !ok {
				return errors.New("failover state not read yet")
			}
		}
		return nil
	}, r.logger)
	if err != nil {
		r.logger.Warn("kdr up serves no metrics (use --metrics-listen to pick another address)", "err", err)
		return
	}
	r.metrics = srv
	r.mu.Lock()
	r.endpoints.MetricsURL = "http://" + srv.Addr().String() + "/metrics"
	r.mu.Unlock()
}
