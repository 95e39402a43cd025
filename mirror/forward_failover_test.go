package mirror

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// failoverParts is the partition count of the topic
// TestForwardSurvivesLeaderKills mirrors.
const failoverParts = 4

// procCluster is a replicated kdr cluster of broker processes, with the
// helpers TestForwardSurvivesLeaderKills needs: every read goes to all the
// brokers, as any one of them may be down.
type procCluster struct {
	*kdrtest.Cluster
	t    *testing.T
	name string
	cl   *kgo.Client // fresh metadata after failovers
	adm  *kadm.Client
}

func startProcCluster(t *testing.T, bin, name string) *procCluster {
	t.Helper()
	c := kdrtest.StartCluster(t, bin, 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &procCluster{Cluster: c, t: t, name: name, cl: cl, adm: kadm.NewClient(cl)}
}

// count is the sum of topic's end offsets, or an error.
func (c *procCluster) count(topic string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lo, err := c.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	var perr error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			perr = fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, o.Err)
		}
		n += o.Offset
	})
	return n, perr
}

// mustCount is count, failing the test on an error.
func (c *procCluster) mustCount(topic string) int64 {
	c.t.Helper()
	var n int64
	kdrtest.Eventually(c.t, 30*time.Second, func() (bool, string) {
		var err error
		n, err = c.count(topic)
		return err == nil, fmt.Sprintf("%s: end offsets of %s: %v", c.name, topic, err)
	})
	return n
}

// readIDs reads every record of topic up to its end offsets at the time of
// the call and returns their ids, per partition in offset order.
func (c *procCluster) readIDs(topic string) (map[int32][]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lo, err := c.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	var perr error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			perr = fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, o.Err)
			return
		}
		ends[o.Partition] = o.Offset
		if o.Offset > 0 {
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if perr != nil {
		return nil, perr
	}
	out := map[int32][]int{}
	if len(parts) == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	done := map[int32]bool{}
	for len(done) < len(parts) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading %s on %s: %d of %d partitions read to their end before the deadline", topic, c.name, len(done), len(parts))
		}
		var rerr error
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return
			}
			id, err := failoverID(r.Value)
			if err != nil {
				rerr = fmt.Errorf("%s/%d@%d: %w", topic, r.Partition, r.Offset, err)
			}
			out[r.Partition] = append(out[r.Partition], id)
			if r.Offset >= ends[r.Partition]-1 {
				done[r.Partition] = true
			}
		})
		if rerr != nil {
			return nil, rerr
		}
	}
	return out, nil
}

// waitISR waits until every partition of topic has all three replicas in
// sync.
func (c *procCluster) waitISR(topic string) {
	c.t.Helper()
	for p := range int32(failoverParts) {
		c.WaitISR(topic, p, 3)
	}
}

// failoverValue is record id's value: the id, zero-padded, then filler up
// to 100 bytes.
func failoverValue(id int) []byte {
	v := fmt.Appendf(nil, "%09d|", id)
	return append(v, bytes.Repeat([]byte{'x'}, 90)...)
}

func failoverID(v []byte) (int, error) {
	if len(v) < 10 || v[9] != '|' {
		return 0, fmt.Errorf("value %q is not a test record", v)
	}
	return strconv.Atoi(string(v[:9]))
}

// idProducer produces records with consecutive ids (id i to partition i%4)
// at a steady pace, idempotent and with acks=all, and notes exactly which
// ids the source acknowledged.
type idProducer struct {
	cl   *kgo.Client
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	issued int          // ids handed to the producer: 0..issued-1
	acked  map[int]bool // ids acknowledged
	failed map[int]error
}

func startIDProducer(t *testing.T, src *procCluster) *idProducer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(src.Bootstrap()...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent: franz-go's default with acks=all
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.MaxBufferedRecords(5000),
		kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	p := &idProducer{cl: cl, stop: make(chan struct{}), done: make(chan struct{}), acked: map[int]bool{}, failed: map[int]error{}}
	go p.run()
	return p
}

// run produces 8 records every 4 ms (about 2000 a second) until stop.
func (p *idProducer) run() {
	defer close(p.done)
	pace := time.NewTicker(4 * time.Millisecond)
	defer pace.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-pace.C:
		}
		for range 2 * failoverParts {
			p.mu.Lock()
			id := p.issued
			p.issued++
			p.mu.Unlock()
			r := &kgo.Record{Topic: "orders", Partition: int32(id % failoverParts), Value: failoverValue(id)}
			// Blocks while MaxBufferedRecords are unacknowledged (a
			// partition without a leader): the pace then drops.
			p.cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
				p.mu.Lock()
				defer p.mu.Unlock()
				if err != nil {
					p.failed[id] = err
					return
				}
				p.acked[id] = true
			})
		}
	}
}

// ids returns how many ids were issued so far.
func (p *idProducer) ids() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.issued
}

// finish stops producing and waits for every record's outcome.
func (p *idProducer) finish(t *testing.T) {
	t.Helper()
	close(p.stop)
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := p.cl.Flush(ctx); err != nil {
		t.Fatalf("flushing the source producer: %v", err)
	}
}

// TestForwardSurvivesLeaderKills mirrors a replicated topic between two
// three-broker clusters, batches forwarded, while a producer writes to it
// and, one after the other, the source leader and then the target leader
// of partition 0 are SIGKILLed and restarted. Every acknowledged record
// must reach the target, each partition's records in the source's order;
// duplicates are counted, and bounded by the records the worker copied
// between its last commit before a kill and the first that caught up with
// the source after it (a worker thrown out of its group re-copies from its
// last commit).
func TestForwardSurvivesLeaderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	begin := time.Now()
	bin := kdrtest.Binary(t)
	src, tgt := startProcCluster(t, bin, "east"), startProcCluster(t, bin, "west")
	t.Logf("clusters up in %s", time.Since(begin).Round(time.Millisecond))

	// min.insync.replicas=2 with acks=all: an acknowledged record is on at
	// least two replicas, so one kill cannot take it (kdr's default is 1,
	// and the mirror does not copy the setting to the remote topic, whose
	// acks=all writes then wait for its whole ISR).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	resp, err := src.Admin().CreateTopic(ctx, failoverParts, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "orders")
	cancel()
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating orders: %v", err)
	}
	src.waitISR("orders")

	f := DefaultFlow()
	f.SourceAlias, f.TargetAlias = "east", "west"
	f.Source.Brokers, f.Target.Brokers = src.Bootstrap(), tgt.Bootstrap()
	f.Topics = "orders"
	f.RefreshInterval = 500 * time.Millisecond
	f.HeartbeatInterval = 200 * time.Millisecond
	f.SessionTimeout = 6 * time.Second
	f.DeliveryTimeout = 10 * time.Second
	logs := &kdrtest.Output{}
	logger := testLogger(t)
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	w := startWorkerLogging(t, f, logger)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker status: %+v", w.Status())
			t.Logf("worker logs:\n%s", logs.String())
		}
	})
	const remote = "east.orders"

	p := startIDProducer(t, src)
	// progress waits until the target grew by n records, and returns how
	// long that took.
	progress := func(what string, n int64) time.Duration {
		t.Helper()
		start := time.Now()
		from := tgt.mustCount(remote)
		kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
			got, err := tgt.count(remote)
			return err == nil && got >= from+n, fmt.Sprintf("%s: %s grew from %d to %d, want +%d (%v); worker: %s",
				what, remote, from, got, n, err, failoverStatus(w.Status()))
		})
		return time.Since(start)
	}
	kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
		st, ok := w.Status().Topic("orders")
		return ok && st.Ready, fmt.Sprintf("orders not ready: %+v", st)
	})
	tgt.waitISR(remote)
	progress("before the kills", 4000)

	// committed is the position the worker last committed for each
	// partition it owns (ok once it owns and committed all of them).
	committed := func() (map[int32]int64, bool) {
		out := map[int32]int64{}
		for _, ps := range w.Status().Partitions {
			if ps.Topic == "orders" && ps.Committed >= 0 {
				out[ps.Partition] = ps.Committed
			}
		}
		return out, len(out) == failoverParts
	}
	// atRisk bounds the duplicates. The worker does not crash, so a record
	// is copied twice only when a forwarded batch is resent under a new
	// producer ID, or when the worker loses its partitions (its group
	// coordinator died with the source broker) and re-copies from its last
	// commit: either way a record between the positions committed when a
	// kill began and once commits caught up with the source after it.
	atRisk := int64(0)
	kill := func(c *procCluster, topic string) {
		t.Helper()
		leader := c.Leader(topic, 0)
		var from map[int32]int64
		kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
			var ok bool
			from, ok = committed()
			return ok, fmt.Sprintf("the worker committed %v; worker: %s", from, failoverStatus(w.Status()))
		})
		startIDs := p.ids()
		start := time.Now()
		c.Kill(leader)
		kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
			pd, err := c.Partition(topic, 0)
			if err != nil {
				return false, err.Error()
			}
			return pd.Leader >= 0 && pd.Leader != leader, fmt.Sprintf("%s: %s/0 leader %d after killing broker %d", c.name, topic, pd.Leader, leader)
		})
		elected := time.Since(start)
		c.Restart(leader)
		c.waitISR(topic)
		restored := time.Since(start)
		endIDs := p.ids()
		t.Logf("%s: killed broker %d, leader of %s/0: new leader in %s, ISR 3 again after %s; %d records produced meanwhile (ids %d..%d)",
			c.name, leader, topic, elected.Round(time.Millisecond), restored.Round(time.Millisecond), endIDs-startIDs, startIDs, endIDs-1)
		t.Logf("%s: the mirror copied 4000 more records %s later", c.name, progress("after the kill", 4000).Round(time.Millisecond))

		// Commits caught up with what the source held once the kill was
		// over: nothing before that can be copied again.
		ends := map[int32]int64{}
		kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			lo, err := src.adm.ListEndOffsets(ctx, "orders")
			if err != nil {
				return false, err.Error()
			}
			lo.Each(func(o kadm.ListedOffset) {
				if o.Err == nil {
					ends[o.Partition] = o.Offset
				}
			})
			return len(ends) == failoverParts, fmt.Sprintf("source end offsets %v", ends)
		})
		var to map[int32]int64
		kdrtest.Eventually(t, 90*time.Second, func() (bool, string) {
			var ok bool
			to, ok = committed()
			for part, end := range ends {
				ok = ok && to[part] >= end
			}
			return ok, fmt.Sprintf("the worker committed %v, the source holds %v; worker: %s", to, ends, failoverStatus(w.Status()))
		})
		var risk int64
		for part := range to {
			risk += to[part] - from[part]
		}
		atRisk += risk
		t.Logf("%s: commits caught up %s after the kill: %d records copied between the commits before and after it (%v to %v)",
			c.name, time.Since(start).Round(time.Millisecond), risk, from, to)
	}
	kill(src, "orders")
	kill(tgt, remote)
	p.finish(t)

	p.mu.Lock()
	issued, acked, failed := p.issued, p.acked, p.failed
	p.mu.Unlock()
	if len(failed) > 0 {
		var some []string
		for id, err := range failed {
			if len(some) < 5 {
				some = append(some, fmt.Sprintf("%d: %v", id, err))
			}
		}
		t.Logf("%d of %d records not acknowledged by the source, e.g. %s", len(failed), issued, strings.Join(some, "; "))
	}
	if len(acked) == 0 {
		t.Fatal("the source acknowledged nothing")
	}

	// The source, now still: everything on it is what the target must hold.
	srcIDs, err := src.readIDs("orders")
	if err != nil {
		t.Fatal(err)
	}
	onSource := map[int]int{}
	for _, ids := range srcIDs {
		for _, id := range ids {
			onSource[id]++
		}
	}
	for id := range acked {
		if onSource[id] == 0 {
			t.Errorf("id %d acknowledged by the source but not in its log", id)
		}
	}

	waitStart := time.Now()
	var tgtIDs map[int32][]int
	onTarget := map[int]int{}
	kdrtest.Eventually(t, 90*time.Second, func() (bool, string) {
		n, err := tgt.count(remote)
		if err != nil || n < int64(len(onSource)) {
			return false, fmt.Sprintf("%s holds %d records (%v), the source %d; worker: %s", remote, n, err, len(onSource), failoverStatus(w.Status()))
		}
		if tgtIDs, err = tgt.readIDs(remote); err != nil {
			return false, err.Error()
		}
		clear(onTarget)
		for _, ids := range tgtIDs {
			for _, id := range ids {
				onTarget[id]++
			}
		}
		lost, missing := failoverMissing(acked, onTarget), failoverMissing(onSource, onTarget)
		return len(lost) == 0 && len(missing) == 0, fmt.Sprintf("%d acknowledged ids missing on the target (e.g. %v), %d of the source's (e.g. %v); worker: %s",
			len(lost), lost[:min(len(lost), 10)], len(missing), missing[:min(len(missing), 10)], failoverStatus(w.Status()))
	})
	t.Logf("target complete %s after the producer stopped", time.Since(waitStart).Round(time.Millisecond))

	// Exact counts.
	lost := failoverMissing(acked, onTarget)
	srcDups, dups, strangers := 0, 0, 0
	for _, c := range onSource {
		srcDups += c - 1
	}
	for id, c := range onTarget {
		dups += c - 1
		if onSource[id] == 0 {
			strangers++
		}
	}
	t.Logf("%d ids produced, %d acknowledged, %d records on the source (%d duplicated there), %d on the target: %d acknowledged lost, %d duplicates (bound %d), %d not from the source",
		issued, len(acked), len(onSource)+srcDups, srcDups, len(onTarget)+dups, len(lost), dups, atRisk, strangers)
	if len(lost) > 0 {
		t.Errorf("%d acknowledged records lost, e.g. %v", len(lost), lost[:min(len(lost), 10)])
	}
	if strangers > 0 {
		t.Errorf("%d records on the target that the source does not hold", strangers)
	}
	if int64(dups-srcDups) > atRisk {
		t.Errorf("%d duplicates made by the mirror, more than the %d records copied between commits across the kills", dups-srcDups, atRisk)
	}

	// Order: per partition, the target's first copies are the source's
	// records in the source's order, on the same partition.
	for part := range int32(failoverParts) {
		var firsts []int
		seen := map[int]bool{}
		for _, id := range tgtIDs[part] {
			if id%failoverParts != int(part) {
				t.Errorf("%s/%d holds id %d, produced to partition %d", remote, part, id, id%failoverParts)
			}
			if !seen[id] {
				seen[id] = true
				firsts = append(firsts, id)
			}
		}
		var want []int
		seen = map[int]bool{}
		for _, id := range srcIDs[part] {
			if !seen[id] {
				seen[id] = true
				want = append(want, id)
			}
		}
		if !slices.Equal(firsts, want) {
			i := 0
			for i < min(len(firsts), len(want)) && firsts[i] == want[i] {
				i++
			}
			t.Errorf("%s/%d: the first copies differ from the source's order at index %d: target %v, source %v",
				remote, part, i, firsts[i:min(i+5, len(firsts))], want[i:min(i+5, len(want))])
		}
		if d := len(tgtIDs[part]) - len(firsts); d > 0 {
			t.Logf("%s/%d: %d duplicates", remote, part, d)
		}
	}

	// The copies went as forwarded batches.
	st := w.Status()
	if !st.ForwardBatches {
		t.Errorf("Status().ForwardBatches is false, want batches forwarded")
	}
	var records, batches int64
	for _, ps := range st.Partitions {
		records += ps.Records
		batches += ps.Forwarded
		t.Logf("%s/%d: %d records copied, %d batches forwarded, last error %q", ps.Topic, ps.Partition, ps.Records, ps.Forwarded, ps.LastError)
	}
	if len(st.Partitions) != failoverParts {
		t.Errorf("the worker owns %d partitions, want %d", len(st.Partitions), failoverParts)
	}
	if batches == 0 {
		t.Errorf("no batch forwarded (%d records copied)", records)
	}
	for kind, e := range st.Errors {
		t.Logf("errors %s: %d, last %q", kind, e.Count, e.Last)
	}
	t.Logf("%d records copied in %d forwarded batches; whole test %s", records, batches, time.Since(begin).Round(time.Millisecond))
}

// failoverMissing returns the ids of want absent from have, sorted.
func failoverMissing[V int | bool](want map[int]V, have map[int]int) []int {
	var out []int
	for id := range want {
		if have[id] == 0 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// failoverStatus summarises a worker's partitions and errors for a wait's
// failure message.
func failoverStatus(s Status) string {
	var b strings.Builder
	for _, ps := range s.Partitions {
		fmt.Fprintf(&b, "[%s/%d next %d hwm %d queued %d paused %v err %q] ", ps.Topic, ps.Partition, ps.NextOffset, ps.HighWatermark, ps.Queued, ps.Paused, ps.LastError)
	}
	for kind, e := range s.Errors {
		fmt.Fprintf(&b, "[%s errors %d: %s] ", kind, e.Count, e.Last)
	}
	if s.FlushWaiting > 0 {
		fmt.Fprintf(&b, "[flush waiting %s]", s.FlushWaiting)
	}
	return b.String()
}
