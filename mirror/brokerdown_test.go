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
)

// TestMirrorSourceBrokerDown kills one broker of a three-broker source whose
// topic has one replica per partition: the partitions it led have no one to
// serve them, the others still flow. The worker goes on copying the others,
// and says which partitions it cannot fetch (Health, Status.FetchError,
// kdr_mirror_fetch_failing_partitions) while the whole source is not down,
// which a check of the source as a whole misses. Once the broker is back
// every record arrives exactly once and the worker is healthy again.
func TestMirrorSourceBrokerDown(t *testing.T) {
	const topic, parts = "orders", 3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	east, prod := startSourceWithTopic(ctx, t, topic, parts, 1)
	west := startCluster(t)
	produced := map[int32]int{}
	produce := func(ps []int32, n int) {
		t.Helper()
		var recs []*kgo.Record
		for _, p := range ps {
			for range n {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("p%d-%d", p, produced[p]))})
				produced[p]++
			}
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	total := func() int64 {
		var n int
		for _, c := range produced {
			n += c
		}
		return int64(n)
	}

	f := testFlow(&cluster{addr: east.Bootstrap()[0]}, west, "east", "west")
	f.Source.Brokers = east.Bootstrap()
	w := startWorker(t, f)
	remote := "east." + topic
	all := make([]int32, parts)
	for p := range all {
		all[p] = int32(p)
	}
	produce(all, 50)
	waitCount(t, west, remote, total(), 30*time.Second)
	// Committed too: copies not yet committed when a broker dies are
	// copied again (at least once), and this test counts exactly once.
	src := &cluster{t: t, addr: east.Bootstrap()[0], cl: east.cl, adm: east.adm}
	waitCommitted(t, src, f.Group(), topic, total(), 30*time.Second)

	// The broker killed leads some of the topic's partitions but is not
	// the group's coordinator. (Killing the coordinator's broker is
	// another test's business: while the group moves, commits fail, the
	// worker can be dropped from the group, and what it copied since its
	// last commit is copied again, at least once.)
	coord := groupCoordinator(ctx, t, east.adm, f.Group())
	victim := int32(-1)
	for p := range int32(parts) {
		if l := east.Leader(topic, p); l != coord {
			victim = l
			break
		}
	}
	if victim < 0 {
		t.Fatalf("every partition of %s is on broker %d, the group coordinator; want some on the others", topic, coord)
	}
	var down, up []int32 // partitions on the broker killed, and on the others
	for p := range int32(parts) {
		if east.Leader(topic, p) == victim {
			down = append(down, p)
		} else {
			up = append(up, p)
		}
	}
	if len(up) == 0 {
		t.Fatalf("every partition of %s is on broker %d; want some on the others", topic, victim)
	}

	east.Kill(victim)
	produce(up, 50)
	waitCount(t, west, remote, total(), 30*time.Second)
	flow := map[string]string{"flow": "east->west"}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		err := w.Health()
		want := fmt.Sprintf("%d of the %d partitions owned have not been fetched", len(down), parts)
		names := func(p int32) bool { return strings.Contains(err.Error(), fmt.Sprintf(": %s/%d since", topic, p)) }
		if err == nil || !strings.Contains(err.Error(), want) || !slices.ContainsFunc(down, names) {
			return false, fmt.Sprintf("health %v; want %q naming a partition of broker %d %v", err, want, victim, down)
		}
		if g := metricSum(t, w.reg, "kdr_mirror_fetch_failing_partitions", flow); g != float64(len(down)) {
			return false, fmt.Sprintf("kdr_mirror_fetch_failing_partitions %v, want %d", g, len(down))
		}
		var failing []int32
		for _, ps := range w.Status().Partitions {
			if ps.FetchError != "" {
				failing = append(failing, ps.Partition)
			}
		}
		return slices.Equal(failing, down), fmt.Sprintf("partitions with a fetch error %v, want %v", failing, down)
	})
	t.Logf("while broker %d is down: %v", victim, w.Health())

	east.Restart(victim)
	produce(all, 50)
	waitCount(t, west, remote, total(), 60*time.Second)
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		err := w.Health()
		g := metricSum(t, w.reg, "kdr_mirror_fetch_failing_partitions", flow)
		return err == nil && g == 0, fmt.Sprintf("health %v, kdr_mirror_fetch_failing_partitions %v after broker %d came back", err, g, victim)
	})
	got := west.readAll(remote)
	for p := range int32(parts) {
		if len(got[p]) != produced[p] {
			t.Fatalf("partition %d: %d records on the target, %d produced", p, len(got[p]), produced[p])
		}
		for i, r := range got[p] {
			if want := fmt.Sprintf("p%d-%d", p, i); string(r.Value) != want {
				t.Fatalf("partition %d offset %d holds %s, want %s", p, i, r.Value, want)
			}
		}
	}
}

// TestMirrorSourceCoordinatorDown kills the source broker that is the
// mirror group's coordinator, with the topic replicated on all three, so
// that every partition stays readable and only the group moves. Nothing may
// be lost: while the group moves the worker's commits fail and it may be
// dropped from the group, so what it copied since its last commit may be
// copied again (at least once, counted and logged); the first copies stay
// in order, and the worker's commits catch up on the new coordinator.
func TestMirrorSourceCoordinatorDown(t *testing.T) {
	const topic, parts = "orders", 3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	east, prod := startSourceWithTopic(ctx, t, topic, parts, 3)
	west := startCluster(t)
	n := 0
	produce := func(k int) {
		t.Helper()
		if err := prod.ProduceSync(ctx, seqRecords(topic, parts, n, k)...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		n += k
	}

	f := testFlow(&cluster{addr: east.Bootstrap()[0]}, west, "east", "west")
	f.Source.Brokers = east.Bootstrap()
	startWorker(t, f)
	remote := "east." + topic
	produce(150)
	waitCount(t, west, remote, int64(n), 30*time.Second)
	src := &cluster{t: t, addr: east.Bootstrap()[0], cl: east.cl, adm: east.adm}
	waitCommitted(t, src, f.Group(), topic, int64(n), 30*time.Second)

	coord := groupCoordinator(ctx, t, east.adm, f.Group())
	east.Kill(coord)
	produce(150)
	waitDistinct(t, west, remote, n, 60*time.Second)
	// The commits go on at the new coordinator. Read them with a client
	// made after the kill: franz-go v1.22.2's sharded OffsetFetch kept
	// dialling the dead coordinator through the old client's cache for a
	// minute, although FindCoordinator named the new one.
	after, err := kgo.NewClient(kgo.SeedBrokers(east.Bootstrap()...))
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	waitCommitted(t, &cluster{t: t, addr: east.Bootstrap()[0], cl: after, adm: kadm.NewClient(after)}, f.Group(), topic, int64(n), 60*time.Second)

	east.Restart(coord)
	produce(150)
	waitDistinct(t, west, remote, n, 60*time.Second)
	got := west.readAll(remote)
	checkFirstCopiesInOrder(t, got)
	t.Logf("coordinator broker %d killed: the target holds %d records for %d produced", coord, west.count(remote), n)
}

// startSourceWithTopic starts a source cluster of three broker processes
// holding topic (parts partitions of rf replicas), and a producer to it
// that writes each record to the partition it names.
func startSourceWithTopic(ctx context.Context, t *testing.T, topic string, parts int32, rf int16) (*procCluster, *kgo.Client) {
	t.Helper()
	east := startProcCluster(t, kdrtest.Binary(t), "east")
	resp, err := east.adm.CreateTopic(ctx, parts, rf, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(east.Bootstrap()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return east, prod
}

// groupCoordinator is the broker that coordinates group.
func groupCoordinator(ctx context.Context, t *testing.T, adm *kadm.Client, group string) int32 {
	t.Helper()
	coords := adm.FindGroupCoordinators(ctx, group)
	coord, ok := coords[group]
	if !ok || coord.Err != nil {
		t.Fatalf("group coordinator of %s: %+v", group, coords)
	}
	return coord.NodeID
}

// TestMirrorCheckpointsAfterSourceCoordinatorDown kills the source broker
// that coordinates a consumer group the flow checkpoints, and leads no
// partition the worker reads and does not coordinate the worker's own group,
// so nothing in the copy path notices it is gone. The group moves to
// another broker; its next commit there must reach the target within a few
// seconds: the checkpointer's client must not keep asking the dead broker.
// (franz-go v1.22.2 caches a group's coordinator until a request answers
// NOT_COORDINATOR or the broker leaves the client's metadata; a failed dial
// of a sharded OffsetFetch does neither. The checkpointer's client reloads
// metadata every cycle, reading partitions' start offsets, so it notices.
// That is what this test holds: with a 10-minute topic refresh it passes.)
func TestMirrorCheckpointsAfterSourceCoordinatorDown(t *testing.T) {
	const topic, parts = "orders", 1
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	east, prod := startSourceWithTopic(ctx, t, topic, parts, 3)
	west := startCluster(t)
	if err := prod.ProduceSync(ctx, seqRecords(topic, parts, 0, 100)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	f := testFlow(&cluster{addr: east.Bootstrap()[0]}, west, "east", "west")
	f.Source.Brokers = east.Bootstrap()
	f.CheckpointInterval = 200 * time.Millisecond
	f.RefreshInterval = DefaultFlow().RefreshInterval
	group := quietGroup(ctx, t, east, f.Group(), east.Leader(topic, 0))

	commit := func(adm *kadm.Client, at int64) {
		t.Helper()
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: at, LeaderEpoch: -1})
		kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
			err := adm.CommitAllOffsets(ctx, group, offs)
			return err == nil, fmt.Sprintf("committing %s at %d: %v", group, at, err)
		})
	}
	synced := func(at int64, within time.Duration) {
		t.Helper()
		waitGroupAt(t, west, group, "east."+topic, map[int32]int64{0: at}, within)
	}

	commit(east.adm, 20)
	startWorker(t, f)
	waitCount(t, west, "east."+topic, 100, 30*time.Second)
	synced(20, 30*time.Second)

	coord := groupCoordinator(ctx, t, east.adm, group)
	killed := time.Now()
	east.Kill(coord)
	after, err := kgo.NewClient(kgo.SeedBrokers(east.Bootstrap()...))
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	commit(kadm.NewClient(after), 70)
	committed := time.Since(killed)
	synced(70, 15*time.Second)
	t.Logf("broker %d, %s's coordinator, killed: the group could commit again after %v, and its commit was on the target after %v",
		coord, group, committed.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
}

// quietGroup names a consumer group whose coordinator on c is neither
// avoid (a partition leader) nor the coordinator of the worker's group.
func quietGroup(ctx context.Context, t *testing.T, c *procCluster, workerGroup string, avoid int32) string {
	t.Helper()
	busy := map[int32]bool{avoid: true, groupCoordinator(ctx, t, c.adm, workerGroup): true}
	var names []string
	for i := range 64 {
		names = append(names, fmt.Sprintf("billing-%d", i))
	}
	coords := c.adm.FindGroupCoordinators(ctx, names...)
	for _, g := range names {
		if co, ok := coords[g]; ok && co.Err == nil && !busy[co.NodeID] {
			return g
		}
	}
	t.Fatalf("no group among %d names has a coordinator outside brokers %v: %+v", len(names), busy, coords)
	return ""
}
