package group

import "github.com/prometheus/client_golang/prometheus"

// metrics are the coordinator's metrics; group counts are read at scrape
// time.
type metrics struct {
	c          *Coordinator
	rebalances prometheus.Counter
	commits    prometheus.Counter
	groups     *prometheus.Desc
	members    *prometheus.Desc
}

func newMetrics(c *Coordinator) *metrics {
	return &metrics{
		c: c,
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kdr_group_rebalances_total", Help: "Completed join phases (generations started) across all groups.",
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kdr_group_offset_commits_total", Help: "Partition offsets committed and stored.",
		}),
		groups:  prometheus.NewDesc("kdr_groups", "Groups owned by this coordinator, by state.", []string{"state"}, nil),
		members: prometheus.NewDesc("kdr_group_members", "Members of groups owned by this coordinator.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.rebalances.Desc()
	ch <- m.commits.Desc()
	ch <- m.groups
	ch <- m.members
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ch <- m.rebalances
	ch <- m.commits
	byState := map[State]int{Empty: 0, PreparingRebalance: 0, CompletingRebalance: 0, Stable: 0}
	members := 0
	for _, g := range m.c.allGroups() {
		g.mu.Lock()
		if g.state != Dead {
			byState[g.state]++
		}
		members += len(g.members)
		g.mu.Unlock()
	}
	for s, n := range byState {
		ch <- prometheus.MustNewConstMetric(m.groups, prometheus.GaugeValue, float64(n), string(s))
	}
	ch <- prometheus.MustNewConstMetric(m.members, prometheus.GaugeValue, float64(members))
}
