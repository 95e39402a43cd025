package mirror

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
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

// TestMirrorFlowLagCountsUnownedPartitions: two workers share a flow of one
// partition, so one owns nothing. Capped, the owner falls behind a backlog;
// the idle worker's own lag gauges say nothing of it, its flow lag must.
// Without it, after every worker of a flow died, the restarted ones
// reported no lag at all until the group gave them partitions (QA: 0 while
// 29,888 records waited).
func TestMirrorFlowLagCountsUnownedPartitions(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	east.createTopic("orders", 1)
	f := testFlow(east, west, "east", "west")
	f.MaxBytesPerSecond = 4 << 10
	a, b := startWorker(t, f), startWorker(t, f)
	east.produce(seqRecords("orders", 1, 0, 1)...)
	waitCount(t, west, "east.orders", 1, 30*time.Second)
	var recs []*kgo.Record
	for _, r := range seqRecords("orders", 1, 1, 2000) {
		pad := make([]byte, 1000)
		rand.Read(pad)
		r.Value = append(r.Value, pad...)
		recs = append(recs, r)
	}
	for i := 0; i < len(recs); i += 100 { // 2 MiB: past one fetch, and the next waits for the cap
		east.produce(recs[i : i+100]...)
	}
	assigned := func(w *running) float64 {
		return metricSum(t, w.reg, "kdr_mirror_assigned_partitions", map[string]string{"flow": "east->west"})
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		idle := a
		if assigned(a) == 1 {
			idle = b
		}
		own := metricSum(t, idle.reg, "kdr_mirror_lag_records", nil)
		flow := metricSum(t, idle.reg, "kdr_mirror_flow_lag_records", map[string]string{"flow": "east->west"})
		return assigned(idle) == 0 && own == 0 && flow >= 100,
			fmt.Sprintf("idle worker: %v partitions, own lag %v, flow lag %v records", assigned(idle), own, flow)
	})
}

// TestMirrorHeartbeatsNotTimed: a source's heartbeats history copied by a
// flow that starts (here ten minutes of it, as a reversed flow finds after a
// switchover) is no replication latency; user records are timed as before.
// Counted, those copies set the flow's p99 to minutes and tripped
// KdrReplicationLatencyHigh after every switchover.
func TestMirrorHeartbeatsNotTimed(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	east.createTopic("heartbeats", 1)
	east.createTopic("orders", 1)
	old := time.Now().Add(-10 * time.Minute)
	var beats []*kgo.Record
	for i := range 5 {
		beats = append(beats, &kgo.Record{Topic: "heartbeats", Value: []byte(fmt.Sprint(i)), Timestamp: old.Add(time.Duration(i) * time.Second)})
	}
	east.produce(beats...)
	east.produce(seqRecords("orders", 1, 0, 10)...)
	f := testFlow(east, west, "east", "west")
	f.HeartbeatInterval = -1 // only the source's heartbeats
	w := startWorker(t, f)
	waitCount(t, west, "east.heartbeats", 5, 30*time.Second)
	waitCount(t, west, "east.orders", 10, 30*time.Second)
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		n := metricSum(t, w.reg, "kdr_mirror_replication_latency_seconds", map[string]string{"topic": "orders"})
		return n > 0, fmt.Sprintf("%v orders batches timed", n)
	})
	if n := metricSum(t, w.reg, "kdr_mirror_replication_latency_seconds", map[string]string{"topic": "heartbeats"}); n != 0 {
		t.Fatalf("%v heartbeats batches timed as replication latency", n)
	}
	all := metricSum(t, w.reg, "kdr_mirror_replication_latency_seconds", nil)
	if within := bucketSum(t, w.reg, "kdr_mirror_replication_latency_seconds", nil, 131.072); within != all {
		t.Fatalf("batches over 2 min timed: %v of %v", all-within, all)
	}
}
