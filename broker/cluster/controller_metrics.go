package cluster

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// controllerMetrics are the kdr_controller_* series. The state gauges are
// computed from the current State at scrape time and read 0 on an inactive
// controller, so summing them over a cluster counts each problem once.
// A nil *controllerMetrics (no Registerer) records nothing.
type controllerMetrics struct {
	active    prometheus.Gauge
	elections *prometheus.CounterVec
}

func newControllerMetrics(c *Controller, reg prometheus.Registerer) (*controllerMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &controllerMetrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kdr_controller_active",
			Help: "1 on the node whose controller is active (the metadata leader), else 0.",
		}),
		elections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_controller_elections_total",
			Help: "Leader elections made by this controller, by kind: clean (in-sync replica after a fence or unfence), unclean (out-of-sync replica, records may be lost), preferred (leadership moved back to the first replica).",
		}, []string{"kind"}),
	}
	for _, kind := range []string{"clean", "unclean", "preferred"} {
		m.elections.WithLabelValues(kind)
	}
	fromState := func(name, help string, count func(*State) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			c.mu.Lock()
			active := c.active
			c.mu.Unlock()
			if !active {
				return 0
			}
			return float64(count(c.store.State()))
		})
	}
	collectors := []prometheus.Collector{
		m.active, m.elections,
		fromState("kdr_controller_fenced_brokers", "Registered brokers that are fenced (reported by the active controller only).",
			(*State).FencedBrokers),
		fromState("kdr_controller_offline_partitions", "Partitions without a leader (reported by the active controller only).",
			(*State).Offline),
		fromState("kdr_controller_under_replicated_partitions", "Partitions with a replica out of the ISR (reported by the active controller only).",
			(*State).UnderReplicated),
		fromState("kdr_controller_under_min_isr_partitions", "Partitions whose ISR is below min.insync.replicas (reported by the active controller only).",
			func(s *State) int { return s.UnderMinISR(c.cfg.DefaultMinInsyncReplicas) }),
	}
	for _, col := range collectors {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("cluster: registering controller metrics: %w", err)
		}
	}
	return m, nil
}

func (m *controllerMetrics) setActive(active bool) {
	if m == nil {
		return
	}
	v := 0.0
	if active {
		v = 1
	}
	m.active.Set(v)
}

func (m *controllerMetrics) election(kind string) {
	if m != nil {
		m.elections.WithLabelValues(kind).Inc()
	}
}
