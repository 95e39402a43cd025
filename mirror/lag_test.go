package mirror

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMirrorLagSecondsWithNothingRead: while records wait on the source and
// none of them has been read (the fetch held back by the byte cap, or
// failing), the lag in seconds is bounded by the time since the copy last
// had everything, or, before it first did, by the time since the worker got
// the partition. It kept its last value, often the 0 of the caught-up
// moment, so the RPO panel and the lag alert showed nothing while a backlog
// aged (QA: 1,005 records behind, 0 s).
func TestMirrorLagSecondsWithNothingRead(t *testing.T) {
	f := DefaultFlow()
	f.SourceAlias, f.TargetAlias = "east", "west"
	f.Source.Brokers, f.Target.Brokers = []string{"127.0.0.1:1"}, []string{"127.0.0.1:2"}
	reg := prometheus.NewRegistry()
	w, err := New(f, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ps := &partState{topic: "orders", partition: 0, next: 50, hwm: 50, assignedAt: now.Add(-time.Minute)}
	seconds := func() float64 {
		return metricSum(t, reg, "kdr_mirror_lag_seconds", map[string]string{"topic": "orders"})
	}
	w.updateLag(ps, now.Add(-20*time.Second)) // caught up 20 s ago
	if s := seconds(); s != 0 {
		t.Fatalf("caught up: lag %v s", s)
	}
	ps.hwm = 80 // 30 records written since, none read
	w.updateLag(ps, now)
	if s := seconds(); s != 20 {
		t.Fatalf("30 records behind, none read, caught up 20 s ago: lag %v s, want 20", s)
	}
	fresh := &partState{topic: "orders", partition: 1, next: 0, hwm: 10, assignedAt: now.Add(-7 * time.Second)}
	w.updateLag(fresh, now)
	if s := metricSum(t, reg, "kdr_mirror_lag_seconds", map[string]string{"partition": "1"}); s != 7 {
		t.Fatalf("behind since its assignment 7 s ago, nothing read: lag %v s, want 7", s)
	}
}
