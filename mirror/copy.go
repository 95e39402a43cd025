package mirror

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/mirror/naming"
)

// Skip reasons, the reason label of kdr_mirror_records_skipped_total.
const (
	skipLoop     = "loop"      // the provenance header says the target had the record, or (LocalRecordsOnly) that it was mirrored into the source (identity naming)
	skipTooLarge = "too_large" // larger than the remote topic's max.message.bytes
	skipFiltered = "filtered"  // the topic is no longer mirrored
	// A transaction marker (a control record), passed on the record path;
	// not a record, so not counted as skipped.
	skipControl = "control"
)

// Backoff after the target refused or did not acknowledge a partition's copy.
const (
	minBackoff = 200 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// partState is one assigned source partition. Its queue holds the records
// (or forwarded batches) fetched but not yet acknowledged by the target, in
// offset order; the committed position never passes the head of the queue.
type partState struct {
	topic     string
	partition int32
	remote    string
	// topicID is the source topic's id when the partition was assigned;
	// its offset syncs carry it (offsets.TopicIDHeader).
	topicID kadm.TopicID
	// heartbeats: the topic is a heartbeats topic, whose copies are not
	// timed as replication latency.
	heartbeats bool

	queue     []entry
	queued    int   // bytes in queue (forwarding only)
	inflight  int   // entries from the head in cycles not yet settled
	draining  bool  // a job failed; later cycles still hold some of the partition
	next      int64 // next source offset to copy; -1 until known
	epoch     int32 // leader epoch of the record before next
	committed int64 // last committed position; -1 none by this worker
	// assignedAt is when the worker got the partition; caughtUpAt the last
	// time its copy had everything the source had (lag 0). updateLag
	// bounds the lag in seconds with them while nothing waits in queue.
	assignedAt, caughtUpAt time.Time
	em                     *emitter

	probe   bool // produce the head record alone: the target refused a batch as too large
	backoff time.Duration
	retryAt time.Time
	paused  bool // fetching paused while the queue waits for a retry

	hwm         int64 // source high watermark; -1 unknown
	start       int64 // the group's committed offset at assignment, for lag before the first copy; -1 unknown
	records     int64
	forwarded   int64 // batches
	bytes       int64
	skipped     int64
	lastLatency time.Duration
	lastErr     string
	m           *partMetrics // resolved once: label lookup per record cost 12% of the CPU

	// The worker's own fetching, when batches are forwarded (fetch.go).
	fetchAt      int64 // next offset to fetch; -1 until positioned
	fetching     bool
	fetchMax     int32 // partition max bytes
	fetchRetryAt time.Time
	fetchBackoff time.Duration
	// fetchFails: Health names a partition the source stopped serving
	// while others still flow.
	fetchFails failing
}

// partMetrics are one partition's metric children.
type partMetrics struct {
	records, bytes  prometheus.Counter
	latency, recent prometheus.Observer
	age             prometheus.Gauge
}

// position is the next offset to copy, as far as lag is concerned: before
// anything is copied, the committed offset the group resumes from (or the
// head of the queue).
func (ps *partState) position() int64 {
	switch {
	case ps.next >= 0:
		return ps.next
	case len(ps.queue) > 0:
		return ps.queue[0].first()
	}
	return ps.start
}

// job is one queue entry's part in a cycle: a record copied (src and its
// copy out) or a batch forwarded (raw, which lands at base on the target).
type job struct {
	src   *kgo.Record
	out   *kgo.Record // nil when skipped
	raw   *rawBatch
	base  int64
	seq   int32 // the forwarded batch's sequence, once stamped
	skip  string
	err   error
	acked time.Time
}

// first and last are the source offsets the job covers.
func (j *job) first() int64 {
	if j.raw != nil {
		return j.raw.base
	}
	return j.src.Offset
}

func (j *job) last() int64 {
	if j.raw != nil {
		return j.raw.last
	}
	return j.src.Offset
}

// copyLoop is the worker's main loop: poll, copy, commit, allow rebalances.
//
// Copies in flight when ctx ends are waited for until giveUp, then given
// up on: unanswered, they are not committed, and a restart copies them
// again.
func (w *Worker) copyLoop(ctx context.Context, giveUp <-chan struct{}) {
	if w.forward {
		w.forwardLoop(ctx, giveUp)
		return
	}
	for ctx.Err() == nil {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if d, ok := w.nextRetry(time.Now()); ok {
			pctx, cancel = context.WithTimeout(ctx, max(d, 10*time.Millisecond))
		}
		fetches := w.consumer.PollRecords(pctx, w.flow.BatchRecords)
		cancel()
		if fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				w.noteErr(KindSource, err, "topic", topic, "partition", p)
			}
			// A topic deleted or re-created on the source: the topic
			// manager drops it (and starts a new one over), as the
			// forwarding fetch loop asks it to.
			if errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID) {
				w.triggerRefresh()
			}
			var loss *kgo.ErrDataLoss
			if errors.As(err, &loss) && (w.successorPart(topic, p) || w.recreatedUnseen(ctx, topic)) {
				w.restartRecreated(ctx, topic, p)
			}
		})
		w.cycleMu.Lock()
		w.enqueue(fetches)
		w.cycle(ctx, giveUp)
		w.cycleMu.Unlock()
		w.consumer.AllowRebalance()
		if w.throttle != nil {
			// After the rebalances held since the poll are let through
			// (a wait may outlast the rebalance timeout): the consumer's
			// fetches are at most a second's bytes (newClients), and the
			// next poll, which lets it fetch more, waits for what it
			// read so far.
			w.throttle.take(ctx, int(w.consumed.Swap(0)))
		}
	}
}

// restartRecreated moves the consumer of a partition of a topic re-created
// on the source to its log start. franz-go reset the partition to the log
// end, as for an unclean truncation, since the position it resumed from
// (the group's, or its own) was the deleted topic's; the forwarding path's
// counterpart is in resetOutOfRange.
func (w *Worker) restartRecreated(ctx context.Context, topic string, p int32) {
	starts, err := w.srcAdm.ListStartOffsets(ctx, topic)
	o, ok := starts.Lookup(topic, p)
	if err != nil || !ok || o.Err != nil {
		w.noteErr(KindSource, fmt.Errorf("%s/%d: re-created on the source, and its log start is unknown (%v %v); records before the consumer's reset position may not be copied", topic, p, err, o.Err))
		return
	}
	w.noteErr(KindSource, fmt.Errorf("%s/%d: re-created on the source (the consumer's position was the deleted topic's); copying it from its start, %d", topic, p, o.Offset))
	w.consumer.SetOffsets(map[string]map[int32]kgo.EpochOffset{topic: {p: {Epoch: -1, Offset: o.Offset}}})
	w.mu.Lock()
	w.fetchedSuccessor(topic, p)
	w.mu.Unlock()
}

// forwardLoop is the main loop when batches are forwarded: the fetch loop
// fills the queues, and cycles copy what they hold. Up to
// maxInflightCycles cycles wait for the target at once, each taking every
// partition's next batch not yet in flight, so a batch fetched while the
// target answers the last one is sent at once rather than after it; they
// are settled in the order they were sent. A cycle holding records (the
// franz-go producer's) goes alone. cycleMu is held while any cycle is in
// flight, and the group callbacks get it between them. Once ctx ends, it
// waits for the cycles in flight until giveUp.
func (w *Worker) forwardLoop(ctx context.Context, giveUp <-chan struct{}) {
	var pipe []*flight
	locked := false
	hold := false // a record waits for the cycles in flight to settle
	defer func() {
		if locked {
			w.cycleMu.Unlock()
		}
	}()
	for {
		for len(pipe) > 0 && pipe[0].landed() {
			if !w.finish(ctx, pipe[0]) {
				// Shutting down: those after it are not settled either,
				// and end when Run closes the clients.
				return
			}
			pipe = pipe[1:]
			if len(pipe) > 0 {
				w.setFlushing(pipe[0].start)
			}
		}
		if len(pipe) == 0 && locked {
			w.cycleMu.Unlock()
			locked = false
		}
		stopping := ctx.Err() != nil
		if stopping && len(pipe) == 0 {
			return
		}
		var (
			landed, more <-chan struct{}
			done         = ctx.Done()
			wait         = time.Hour
		)
		if len(pipe) > 0 {
			landed = pipe[0].done
		}
		switch {
		case stopping:
			done = giveUp // wait for the flights out, until giveUp
		case w.cycleWanted.Load() > 0:
			// A group callback waits for cycleMu: send nothing until it
			// had it. With nothing in flight cycleMu is free, so wait for
			// the callback to be done with it; otherwise for the flights
			// to land.
			if len(pipe) == 0 {
				w.cycleMu.Lock()
				w.cycleMu.Unlock() //nolint:staticcheck // an empty critical section: waiting for the callback
				continue
			}
		case len(pipe) < maxInflightCycles && (len(pipe) == 0 || !pipe[len(pipe)-1].barrier && !hold):
			more = w.fetched
			d, ok := w.nextRetry(time.Now())
			if ok && d <= 0 {
				if !locked {
					w.cycleMu.Lock()
					locked = true
				}
				var prev *turn
				if len(pipe) > 0 {
					prev = pipe[len(pipe)-1].turn
				}
				var work map[*partState][]*job
				work, hold = w.plan(time.Now(), len(pipe) == 0)
				if f := w.launch(ctx, work, prev); f != nil {
					w.m.depth.Observe(float64(len(pipe) + 1))
					pipe = append(pipe, f)
					continue
				}
				// Nothing could go: a record waits for the cycles in
				// flight (hold), and the first to land wakes the loop.
			} else if ok {
				wait = d
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-done:
		case <-landed:
		case <-more:
		case <-t.C:
		}
		t.Stop()
		if stopping && closed(giveUp) && !pipe[0].landed() {
			w.giveUp(len(pipe))
			return
		}
	}
}

// closed reports whether c is closed.
func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// giveUp says that a stopping worker leaves n cycles of copies unanswered.
func (w *Worker) giveUp(n int) {
	w.setFlushing(time.Time{})
	w.log.Warn("stopping: copies sent to the target have not been answered; not waiting longer for the target: they are not committed, and a restart copies them again (at least once, nothing lost)",
		"cycles", n, "waited", stopGrace)
}

// flight is a cycle sent and not yet settled.
type flight struct {
	work    map[*partState][]*job
	start   time.Time
	turn    *turn
	barrier bool          // holds records: no cycle goes with it
	done    chan struct{} // every copy answered
	err     error         // set before done: the producer's flush failed (shutting down)
}

func (f *flight) landed() bool { return closed(f.done) }

// launch sends work (nil when empty) and returns its flight, prev being
// the flight before it that has not settled.
func (w *Worker) launch(ctx context.Context, work map[*partState][]*job, prev *turn) *flight {
	if len(work) == 0 {
		return nil
	}
	f := &flight{work: work, start: time.Now(), turn: newTurn(), done: make(chan struct{})}
	if prev == nil {
		w.setFlushing(f.start)
	}
	var wg sync.WaitGroup
	// A copy not acknowledged within DeliveryTimeout fails and is retried,
	// but franz-go fails only copies it has not sent or got an answer for:
	// one sent to a target that went silent is waited for, as giving up
	// on it could break the idempotent sequence (Status.FlushWaiting shows
	// the wait). franz-go's RecordDeliveryTimeout cannot serve: it counts
	// from the record's timestamp, which is the source's.
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), w.flow.DeliveryTimeout)
	for _, jobs := range work {
		for _, j := range jobs {
			if j.out == nil {
				continue
			}
			f.barrier = true
			wg.Add(1)
			w.target.Produce(pctx, j.out, func(_ *kgo.Record, err error) {
				j.err, j.acked = err, time.Now()
				wg.Done()
			})
		}
	}
	w.flights.Add(1)
	go func() {
		defer w.flights.Done()
		defer close(f.done)
		defer pcancel()
		forwarded := make(chan struct{})
		go func() {
			defer close(forwarded)
			if w.forward {
				w.fwd.send(pctx, work, prev, f.turn)
			} else {
				f.turn.finished()
			}
		}()
		if f.barrier {
			// Manual flushing: nothing is sent before this point, so a
			// refused batch fails every later record of its partition too,
			// and what the target acknowledged is always a prefix of the
			// queue.
			fctx, cancel := graceCtx(ctx, w.flow.DeliveryTimeout)
			f.err = w.target.Flush(fctx)
			cancel()
		}
		<-forwarded
		if f.err == nil {
			wg.Wait()
			w.m.cycle.Observe(time.Since(f.start).Seconds())
		}
	}()
	return f
}

// finish settles a landed flight and hands it to the committer. It
// returns false if the flight's fate is unknown (shutting down with copies
// in flight): nothing of it is committed, and a restart re-copies it.
func (w *Worker) finish(ctx context.Context, f *flight) bool {
	w.setFlushing(time.Time{})
	if f.err != nil {
		return false
	}
	w.settle(f.work)
	w.handOver(ctx)
	return true
}

// nextRetry says how long the loop may wait before a cycle: until the
// earliest partition retry among those with entries not in flight. (The
// committer retries syncs and commits on its own.)
func (w *Worker) nextRetry(now time.Time) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d, ok := time.Duration(0), false
	if w.unsure {
		return d, ok // nothing goes until the group confirms the partitions
	}
	wait := func(x time.Duration) {
		if !ok || x < d {
			d, ok = x, true
		}
	}
	for _, ps := range w.parts {
		if len(ps.queue) > ps.inflight && !ps.draining {
			wait(max(ps.retryAt.Sub(now), 0))
		}
	}
	return d, ok
}

// enqueue appends polled records to their partitions' queues, dropping any
// the worker has already copied (a replay after a rewind) and those of
// partitions it no longer owns.
func (w *Worker) enqueue(fetches kgo.Fetches) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		ps := w.parts[topicPartition{fp.Topic, fp.Partition}]
		if ps == nil {
			return
		}
		ps.hwm = max(ps.hwm, fp.HighWatermark)
		for _, r := range fp.Records {
			last := ps.next - 1
			if n := len(ps.queue); n > 0 {
				last = ps.queue[n-1].last()
			}
			if r.Offset > last {
				ps.queue = append(ps.queue, recordEntry(r))
			}
		}
	})
}

// cycle copies what the queues hold (the record path, with franz-go's
// consumer): every record is produced, the producer flushed, the
// acknowledged prefix of each partition settled; the committer then writes
// the offset syncs and commits the positions while the next cycle runs.
func (w *Worker) cycle(ctx context.Context, giveUp <-chan struct{}) {
	work, _ := w.plan(time.Now(), true)
	if f := w.launch(ctx, work, nil); f != nil {
		select {
		case <-f.done:
			w.finish(ctx, f)
		case <-giveUp:
			w.giveUp(1)
		}
		return
	}
	w.handOver(ctx)
}

// handOver gives the committer the offset syncs and positions of what was
// settled, and goes on copying: they cost two round trips to the source
// that the next cycle's records need not wait for.
func (w *Worker) handOver(ctx context.Context) {
	if w.flow.CommitInterval > 0 {
		// The committer gathers every cycle settled within an interval
		// into one commit; the copy loop never waits for it.
		select {
		case w.commitNow <- struct{}{}:
		default: // a hand-over is already pending
		}
		return
	}
	// Commits after every cycle: the hand-over blocks while the committer
	// is busy, so at most one cycle's commit is outstanding (a crash
	// re-copies at most two cycles).
	select {
	case w.commitNow <- struct{}{}:
	case <-ctx.Done():
	}
}

func (w *Worker) setFlushing(since time.Time) {
	w.mu.Lock()
	w.flushSince = since
	w.mu.Unlock()
}

// graceCtx is a context that ends grace after ctx ends (or when cancel is
// called).
func graceCtx(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return gctx, func() { stop(); cancel() }
}

// plan picks the jobs of the next cycle: for each partition not waiting
// for a retry, its queue from the first entry not in flight. A forwarded
// batch goes alone, one per partition and cycle, so that a cycle is one
// Produce request per target leader and cycles can overlap. Records are
// taken, up to BatchRecords copies in all (one in probe mode), only when
// records is true (no cycle in flight) and only from the head: they go
// through franz-go's producer, which must not overtake forwarded batches,
// nor they it.
//
// held says a partition's next entry is a record left for a cycle that
// goes alone.
func (w *Worker) plan(now time.Time, records bool) (work map[*partState][]*job, held bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	budget := w.flow.BatchRecords
	work = map[*partState][]*job{}
	for _, ps := range w.parts {
		if len(ps.queue) <= ps.inflight || ps.draining || now.Before(ps.retryAt) {
			continue
		}
		var jobs []*job
		for i := ps.inflight; i < len(ps.queue) && budget > 0; i++ {
			e := ps.queue[i]
			if e.raw != nil && e.raw.mergeable() {
				w.mergeAt(ps, i)
				e = ps.queue[i]
			}
			if e.raw != nil && w.tooLargeToForward(ps, e.raw) {
				w.unforward(ps, i)
				e = ps.queue[i]
			}
			if e.raw != nil {
				if len(jobs) > 0 {
					break
				}
				j := &job{raw: e.raw, base: -1}
				if ts := w.topics[ps.topic]; ts == nil || ts.gone {
					j.skip = skipFiltered
				} else if e.raw.count == 0 {
					j.skip = skipLoop // every record was the target's (identity naming)
				} else {
					budget -= min(int(e.raw.count), budget)
				}
				jobs = append(jobs, j)
				break
			}
			if !records || ps.inflight > 0 {
				held = true
				break
			}
			j := w.prepare(ps, e.rec)
			jobs = append(jobs, j)
			if j.out != nil {
				budget--
				if ps.probe {
					break
				}
			}
		}
		if len(jobs) > 0 {
			work[ps] = jobs
			ps.inflight += len(jobs)
		}
	}
	return work, held
}

// prepare decides one record's fate: skip it, or copy key, value, headers
// and timestamp to the same partition of the remote topic.
func (w *Worker) prepare(ps *partState, r *kgo.Record) *job {
	j := &job{src: r}
	if r.Attrs.IsControl() {
		j.skip = skipControl
		return j
	}
	ts := w.topics[ps.topic]
	if ts == nil || ts.gone {
		j.skip = skipFiltered
		return j
	}
	var headers []kgo.RecordHeader
	if w.identity {
		if naming.Visited(r.Headers, w.flow.TargetAlias) || w.flow.LocalRecordsOnly && naming.Mirrored(r.Headers) {
			j.skip = skipLoop // the target has the record, or gets it from another cluster
			return j
		}
		headers = naming.WithHop(r.Headers, w.flow.SourceAlias) // a new slice
	} else {
		headers = slices.Clone(r.Headers)
	}
	out := &kgo.Record{Topic: ps.remote, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: headers, Timestamp: r.Timestamp}
	if lim := w.limit(ps.remote); lim > 0 && w.uncompressed && batchSize(out) > int(lim) {
		j.skip = skipTooLarge
		return j
	}
	j.out = out
	return j
}

// batchSize is the size of a record batch holding only r, as Kafka checks it
// against max.message.bytes (61 bytes of batch header, then the record).
func batchSize(r *kgo.Record) int {
	body := 1 + varintLen(0) + varintLen(0) // attributes, timestamp delta, offset delta
	body += bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		body += varintLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	return 61 + varintLen(int64(body)) + body
}

func bytesLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

// varintLen is the length of v as a zig-zag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}
