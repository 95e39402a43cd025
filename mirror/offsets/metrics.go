package offsets

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Error stages, the values of the stage label of
// kdr_mirror_checkpoint_errors_total.
const (
	StageTopic       = "topic"        // creating the checkpoints topic
	StageListGroups  = "list_groups"  // listing source groups
	StageFetch       = "fetch"        // fetching a group's committed offsets
	StageProduce     = "produce"      // writing checkpoints to the target
	StageGroupCommit = "group_commit" // describing, fetching or committing a target group
)

// Reasons a group's offsets were not committed on the target, the values of
// the reason label of kdr_mirror_group_offsets_skipped_total.
const (
	SkipActive = "active"       // the group has members on the target
	SkipAhead  = "target_ahead" // the target group is already past the translation (it consumed there)
)

// checkpointMetrics are a Checkpointer's series. Label flow is
// "source->target", as in package mirror.
type checkpointMetrics struct {
	checkpoints prometheus.Counter
	synced      prometheus.Counter
	failures    map[Status]prometheus.Counter
	skipped     *prometheus.CounterVec
	errors      *prometheus.CounterVec
	age         *ageCollector
}

func newCheckpointMetrics(reg prometheus.Registerer, flow string) (*checkpointMetrics, error) {
	m := &checkpointMetrics{
		checkpoints: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_mirror_checkpoints_total", Help: "Checkpoint records written to the target's <source>.checkpoints.internal topic.",
		}, []string{"flow"})).WithLabelValues(flow),
		synced: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_mirror_group_offsets_synced_total", Help: "Partition offsets committed to consumer groups on the target.",
		}, []string{"flow"})).WithLabelValues(flow),
		failures: map[Status]prometheus.Counter{},
		skipped: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_mirror_group_offsets_skipped_total", Help: "Partition offsets not committed to a target group, by reason: active (the group has members there) or target_ahead (the target group is already past the translation).",
		}, []string{"flow", "reason"})),
		errors: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_mirror_checkpoint_errors_total", Help: "Checkpoint cycle errors by stage: topic, list_groups, fetch, produce, group_commit.",
		}, []string{"flow", "stage"})),
		age: &ageCollector{
			desc: prometheus.NewDesc("kdr_mirror_checkpoint_age_seconds",
				"Seconds since every mirrored partition of the group was last translated and checkpointed.",
				[]string{"group"}, prometheus.Labels{"flow": flow}),
			last: map[string]time.Time{},
		},
	}
	failures := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kdr_mirror_translation_failures_total", Help: "Committed offsets that could not be translated exactly, per checkpoint cycle, by reason: no_syncs, before_history, not_mirrored, missing_syncs.",
	}, []string{"flow", "reason"}))
	for _, s := range Statuses()[1:] {
		m.failures[s] = failures.WithLabelValues(flow, s.String())
	}
	for _, r := range []string{SkipActive, SkipAhead} {
		m.skipped.WithLabelValues(flow, r)
	}
	for _, s := range []string{StageTopic, StageListGroups, StageFetch, StageProduce, StageGroupCommit} {
		m.errors.WithLabelValues(flow, s)
	}
	m.skipped, m.errors = curry(m.skipped, flow), curry(m.errors, flow)
	if reg != nil {
		if err := reg.Register(m.age); err != nil {
			return nil, errors.New("offsets: a checkpointer for flow " + flow + " is already registered: " + err.Error())
		}
	}
	return m, nil
}

func curry(v *prometheus.CounterVec, flow string) *prometheus.CounterVec {
	return v.MustCurryWith(prometheus.Labels{"flow": flow})
}

// ageCollector reports each group's checkpoint age at scrape time, so that
// the age keeps growing if the checkpointer stalls.
type ageCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	last map[string]time.Time
}

func (a *ageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- a.desc }

func (a *ageCollector) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for g, t := range a.last {
		ch <- prometheus.MustNewConstMetric(a.desc, prometheus.GaugeValue, now.Sub(t).Seconds(), g)
	}
}

// done records that group's checkpoints were current at t.
func (a *ageCollector) done(group string, t time.Time) {
	a.mu.Lock()
	a.last[group] = t
	a.mu.Unlock()
}

// seen starts group's age at t if it has none: a group whose offsets do
// not translate ages from the first time they were read, so that the
// stale-checkpoints alert fires for a group never checkpointed too.
func (a *ageCollector) seen(group string, t time.Time) {
	a.mu.Lock()
	if _, ok := a.last[group]; !ok {
		a.last[group] = t
	}
	a.mu.Unlock()
}

// keep forgets groups not in groups (deleted, or no longer selected).
func (a *ageCollector) keep(groups map[string]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for g := range a.last {
		if !groups[g] {
			delete(a.last, g)
		}
	}
}

// storeMetrics are a SyncStore's series.
type storeMetrics struct {
	read, invalid prometheus.Counter
}

func newStoreMetrics(reg prometheus.Registerer, flow string) storeMetrics {
	return storeMetrics{
		read: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_mirror_offset_syncs_read_total", Help: "Offset syncs read back from the offset-syncs topic for translation.",
		}, []string{"flow"})).WithLabelValues(flow),
		invalid: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_mirror_offset_syncs_invalid_total", Help: "Records of the offset-syncs topic that are not valid OffsetSyncs and were skipped.",
		}, []string{"flow"})).WithLabelValues(flow),
	}
}

// register registers c, or returns the collector already registered with
// the same description, so that several flows can share one registry. A nil
// registry leaves c unregistered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // two different metrics under one name: a programming error
	}
	return c
}
