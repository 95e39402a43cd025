package raftstore

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the kdr_raft_* metrics. Gauges and counters are read from raft
// and the store at scrape time; only the Propose latency is recorded as it
// happens.
type metrics struct {
	s *Store

	commitSeconds prometheus.Histogram

	term          *prometheus.Desc
	commitIndex   *prometheus.Desc
	appliedIndex  *prometheus.Desc
	isLeader      *prometheus.Desc
	leaderChanges *prometheus.Desc
	forwarded     *prometheus.Desc
	undecodable   *prometheus.Desc
	refused       *prometheus.Desc
}

func newMetrics(s *Store) *metrics {
	return &metrics{
		s: s,
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kdr_raft_commit_seconds",
			Help:    "Time for a metadata Propose on this node to be committed and applied here, forwarding included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		term:          prometheus.NewDesc("kdr_raft_term", "Current raft term seen by this node.", nil, nil),
		commitIndex:   prometheus.NewDesc("kdr_raft_commit_index", "Highest raft log index known to be committed.", nil, nil),
		appliedIndex:  prometheus.NewDesc("kdr_raft_applied_index", "Raft log index of the last metadata command applied on this node.", nil, nil),
		isLeader:      prometheus.NewDesc("kdr_raft_is_leader", "1 when this node is the raft leader (the metadata controller).", nil, nil),
		leaderChanges: prometheus.NewDesc("kdr_raft_leader_changes_total", "Times this node saw a new raft leader.", nil, nil),
		forwarded:     prometheus.NewDesc("kdr_raft_forwarded_proposals_total", "Proposals this node forwarded to the leader.", nil, nil),
		undecodable:   prometheus.NewDesc("kdr_raft_undecodable_entries_total", "Log entries skipped because this version cannot decode their command.", nil, nil),
		refused:       prometheus.NewDesc("kdr_raft_refused_connections_total", "Connections to this node's raft listener dropped because they came from a node of another cluster (another cluster id).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.commitSeconds.Describe(ch)
	for _, d := range []*prometheus.Desc{m.term, m.commitIndex, m.appliedIndex, m.isLeader, m.leaderChanges, m.forwarded, m.undecodable, m.refused} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.commitSeconds.Collect(ch)
	s := m.s
	leader := 0.0
	if s.IsLeader() {
		leader = 1
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(m.term, float64(s.r.CurrentTerm()))
	gauge(m.commitIndex, float64(s.r.CommitIndex()))
	gauge(m.appliedIndex, float64(s.fsm.appliedIndex()))
	gauge(m.isLeader, leader)
	counter(m.leaderChanges, s.leaderChanges.Load())
	counter(m.forwarded, s.forwarded.Load())
	counter(m.undecodable, s.fsm.undecodable.Load())
	counter(m.refused, s.mux.refused.Load())
}
