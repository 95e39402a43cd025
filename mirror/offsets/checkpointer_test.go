package offsets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror/mm2"
	"github.com/kdr-io/kdr/mirror/naming"
)

// mirrorFixture is a source and a target broker with orders (2 partitions,
// 300 records each) partly mirrored to east.orders, with offset syncs:
//
//	orders/0: records below 40 deleted (retention); 40..299 copied, the
//	          copier restarted at 170
//	orders/1: every sixth record and 100..129 not copied (as if compacted
//	          away); copied up to 279 only, so the mirror lags
type mirrorFixture struct {
	src, dst cluster
	c        *copier
	store    *SyncStore
}

func newMirrorFixture(t *testing.T) *mirrorFixture {
	src, dst := startCluster(t), startCluster(t)
	syncTopic := mm2.OffsetSyncsTopic("west")
	if err := EnsureSyncTopic(ctxT(t), src.adm, syncTopic, -1, -1); err != nil {
		t.Fatal(err)
	}
	createTopic(t, src, "orders", 2)
	createTopic(t, dst, "east.orders", 2)
	fill(t, src, "orders", 2, 300)
	if _, err := src.adm.DeleteRecords(ctxT(t), kadm.Offsets{"orders": {0: {Topic: "orders", Partition: 0, At: 40}}}); err != nil {
		t.Fatal(err)
	}
	c := newCopier(t, src, dst, "orders", "east.orders", syncTopic)
	c.copy(0, 0, 170, 9, nil)
	c.restart(0)
	c.copy(0, 170, 300, 16, nil)
	c.copy(1, 0, 280, 10, func(o int64) bool { return o%6 != 4 && (o < 100 || o >= 130) })
	if c.pairs[0][0].Upstream != 40 {
		t.Fatalf("copy of orders/0 starts at %d, want the log start 40", c.pairs[0][0].Upstream)
	}
	return &mirrorFixture{src: src, dst: dst, c: c, store: runStore(t, src, nil)}
}

func (f *mirrorFixture) commit(t *testing.T, c cluster, group string, offsets map[int32]int64, topic string) {
	t.Helper()
	os := kadm.Offsets{}
	for p, at := range offsets {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1, Metadata: "m-" + group})
	}
	if err := c.adm.CommitAllOffsets(ctxT(t), group, os); err != nil {
		t.Fatalf("committing %s: %v", group, err)
	}
}

func (f *mirrorFixture) targetOffsets(t *testing.T, group string) map[int32]int64 {
	t.Helper()
	offs, err := f.dst.adm.FetchOffsets(ctxT(t), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == "east.orders" && o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

func newTestCheckpointer(t *testing.T, f *mirrorFixture, reg prometheus.Registerer, interval time.Duration) *Checkpointer {
	t.Helper()
	cp, err := NewCheckpointer(CheckpointerConfig{
		SourceAlias: "east", TargetAlias: "west", Policy: naming.Prefix{}, Groups: naming.DefaultGroupFilter(),
		Source: f.src.cl, Target: f.dst.cl, Store: f.store, Interval: interval, SyncGroupOffsets: true,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Close)
	return cp
}

// readCheckpoints reads the whole checkpoints topic on the target, checks
// that every record decodes and re-encodes to the same bytes, and returns
// the newest checkpoint per key.
func readCheckpoints(t *testing.T, f *mirrorFixture) map[cpKey]mm2.Checkpoint {
	t.Helper()
	topic := mm2.CheckpointsTopic("east")
	ends, err := f.dst.adm.ListEndOffsets(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	out := map[cpKey]mm2.Checkpoint{}
	for _, r := range readRange(t, f.dst, topic, 0, 0, end.Offset) {
		cp, err := mm2.DecodeCheckpoint(r.Key, r.Value)
		if err != nil {
			t.Fatalf("checkpoint at %d: %v", r.Offset, err)
		}
		if !bytes.Equal(cp.Key(), r.Key) || !bytes.Equal(cp.Value(), r.Value) {
			t.Fatalf("checkpoint at %d does not re-encode to its bytes: % x / % x", r.Offset, r.Key, r.Value)
		}
		out[keyOf(cp)] = cp
	}
	return out
}

// consumeFrom joins group on the target and reads east.orders from the
// group's committed offsets until it has want[p] records of every
// partition, then a little longer to catch extras.
func consumeFrom(t *testing.T, f *mirrorFixture, group string, want map[int32][]string) {
	t.Helper()
	cl := newClient(t, f.dst.addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics("east.orders"), kgo.DisableAutoCommit())
	defer cl.Close()
	got := map[int32][]string{}
	done := func() bool {
		for p, w := range want {
			if len(got[p]) < len(w) {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(ctxT(t), 30*time.Second)
	defer cancel()
	var settle <-chan time.Time
	for {
		if done() && settle == nil {
			settle = time.After(300 * time.Millisecond)
		}
		pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		fs := cl.PollFetches(pctx)
		pcancel()
		for _, r := range fs.Records() {
			got[r.Partition] = append(got[r.Partition], string(r.Value))
		}
		select {
		case <-settle:
			for p, w := range want {
				if !slices.Equal(got[p], w) {
					t.Fatalf("group %s read from east.orders/%d:\n%v\nwant every remaining record once:\n%v", group, p, got[p], w)
				}
			}
			return
		default:
		}
		if ctx.Err() != nil {
			t.Fatalf("group %s read %v, want %v", group, got, want)
		}
	}
}

func TestMirrorOffsetsCheckpointer(t *testing.T) {
	f := newMirrorFixture(t)
	groups := map[string]map[int32]int64{
		"app-head":           {0: 300, 1: 280}, // both heads: the next record to be copied
		"app-middle":         {0: 170, 1: 64},  // the restart point; a record never copied (the next one is)
		"app-far":            {0: 41, 1: 1},    // far behind
		"app-gap":            {0: 100, 1: 100}, // p1: the first of 30 records never copied
		"app-ahead":          {0: 150, 1: 290}, // p1 is ahead of the mirror
		"app-old":            {0: 10, 1: 50},   // p0 below the log start and the first sync
		"app-active":         {0: 200, 1: 200}, // has a member on the target
		"app-target":         {0: 120, 1: 120}, // p0 already further on the target
		"console-consumer-7": {0: 60},          // excluded by MM2's default group filter
	}
	for g, offs := range groups {
		f.commit(t, f.src, g, offs, "orders")
	}
	f.commit(t, f.dst, "app-target", map[int32]int64{0: 250}, "east.orders")
	active := newClient(t, f.dst.addr, kgo.ConsumerGroup("app-active"), kgo.ConsumeTopics("east.orders"), kgo.DisableAutoCommit())
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		active.PollRecords(nil, 0)
		dg, err := f.dst.adm.DescribeGroups(ctxT(t), "app-active")
		return err == nil && dg["app-active"].State == "Stable", fmt.Sprintf("app-active on the target: %v %v", dg["app-active"].State, err)
	})

	reg := prometheus.NewRegistry()
	cp := newTestCheckpointer(t, f, reg, 0)
	sum, err := cp.RunOnce(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first cycle: %+v", sum)

	// Every translatable offset has a checkpoint, exactly translated.
	cps := readCheckpoints(t, f)
	wantCPs := 0
	for g, offs := range groups {
		for p, u := range offs {
			want, ok := f.c.want(p, u)
			got, has := cps[cpKey{g, "east.orders", p}]
			if g == "console-consumer-7" || !ok {
				if has {
					t.Errorf("%s/%d at %d: unexpected checkpoint %+v", g, p, u, got)
				}
				continue
			}
			wantCPs++
			if !has || got.UpstreamOffset != u || got.DownstreamOffset != want || got.Metadata != "m-"+g {
				t.Errorf("%s/%d at %d: checkpoint %+v (found %v), want downstream %d", g, p, u, got, has, want)
			}
		}
	}
	if len(cps) != wantCPs || sum.Checkpoints != wantCPs {
		t.Errorf("%d checkpoints in the topic, %d written; want %d", len(cps), sum.Checkpoints, wantCPs)
	}
	fails := map[string]Status{}
	for _, u := range sum.Failed {
		fails[fmt.Sprintf("%s/%d", u.Group, u.Partition)] = u.Status
	}
	if len(sum.Failed) != 2 || fails["app-ahead/1"] != NotMirrored || fails["app-old/0"] != BeforeHistory {
		t.Errorf("failures: %+v, want app-ahead/1 not_mirrored and app-old/0 before_history", sum.Failed)
	}

	// Target groups point at exactly the record the source offset pointed
	// at (or, where it was never copied, the next copied record).
	for g, offs := range groups {
		got := f.targetOffsets(t, g)
		for p, u := range offs {
			want, ok := f.c.want(p, u)
			switch {
			case g == "app-active" || g == "console-consumer-7":
				if len(got) != 0 {
					t.Errorf("%s: target offsets %v, want none written", g, got)
				}
			case g == "app-target" && p == 0:
				if got[0] != 250 {
					t.Errorf("app-target/0 moved back from 250 to %d", got[0])
				}
			case !ok:
				if _, has := got[p]; has {
					t.Errorf("%s/%d: untranslatable offset committed as %d", g, p, got[p])
				}
			case got[p] != want:
				t.Errorf("%s/%d at %d: target offset %d, want %d", g, p, u, got[p], want)
			default:
				checkPointsAt(t, f, p, u, want)
			}
		}
	}

	// A consumer resuming on the target reads every remaining record once.
	for _, g := range []string{"app-far", "app-gap", "app-middle"} {
		consumeFrom(t, f, g, map[int32][]string{0: f.c.remaining(0, groups[g][0]), 1: f.c.remaining(1, groups[g][1])})
	}

	// Once the active member leaves, its group is synced.
	active.Close()
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		if _, err := cp.RunOnce(ctxT(t)); err != nil {
			return false, err.Error()
		}
		got := f.targetOffsets(t, "app-active")
		w0, _ := f.c.want(0, 200)
		w1, _ := f.c.want(1, 200)
		return got[0] == w0 && got[1] == w1, fmt.Sprintf("app-active on the target: %v", got)
	})

	// A source group that goes back gets a new checkpoint, but its target
	// offset never moves back.
	before := f.targetOffsets(t, "app-far")
	f.commit(t, f.src, "app-far", map[int32]int64{0: 40}, "orders")
	if _, err := cp.RunOnce(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := readCheckpoints(t, f)[cpKey{"app-far", "east.orders", 0}]; got.UpstreamOffset != 40 || got.DownstreamOffset != 0 {
		t.Errorf("checkpoint after going back: %+v", got)
	}
	if after := f.targetOffsets(t, "app-far"); after[0] != before[0] {
		t.Errorf("app-far/0 moved from %d to %d on the target", before[0], after[0])
	}

	checkCheckpointMetrics(t, reg)
	if _, err := NewCheckpointer(cp.cfg); err == nil {
		t.Error("a second checkpointer for the same flow and registry was accepted")
	}
	tr := Translator{SourceAlias: "east", Source: f.src.cl, Store: f.store}
	got, err := tr.TranslateGroup(ctxT(t), "app-ahead")
	var te *TranslateError
	if w0, _ := f.c.want(0, 150); !errors.As(err, &te) || len(te.Failed) != 1 || te.Failed[0].Partition != 1 || got["east.orders"][0] != w0 || len(got["east.orders"]) != 1 {
		t.Errorf("TranslateGroup(app-ahead) = %v, %v", got, err)
	}
	if got, err := cp.TranslateGroup(ctxT(t), "app-gap"); err != nil || got["east.orders"][1] != f.targetOffsets(t, "app-gap")[1] {
		t.Errorf("TranslateGroup(app-gap) = %v, %v", got, err)
	}
}

// checkPointsAt checks that target offset d of partition p holds the record
// the source offset u pointed at: the same value, or for a record never
// copied the next copied one; at the head, d is the target's end.
func checkPointsAt(t *testing.T, f *mirrorFixture, p int32, u, d int64) {
	t.Helper()
	rest := f.c.remaining(p, u)
	if len(rest) == 0 {
		ends, err := f.dst.adm.ListEndOffsets(ctxT(t), "east.orders")
		if end, _ := ends.Lookup("east.orders", p); err != nil || end.Offset != d {
			t.Errorf("head of orders/%d translated to %d, target end %d (%v)", p, d, end.Offset, err)
		}
		return
	}
	want := rest[0] // the next copied record
	if keptAt(f.c, p, u) {
		want = f.c.values[p][u] // the very record, as read from the source
	}
	recs := readRange(t, f.dst, "east.orders", p, d, d+1)
	if len(recs) != 1 || string(recs[0].Value) != want {
		t.Errorf("east.orders/%d at %d holds %v, want %q (orders/%d at %d)", p, d, recs, want, p, u)
	}
}

func keptAt(c *copier, p int32, u int64) bool {
	for _, pr := range c.pairs[p] {
		if pr.Upstream == u {
			return true
		}
	}
	return false
}

func checkCheckpointMetrics(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	flow := "flow=east->west"
	if got := metric(t, reg, "kdr_mirror_checkpoints_total", flow); got < 14 {
		t.Errorf("kdr_mirror_checkpoints_total = %v", got)
	}
	if got := metric(t, reg, "kdr_mirror_group_offsets_synced_total", flow); got < 10 {
		t.Errorf("kdr_mirror_group_offsets_synced_total = %v", got)
	}
	if got := metric(t, reg, "kdr_mirror_translation_failures_total", flow, "reason=not_mirrored"); got < 1 {
		t.Errorf("not_mirrored failures = %v", got)
	}
	if got := metric(t, reg, "kdr_mirror_translation_failures_total", flow, "reason=missing_syncs"); got != 0 {
		t.Errorf("missing_syncs failures = %v, want 0 (series pre-created)", got)
	}
	if got := metric(t, reg, "kdr_mirror_group_offsets_skipped_total", flow, "reason=active"); got < 2 {
		t.Errorf("skipped active = %v", got)
	}
	if got := metric(t, reg, "kdr_mirror_group_offsets_skipped_total", flow, "reason=target_ahead"); got < 1 {
		t.Errorf("skipped target_ahead = %v", got)
	}
	if age := metric(t, reg, "kdr_mirror_checkpoint_age_seconds", flow, "group=app-head"); age < 0 || age > 60 {
		t.Errorf("checkpoint age of app-head = %v", age)
	}
	// Never checkpointed whole, app-ahead ages from when its offsets were
	// first read: without a series the stale-checkpoints alert could not
	// fire for it.
	if age := metric(t, reg, "kdr_mirror_checkpoint_age_seconds", flow, "group=app-ahead"); age < 0 || age > 60 {
		t.Errorf("checkpoint age of app-ahead, never checkpointed whole = %v", age)
	}
}

// TestMirrorOffsetsCheckpointerRun runs the loop at a short interval: the
// target group follows the source group within a few intervals, and Run
// returns when its context ends.
func TestMirrorOffsetsCheckpointerRun(t *testing.T) {
	f := newMirrorFixture(t)
	cp := newTestCheckpointer(t, f, nil, 50*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx) }()
	for _, u := range []int64{60, 140, 300} {
		f.commit(t, f.src, "app-run", map[int32]int64{0: u}, "orders")
		want, _ := f.c.want(0, u)
		start := time.Now()
		kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
			got := f.targetOffsets(t, "app-run")
			return got[0] == want, fmt.Sprintf("app-run/0 on the target at %v, want %d", got, want)
		})
		t.Logf("source commit %d reached the target as %d in %v", u, want, time.Since(start))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
