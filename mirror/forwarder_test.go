package mirror

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestForwarderSequences drives the forwarder's producer against a kdr
// broker: a retry of an appended batch with its sequence is answered as a
// duplicate with the original offsets (nothing appended twice); a sequence
// the broker does not expect fails the batch, the partition's batches are
// not sent until it is mended, and the next send starts a new producer ID
// whose batches are taken.
func TestForwarderSequences(t *testing.T) {
	c := startCluster(t)
	c.createTopic("t", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f := newForwarder(cl, 10*time.Second)
	ps := &partState{topic: "t", partition: 0, remote: "t"}
	tp := topicPartition{"t", 0}
	batch := func(base int64, n int) *rawBatch {
		return oneView(t, makeBatch(base, 0, 1_700_000_000_000, plainRecords(n), nil)).toRaw()
	}
	send := func(b *rawBatch) *job {
		t.Helper()
		j := &job{raw: b, base: -1}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		f.send(ctx, map[*partState][]*job{ps: {j}}, nil, newTurn())
		return j
	}

	// Two batches, one cycle each, in order.
	for _, b := range []struct {
		base int64
		n    int
	}{{0, 3}, {3, 4}} {
		if j := send(batch(b.base, b.n)); j.err != nil || j.base != b.base {
			t.Fatalf("batch: base %d, %v; want base %d", j.base, j.err, b.base)
		}
	}
	pid := f.producerID
	if f.seqs[tp] != 7 {
		t.Fatalf("next sequence %d, want 7", f.seqs[tp])
	}

	// The second batch again with its sequence (a retry after a lost
	// answer): the broker recognises it.
	f.seqs[tp] = 3
	if j := send(batch(3, 4)); j.err != nil || j.base != 3 {
		t.Fatalf("retried batch: base %d, %v; want the original offset 3", j.base, j.err)
	}
	if got := c.ends("t")[0]; got != 7 {
		t.Fatalf("log end offset %d after the retry, want 7 (nothing appended twice)", got)
	}

	// A gap in the sequence: refused, and the producer starts over with a
	// new ID. The partition stays broken, its batches not sent, until the
	// worker mends it. (A batch behind the refused one in a cycle that
	// overlaps it: TestForwarderOverlapsCycles.)
	f.seqs[tp] = 50
	if j := send(batch(7, 2)); !errors.Is(j.err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("a batch after a sequence gap: %v, want out of order", j.err)
	}
	if f.producerID != -1 {
		t.Fatalf("producer ID %d kept after an out of order sequence", f.producerID)
	}
	if j := send(batch(7, 2)); !errors.Is(j.err, errNotSent) {
		t.Fatalf("a broken partition's batch: %v, want not sent", j.err)
	}
	f.mend(tp)
	for _, base := range []int64{7, 9} {
		if j := send(batch(base, 2)); j.err != nil || j.base != base {
			t.Fatalf("after the reset: base %d, %v; want base %d", j.base, j.err, base)
		}
	}
	if f.producerID == pid || f.seqs[tp] != 4 {
		t.Fatalf("producer ID %d (was %d), next sequence %d; want a new ID and 4", f.producerID, pid, f.seqs[tp])
	}
	if got := c.ends("t")[0]; got != 11 {
		t.Fatalf("log end offset %d, want 11", got)
	}

	// Two batches of one partition in one cycle: the second is not sent
	// (a Produce request takes one batch per partition).
	two := []*job{{raw: batch(11, 1), base: -1}, {raw: batch(12, 1), base: -1}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f.send(ctx, map[*partState][]*job{ps: two}, nil, newTurn())
	if two[0].err != nil || two[0].base != 11 || !errors.Is(two[1].err, errSecondBatch) {
		t.Fatalf("two batches in a cycle: base %d, %v and %v; want 11, then not sent", two[0].base, two[0].err, two[1].err)
	}

	// A partition the target does not have: the leader lookup fails the
	// batch without sending it.
	ghost := &partState{topic: "t", partition: 0, remote: "missing"}
	j := &job{raw: batch(0, 1), base: -1}
	f.send(ctx, map[*partState][]*job{ghost: {j}}, nil, newTurn())
	if !errors.Is(j.err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("a batch for a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", j.err)
	}
}

// TestForwarderOverlapsCycles holds the target's link while two cycles
// send a partition's next batches: the second writes its request before
// the first is answered, and once the link heals both land in order. Then
// a failure of the first (a sequence gap) with the second in flight: the
// second comes back not sent, the partition stays broken until mended, and
// sent again both land in order, nothing appended twice.
func TestForwarderOverlapsCycles(t *testing.T) {
	c, proxy := startBehindProxy(t)
	c.createTopic("t", 1)
	cl := startClient(t, proxy.Addr())
	f := newForwarder(cl, 10*time.Second)
	ps := &partState{topic: "t", partition: 0, remote: "t"}
	tp := topicPartition{"t", 0}
	batch := func(base int64, n int) *rawBatch {
		return oneView(t, makeBatch(base, 0, 1_700_000_000_000, plainRecords(n), nil)).toRaw()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// overlap sends one batch per cycle, each cycle after the one before,
	// with the link held until every request is written. A nil batch is a
	// cycle whose only job is skipped (nothing to send): it keeps its turn.
	overlap := func(bs ...*rawBatch) []*job {
		t.Helper()
		proxy.Cut()
		jobs := make([]*job, len(bs))
		turns := make([]*turn, len(bs))
		var wg sync.WaitGroup
		for i, bt := range bs {
			jobs[i], turns[i] = &job{raw: bt, base: -1}, newTurn()
			if bt == nil {
				jobs[i].skip = skipLoop
			}
			var prev *turn
			if i > 0 {
				prev = turns[i-1]
			}
			wg.Go(func() { f.send(ctx, map[*partState][]*job{ps: {jobs[i]}}, prev, turns[i]) })
		}
		kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
			select {
			case <-turns[len(turns)-1].written:
				return true, ""
			default:
				return false, "the last cycle has not written its request"
			}
		})
		select {
		case <-turns[0].answered:
			t.Fatal("the first cycle was answered through a held link")
		default:
		}
		proxy.Heal()
		wg.Wait()
		return jobs
	}

	// A first batch gets the producer ID, the leader and the connection,
	// through the open link.
	first := &job{raw: batch(0, 2), base: -1}
	f.send(ctx, map[*partState][]*job{ps: {first}}, nil, newTurn())
	if first.err != nil || first.base != 0 {
		t.Fatalf("first batch: base %d, %v", first.base, first.err)
	}
	jobs := overlap(batch(2, 3), batch(5, 4), nil, batch(9, 1))
	for i, want := range []int64{2, 5, -1, 9} {
		if jobs[i].err != nil || jobs[i].base != want {
			t.Fatalf("overlapping batch %d: base %d, %v; want base %d", i, jobs[i].base, jobs[i].err, want)
		}
	}
	if f.seqs[tp] != 10 || f.flying != 0 {
		t.Fatalf("next sequence %d, %d in flight; want 10 and 0", f.seqs[tp], f.flying)
	}

	// The first of two overlapping batches is refused (a sequence gap):
	// the second, sent behind it, is not taken either.
	f.seqs[tp] = 50
	jobs = overlap(batch(10, 2), batch(12, 3))
	if !errors.Is(jobs[0].err, kerr.OutOfOrderSequenceNumber) || !errors.Is(jobs[1].err, errNotSent) {
		t.Fatalf("errors %v and %v; want out of order, then not sent", jobs[0].err, jobs[1].err)
	}
	if _, ok := f.broken[tp]; !ok {
		t.Fatal("the partition is not broken after a failed batch")
	}
	f.mend(tp)
	if err := f.initProducer(ctx); err != nil { // the new ID, through the open link
		t.Fatal(err)
	}
	jobs = overlap(batch(10, 2), batch(12, 3))
	for i, want := range []int64{10, 12} {
		if jobs[i].err != nil || jobs[i].base != want {
			t.Fatalf("after mending, batch %d: base %d, %v; want base %d", i, jobs[i].base, jobs[i].err, want)
		}
	}
	if got := c.ends("t")[0]; got != 15 {
		t.Fatalf("log end offset %d, want 15 (every batch once)", got)
	}
	recs := c.readAll("t")[0]
	for i, r := range recs {
		if r.Offset != int64(i) {
			t.Fatalf("record %d at offset %d", i, r.Offset)
		}
	}
}

// TestMirrorTargetResetWithCyclesInFlight resets the target's connections,
// three times, while two forwarding cycles are out (the link's latency makes each wait,
// so the next goes behind it) and records keep coming: every record
// arrives exactly once, in order per partition. The batches in flight come
// back failed or, if they landed, are sent again with their sequences and
// recognised as duplicates.
func TestMirrorTargetResetWithCyclesInFlight(t *testing.T) {
	east := startCluster(t)
	const parts = 4
	east.createTopic("orders", parts)
	west, proxy := startBehindProxy(t)
	proxy.SetLatency(20 * time.Millisecond)
	f := testFlow(east, west, "east", "west")
	f.Target.Brokers = []string{proxy.Addr()}
	w := startWorker(t, f)

	var produced atomic.Int64
	stop := make(chan struct{})
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		for i := 0; ; i += parts {
			select {
			case <-stop:
				return
			default:
			}
			if err := east.tryProduce(seqRecords("orders", parts, i, parts)...); err != nil {
				t.Errorf("producing to the source: %v", err)
				return
			}
			produced.Store(int64(i + parts))
		}
	}()
	stopProducing := sync.OnceFunc(func() { close(stop); <-prodDone })
	defer stopProducing()

	// Three resets, each once ten more cycles went out behind another.
	flow := map[string]string{"flow": "east->west"}
	for round := range 3 {
		overlapped := metricSum(t, w.reg, "kdr_mirror_forward_inflight_cycles", flow) - bucketSum(t, w.reg, "kdr_mirror_forward_inflight_cycles", flow, 1)
		kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
			n := metricSum(t, w.reg, "kdr_mirror_forward_inflight_cycles", flow) - bucketSum(t, w.reg, "kdr_mirror_forward_inflight_cycles", flow, 1)
			return n >= overlapped+10, fmt.Sprintf("reset %d: %v cycles sent behind another, want %v", round, n, overlapped+10)
		})
		errs := w.Status().Errors[KindTarget].Count
		proxy.Refuse()
		kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
			return w.Status().Errors[KindTarget].Count > errs, fmt.Sprintf("reset %d: no new target error", round)
		})
		proxy.Heal()
	}
	after := produced.Load() + 2000
	kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
		return produced.Load() >= after, fmt.Sprintf("%d records produced, want %d", produced.Load(), after)
	})
	stopProducing()
	n := produced.Load()
	waitCount(t, west, "east.orders", n, 60*time.Second)
	got := west.readAll("east.orders")
	if ids := ids(got); !slices.Equal(ids, sortedSeqIDs(int(n))) {
		t.Fatalf("target holds %d records (%d distinct) for %d produced", len(ids), len(slices.Compact(slices.Clone(ids))), n)
	}
	for p, recs := range got {
		for i := 1; i < len(recs); i++ {
			if string(recs[i].Value) <= string(recs[i-1].Value) {
				t.Fatalf("partition %d: %s after %s", p, recs[i].Value, recs[i-1].Value)
			}
		}
	}
}

// sortedSeqIDs is the sorted ids of seqRecords(_, _, 0, n).
func sortedSeqIDs(n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("r-%06d", i)
	}
	slices.Sort(out)
	return out
}
