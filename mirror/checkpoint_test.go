package mirror

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror/mm2"
)

// TestMirrorGroupOffsetsFollowToTarget: a group's committed source offsets
// reach the same group on the target, translated exactly, so a consumer
// there reads exactly the records the group had not consumed.
func TestMirrorGroupOffsetsFollowToTarget(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	east.createTopic("orders", 3)
	const n, group = 3000, "billing"
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(i % 3),
			Key: []byte(fmt.Sprintf("k-%d", i)), Value: []byte(fmt.Sprintf("v-%d", i))})
	}
	east.produce(recs...)

	// The group is at the head of partition 0, in the middle of 1 and near
	// the start of 2.
	committed := map[int32]int64{0: n / 3, 1: n / 6, 2: 3}
	commit := kadm.Offsets{}
	for p, o := range committed {
		commit.Add(kadm.Offset{Topic: "orders", Partition: p, At: o, LeaderEpoch: -1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := east.adm.CommitAllOffsets(ctx, group, commit); err != nil {
		t.Fatal(err)
	}
	src := east.readAll("orders")
	var want []string
	for p, o := range committed {
		for _, r := range src[p][o:] {
			want = append(want, string(r.Value))
		}
	}
	slices.Sort(want)

	f := testFlow(east, west, "east", "west")
	f.CheckpointInterval = 200 * time.Millisecond
	w := startWorker(t, f)
	waitCount(t, west, "east.orders", n, 30*time.Second)

	// The copy has no gaps and no re-copies, so the exact translation of
	// source offset o is o.
	waitGroupAt(t, west, group, "east.orders", committed, 30*time.Second)
	// The status counts a sync once its commit has returned, which may be
	// just after the offsets are readable on the target.
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		st := w.Status().Checkpoint
		return st.Active && !st.Last.IsZero() && st.GroupOffsetsSynced >= 3, fmt.Sprintf("checkpoint status %+v", st)
	})

	// Checkpoints: the newest per partition decodes and matches.
	latest := map[int32]mm2.Checkpoint{}
	for _, r := range west.readAll(mm2.CheckpointsTopic("east"))[0] {
		cp, err := mm2.DecodeCheckpoint(r.Key, r.Value)
		if err != nil {
			t.Fatalf("checkpoint at %d: %v", r.Offset, err)
		}
		if cp.Group == group {
			latest[cp.Partition] = cp
		}
	}
	for p, o := range committed {
		if cp := latest[p]; cp.Topic != "east.orders" || cp.UpstreamOffset != o || cp.DownstreamOffset != o {
			t.Errorf("partition %d: checkpoint %+v, want east.orders %d → %d", p, cp, o, o)
		}
	}
	if got := metricSum(t, w.reg, "kdr_mirror_checkpoint_age_seconds", map[string]string{"group": group}); got <= 0 {
		t.Errorf("kdr_mirror_checkpoint_age_seconds{group=%q} = %v", group, got)
	}

	// A consumer of the group on the target reads exactly what the group
	// had not consumed on the source.
	got := readGroup(t, west, group, "east.orders", committed)
	if !slices.Equal(got, want) {
		dups := len(got) - len(slices.Compact(slices.Clone(got)))
		t.Fatalf("the group read %d records on the target (%d duplicates), want the %d after its source offsets", len(got), dups, len(want))
	}
}

// TestMirrorHubAndSpoke: three spokes send orders to a hub, the hub sends
// prices to the spokes; counts are exact and nothing comes back.
func TestMirrorHubAndSpoke(t *testing.T) {
	hub := startCluster(t)
	spokes := []*cluster{startCluster(t), startCluster(t), startCluster(t)}
	hub.createTopic("prices", 2)
	const prices, orders = 300, 200
	var ps []*kgo.Record
	for i := range prices {
		ps = append(ps, &kgo.Record{Topic: "prices", Partition: int32(i % 2), Value: []byte(fmt.Sprintf("p-%d", i))})
	}
	hub.produce(ps...)
	var up []*running
	for i, s := range spokes {
		alias := fmt.Sprintf("spoke%d", i+1)
		s.createTopic("orders", 3)
		var os []*kgo.Record
		for j := range orders + i {
			os = append(os, &kgo.Record{Topic: "orders", Partition: int32(j % 3), Value: []byte(fmt.Sprintf("%s-%d", alias, j))})
		}
		s.produce(os...)
		// Spokes → hub with the default topic filter: only cycle detection
		// keeps hub.prices from going back.
		up = append(up, startWorker(t, testFlow(s, hub, alias, "hub")))
		down := testFlow(hub, s, "hub", alias)
		down.Topics = "prices"
		startWorker(t, down)
	}
	for i, s := range spokes {
		alias := fmt.Sprintf("spoke%d", i+1)
		waitCount(t, hub, alias+".orders", int64(orders+i), 30*time.Second)
		waitCount(t, s, "hub.prices", prices, 30*time.Second)
	}
	// Two refreshes of every spoke → hub worker after hub.prices reached
	// its spoke: it saw the topic and did not select it.
	for _, w := range up {
		r0 := w.Status().Refreshes
		kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
			r := w.Status().Refreshes
			return r >= r0+2, fmt.Sprintf("%d refreshes since, want 2", r-r0)
		})
		for _, ts := range w.Status().Topics {
			if ts.Topic != "orders" && ts.Topic != mm2.HeartbeatsTopic {
				t.Errorf("flow %s mirrors %s", w.Status().Flow, ts.Topic)
			}
		}
	}
	// Heartbeats travel every path, as in MM2; orders and prices only
	// their own direction.
	for _, name := range hub.topics() {
		if strings.Contains(name, "prices") && name != "prices" {
			t.Errorf("hub has %s", name)
		}
	}
	for i, s := range spokes {
		alias := fmt.Sprintf("spoke%d", i+1)
		for _, name := range s.topics() {
			if (strings.Contains(name, "orders") && name != "orders") || (strings.Contains(name, "prices") && name != "hub.prices") {
				t.Errorf("%s has %s", alias, name)
			}
		}
		if got := hub.count(alias + ".orders"); got != int64(orders+i) {
			t.Errorf("hub %s.orders: %d records, want %d", alias, got, orders+i)
		}
		if got := s.count("hub.prices"); got != prices {
			t.Errorf("%s hub.prices: %d records, want %d", alias, got, prices)
		}
	}
}
