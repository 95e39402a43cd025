package mirror

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Error kinds, the values of the kind label of kdr_mirror_errors_total and
// the keys of Status.Errors.
const (
	KindSource       = "source"        // consuming from the source failed (unreachable, group errors)
	KindTarget       = "target"        // the target did not acknowledge a copy; it is retried
	KindTooLarge     = "too_large"     // a record exceeded the target topic's max.message.bytes and was skipped
	KindTopic        = "topic"         // listing, creating or growing topics failed
	KindConfig       = "config"        // syncing topic configs failed
	KindOffsetSync   = "offset_sync"   // writing offset syncs failed
	KindCommit       = "commit"        // committing source positions failed
	KindHeartbeat    = "heartbeat"     // writing a heartbeat failed
	KindTopicDeleted = "topic_deleted" // a mirrored topic disappeared from the source
	KindCheckpoint   = "checkpoint"    // a checkpoint cycle (translate, write checkpoints, sync group offsets) failed
	KindACL          = "acl"           // reading or creating topic ACLs failed (not: the cluster has no ACLs)
)

// metrics are the flow's Prometheus series. Labels: flow ("east->west"),
// topic (the source topic), partition. The latency histogram is per topic
// only, to keep the series count down.
type metrics struct {
	flow      string
	records   *prometheus.CounterVec
	forwarded *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	skipped   *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	// recentLatency is latency over a sliding minute, per flow.
	recentLatency *prometheus.SummaryVec
	recordAge     *prometheus.GaugeVec
	lagRecords    *prometheus.GaugeVec
	lagSeconds    *prometheus.GaugeVec
	offsetSyncs   *prometheus.CounterVec
	commits       *prometheus.CounterVec
	errors        *prometheus.CounterVec
	assigned      *prometheus.GaugeVec
	flowLag       *prometheus.GaugeVec
	fetchFailing  prometheus.Gauge
	heartbeats    *prometheus.CounterVec
	deleted       *prometheus.CounterVec
	aclsCreated   *prometheus.CounterVec
	// throttled is the time waited under Flow.MaxBytesPerSecond.
	throttled prometheus.Counter
	// fetch and cycle split a copy's time between the two sides: fetch is
	// the source's, cycle the target's. depth is how far forwarding cycles
	// overlap: a batch fetched while the target answers goes at once.
	fetch prometheus.Observer
	cycle prometheus.Observer
	depth prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, flow string) *metrics {
	tp := []string{"flow", "topic", "partition"}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
	}
	m := &metrics{
		flow:    flow,
		records: counter("kdr_mirror_records_total", "Records copied to the target and acknowledged by it.", tp...),
		forwarded: counter("kdr_mirror_forwarded_batches_total", "Record batches forwarded to the target as the source stored them (ForwardBatches); their records count in kdr_mirror_records_total too.",
			"flow", "topic"),
		bytes: counter("kdr_mirror_bytes_total", "Bytes of the records copied: key, value and headers of a record copied alone, a forwarded batch's records as stored (compressed if the source compressed them).", tp...),
		skipped: counter("kdr_mirror_records_skipped_total", "Source records not copied, by reason: loop (provenance says the target had it) or too_large.",
			"flow", "topic", "reason"),
		latency: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kdr_mirror_replication_latency_seconds",
			Help:    "Time from a record's source timestamp (create or append time) to the target's acknowledgement of its copy; one observation per batch copied, of its first record, the batch's oldest (so _count counts batches, not records). Heartbeats topics are not timed.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18), // 1 ms to ~2 min
		}, []string{"flow", "topic"})),
		// The histogram holds everything since the worker started, so a
		// start-up catch-up dominates its p99 for many minutes; kdr status
		// shows this window instead.
		recentLatency: register(reg, prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name:       "kdr_mirror_replication_latency_recent_seconds",
			Help:       "kdr_mirror_replication_latency_seconds over the last minute only (six 10 s age buckets), as its median and p99; NaN when nothing was copied in that minute.",
			Objectives: map[float64]float64{0.5: 0.01, 0.99: 0.001},
			MaxAge:     time.Minute,
			AgeBuckets: 6,
		}, []string{"flow"})),
		recordAge:   gauge("kdr_mirror_record_age_seconds", "Age of the last record copied, at its acknowledgement.", tp...),
		lagRecords:  gauge("kdr_mirror_lag_records", "Source high watermark minus the next offset to copy.", tp...),
		lagSeconds:  gauge("kdr_mirror_lag_seconds", "Age of the oldest source record not yet copied; 0 when caught up. While none of those records has been read (fetching held back or failing), the time since the copy last had everything, an upper bound, or before it first did, the time since the worker got the partition, a lower bound.", tp...),
		offsetSyncs: counter("kdr_mirror_offset_syncs_total", "Offset syncs written to the flow's mm2-offset-syncs topic (on the source, or the target).", tp...),
		commits:     counter("kdr_mirror_commits_total", "Commits of the worker's source positions to its group, each after the offset syncs it covers (at most one per CommitInterval).", "flow"),
		errors: counter("kdr_mirror_errors_total", "Errors by kind: source, target, too_large, topic, config, offset_sync, commit, heartbeat, topic_deleted, checkpoint, acl.",
			"flow", "kind"),
		assigned:    gauge("kdr_mirror_assigned_partitions", "Source partitions this worker copies.", "flow"),
		flowLag:     gauge("kdr_mirror_flow_lag_records", "Records on the source the flow's workers have not copied, every mirrored partition whoever owns it, from the workers group's committed positions (every refresh interval; behind the copy by up to the commit interval). Unlike the sum of kdr_mirror_lag_records it counts partitions no worker owns, as while the group waits for a dead worker's session to expire. Each worker reports it: use max by (flow).", "flow"),
		heartbeats:  counter("kdr_mirror_heartbeats_total", "Heartbeats written to the target's heartbeats topic.", "flow"),
		deleted:     counter("kdr_mirror_topics_deleted_total", "Remote topics deleted on the target because their source topic was deleted (SyncTopicDeletions).", "flow"),
		aclsCreated: counter("kdr_mirror_acls_created_total", "ACLs created on the target for remote topics (SyncTopicACLs).", "flow"),
	}
	m.fetchFailing = gauge("kdr_mirror_fetch_failing_partitions",
		"Owned source partitions whose fetches have failed for 5 s or more (a source broker down while others serve); forwarding only, where the worker fetches for itself.",
		"flow").WithLabelValues(flow)
	m.throttled = counter("kdr_mirror_throttle_seconds_total",
		"Time the worker waited before reading more from the source, to stay under --max-bytes-per-second.", "flow").WithLabelValues(flow)
	m.fetch = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kdr_mirror_fetch_seconds",
		Help:    "Time a fetch from a source broker took, from sending it to its answer (it may wait up to 500 ms for records, 5 ms while they stream); forwarding only, where the worker fetches for itself.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms to ~16 s
	}, []string{"flow"})).WithLabelValues(flow)
	m.cycle = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kdr_mirror_cycle_seconds",
		Help:    "Time a copy cycle took from sending its copies to the target's last acknowledgement of them. Forwarding, two cycles overlap; copying records, the next cycle waits for this one.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms to ~16 s
	}, []string{"flow"})).WithLabelValues(flow)
	m.depth = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kdr_mirror_forward_inflight_cycles",
		Help:    "Forwarding cycles waiting for the target when one was sent, itself included (at most 2): each cycle is one Produce request per target leader with the next batch of each partition.",
		Buckets: prometheus.LinearBuckets(1, 1, 2), // 1 or 2
	}, []string{"flow"})).WithLabelValues(flow)
	// Every series without a topic exists from the start, so rate() and
	// alerts see zeros.
	for _, k := range []string{KindSource, KindTarget, KindTooLarge, KindTopic, KindConfig, KindOffsetSync, KindCommit, KindHeartbeat, KindTopicDeleted, KindCheckpoint, KindACL} {
		m.errors.WithLabelValues(flow, k)
	}
	m.assigned.WithLabelValues(flow).Set(0)
	m.recentLatency.WithLabelValues(flow)
	m.heartbeats.WithLabelValues(flow)
	m.commits.WithLabelValues(flow)
	m.deleted.WithLabelValues(flow)
	m.aclsCreated.WithLabelValues(flow)
	return m
}

// register registers c, or returns the collector already registered under
// the same description, so that several flows can share one registry.
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
		panic(err) // a programming error: two different metrics with one name
	}
	return c
}

func partLabel(p int32) string { return strconv.Itoa(int(p)) }

// forget drops the gauges of a partition this worker no longer owns, so that
// a worker that took it over is the only one reporting its lag.
func (m *metrics) forget(topic string, partition int32) {
	lv := []string{m.flow, topic, partLabel(partition)}
	m.recordAge.DeleteLabelValues(lv...)
	m.lagRecords.DeleteLabelValues(lv...)
	m.lagSeconds.DeleteLabelValues(lv...)
}
