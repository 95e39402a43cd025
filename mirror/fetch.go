package mirror

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// When batches are forwarded, the worker fetches its partitions itself:
// franz-go's consumer only keeps the group membership (its partitions stay
// paused), because it hands out decoded records and forwarding needs the
// batches as the source stored them.
const (
	fetchPartitionBytes = 1 << 20  // Kafka's max.partition.fetch.bytes
	fetchPartitionMax   = 64 << 20 // grown to for a batch larger than that
	fetchQueueBytes     = 4 << 20  // fetched, not yet copied, per partition
	// fetchBudget bounds the bytes fetched and not yet copied across all
	// partitions: the worker's memory does not grow with its lag or its
	// partition count.
	fetchBudget   = 32 << 20
	fetchMaxBytes = 50 << 20 // per request, Kafka's fetch.max.bytes
	// fetchMaxWait is Kafka's fetch.max.wait.ms: how long a fetch waits
	// for records when its partitions have none.
	fetchMaxWait = 500 * time.Millisecond
	// After a fetch that brought records, the next one to that broker asks
	// for fetchBusyMinBytes and waits at most fetchBusyWait for them (Kafka's
	// fetch.min.bytes and fetch.max.wait.ms); after an empty one it waits
	// for any record, up to fetchMaxWait. Answering every append at once
	// made a steady stream of 10 MB/s cost twice the CPU, in fetches,
	// produce rounds, offset syncs and commits of a few records each.
	fetchBusyMinBytes = 512 << 10
	fetchBusyWait     = 5 * time.Millisecond
	fetchMinBackoff   = 100 * time.Millisecond
	fetchMaxBackoff   = 5 * time.Second
)

// fetchPos is one partition's part in a fetch request.
type fetchPos struct {
	ps   *partState
	from int64
}

// countFetchFailing sets kdr_mirror_fetch_failing_partitions once a second
// until ctx ends. It is not the fetch loop's job: that loop can wait in a
// positions or leaders lookup for as long as the source does not answer,
// which is when the gauge matters.
func (w *Worker) countFetchFailing(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			w.mu.Lock()
			n, _ := w.fetchFailingParts(now)
			w.mu.Unlock()
			w.m.fetchFailing.Set(float64(n))
		}
	}
}

// fetchLoop keeps the queues of the owned partitions filled, one fetch in
// flight per source broker, until ctx ends.
func (w *Worker) fetchLoop(ctx context.Context) {
	inflight := map[int32]bool{}
	busy := map[int32]bool{} // the last fetch from the broker brought records
	type fetched struct {
		id    int32
		bytes int // of record batches it brought
	}
	done := make(chan fetched)
	defer func() {
		// Wait for the fetches out, so nothing touches the source after
		// the worker stops.
		for n := len(inflight); n > 0; n-- {
			<-done
		}
	}()
	for ctx.Err() == nil {
		now := time.Now()
		w.resolvePositions(ctx, w.unpositioned(now))
		want, room, wake := w.fetchable(now)
		if len(want) > 0 {
			tps := make([]topicPartition, len(want))
			for i, ps := range want {
				tps[i] = topicPartition{ps.topic, ps.partition}
			}
			ids, err := w.srcLeaders.lookup(ctx, tps)
			if err != nil {
				err = fmt.Errorf("looking up source partition leaders: %w", err)
				w.noteErr(KindSource, err)
				w.fetchFailure(now, err)
			}
			byLeader := map[int32][]*partState{}
			for i, ps := range want {
				id, ok := ids[tps[i]]
				switch {
				case !ok:
					err := fmt.Errorf("fetching %s/%d: %w", ps.topic, ps.partition, w.srcLeaders.why(tps[i]))
					w.noteErr(KindSource, err)
					w.fetchFailed(ps, time.Now(), err)
				case !inflight[id]:
					byLeader[id] = append(byLeader[id], ps)
				}
			}
			// The budget's room is shared by the fetches sent now.
			share := w.throttle.fetchCap(max(room/int32(max(len(byLeader), 1)), fetchPartitionBytes))
			for id, parts := range byLeader {
				fetch := w.startFetch(parts)
				inflight[id] = true
				minBytes, wait := int32(1), fetchMaxWait
				if busy[id] {
					minBytes, wait = min(fetchBusyMinBytes, share), fetchBusyWait
				}
				go func() {
					n := w.fetchFrom(ctx, id, fetch, share, minBytes, wait)
					done <- fetched{id, n}
				}()
			}
		}
		t := time.NewTimer(max(wake, 10*time.Millisecond))
		select {
		case <-ctx.Done():
		case f := <-done:
			delete(inflight, f.id)
			busy[f.id] = f.bytes > 0
		case <-w.fetchWake:
		case <-t.C:
		}
		t.Stop()
	}
}

// fetchFailure notes that fetching from the source failed, for Health and
// the membership check: since is when the failed attempt began.
func (w *Worker) fetchFailure(since time.Time, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fetchFails.note(since, err)
}

// failing is a run of failed fetches, the worker's or one partition's:
// since is when the first failed attempt began (a silent broker fails a
// fetch only after a request timeout), zero while fetches work, and err the
// newest failure. The zero value is a run that has not begun.
type failing struct {
	since time.Time
	err   error
}

// note adds a failure, of an attempt begun at since, to the run.
func (f *failing) note(since time.Time, err error) {
	if f.since.IsZero() {
		f.since = since
	}
	f.err = err
}

// lasted reports whether the run, at now, has lasted d or more.
func (f failing) lasted(now time.Time, d time.Duration) bool {
	return !f.since.IsZero() && now.Sub(f.since) >= d
}

// text is the newest failure, or "" while fetches work.
func (f failing) text() string {
	if f.err == nil {
		return ""
	}
	return f.err.Error()
}

// wakeFetcher tells the fetch loop that a queue drained or the partitions
// changed.
func (w *Worker) wakeFetcher() {
	select {
	case w.fetchWake <- struct{}{}:
	default:
	}
}

// fetchable picks the partitions to fetch now: positioned, not being
// fetched, not backing off, with room in their queue, while the worker is
// within fetchBudget; room is what a fetch may bring. wake is when to look
// again without being woken.
//
// While a partition's queue is full and being copied, nothing is fetched:
// a fetch without it could hold only idle partitions, which the broker
// keeps for fetchMaxWait, and the full partition, drained meanwhile,
// would wait for that fetch to return (a broker answers one connection's
// requests in order). Once the copy drains it (settle wakes the loop),
// every partition goes in one fetch, which returns at once. A full
// partition waiting to retry a refused copy does not hold the others.
func (w *Worker) fetchable(now time.Time) (want []*partState, room int32, wake time.Duration) {
	wake = fetchMaxWait
	w.mu.Lock()
	defer w.mu.Unlock()
	total := 0
	for _, ps := range w.parts {
		total += ps.queued
	}
	w.fetchHeld = total >= fetchBudget
	if w.fetchHeld || len(w.parts) == 0 {
		return nil, 0, wake
	}
	room = int32(min(max(fetchBudget-total, fetchPartitionBytes), fetchMaxBytes))
	limit := min(fetchQueueBytes, max(fetchPartitionBytes, fetchBudget/len(w.parts)))
	hold := false
	for _, ps := range w.parts {
		if ts := w.topics[ps.topic]; ps.fetchAt < 0 || ps.fetching || ts != nil && ts.gone {
			continue
		}
		if ps.queued >= limit {
			hold = hold || !now.Before(ps.retryAt)
			continue
		}
		if d := ps.fetchRetryAt.Sub(now); d > 0 {
			wake = min(wake, d)
			continue
		}
		want = append(want, ps)
	}
	w.fetchHeld = hold
	if hold {
		return nil, 0, wake
	}
	return want, room, wake
}

// startFetch marks parts as being fetched and takes their positions.
func (w *Worker) startFetch(parts []*partState) []fetchPos {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]fetchPos, len(parts))
	for i, ps := range parts {
		ps.fetching = true
		out[i] = fetchPos{ps, ps.fetchAt}
	}
	return out
}

// fetchFrom sends one fetch to broker id, answered once it has minBytes or
// after wait, queues what it returns and says how many bytes of record
// batches that was.
func (w *Worker) fetchFrom(ctx context.Context, id int32, parts []fetchPos, room, minBytes int32, wait time.Duration) int {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(wait.Milliseconds())
	req.MinBytes = minBytes
	req.MaxBytes = room
	req.IsolationLevel = 1 // read committed: aborted transactions are left out
	req.SessionEpoch = -1  // no fetch session
	byTopic := map[string]int{}
	byID := map[[16]byte]string{} // answers from v13 name topics by id only
	w.mu.Lock()
	for _, fp := range parts {
		i, ok := byTopic[fp.ps.topic]
		if !ok {
			i = len(req.Topics)
			byTopic[fp.ps.topic] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = fp.ps.topic
			if ts := w.topics[fp.ps.topic]; ts != nil {
				rt.TopicID = ts.id
				byID[ts.id] = fp.ps.topic
			}
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset = fp.ps.partition, fp.from
		rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
		rp.PartitionMaxBytes = fp.ps.fetchMax
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	w.mu.Unlock()

	sent := time.Now()
	kresp, err := w.fetchCl.Broker(int(id)).Request(ctx, req)
	w.m.fetch.Observe(time.Since(sent).Seconds())
	if err == nil {
		err = kerr.ErrorForCode(kresp.(*kmsg.FetchResponse).ErrorCode)
	}
	if err != nil {
		w.srcLeaders.forgetBroker(id)
		if ctx.Err() == nil {
			err = fmt.Errorf("fetching from source broker %d: %w", id, err)
			w.noteErr(KindSource, err)
			w.fetchFailure(sent, err)
		}
		for _, fp := range parts {
			w.fetchFailed(fp.ps, sent, err)
		}
		return 0
	}
	w.mu.Lock()
	if now := time.Now(); w.fetchFails.lasted(now, w.membershipDoubt()) {
		w.doubtMembership(ctx, now.Sub(w.fetchFails.since))
	}
	w.fetchFails = failing{}
	w.mu.Unlock()
	resp := kresp.(*kmsg.FetchResponse)
	got := map[topicPartition]*kmsg.FetchResponseTopicPartition{}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		name := t.Topic
		if name == "" {
			name = byID[t.TopicID]
		}
		for j := range t.Partitions {
			got[topicPartition{name, t.Partitions[j].Partition}] = &t.Partitions[j]
		}
	}
	n := 0
	for _, fp := range parts {
		rp := got[topicPartition{fp.ps.topic, fp.ps.partition}]
		if rp == nil {
			w.fetchDone(fp, nil, fp.from, nil) // left out of the answer (size limit): fetch again
			continue
		}
		n += len(rp.RecordBatches)
		w.takeFetched(ctx, id, fp, rp)
	}
	// Under MaxBytesPerSecond the next fetch from this broker waits.
	w.throttle.take(ctx, n)
	return n
}

// takeFetched queues one partition's answer.
func (w *Worker) takeFetched(ctx context.Context, id int32, fp fetchPos, rp *kmsg.FetchResponseTopicPartition) {
	ps, tp := fp.ps, topicPartition{fp.ps.topic, fp.ps.partition}
	switch err := kerr.ErrorForCode(rp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange):
		w.resetOutOfRange(ctx, fp)
		return
	default:
		// Not (or no longer) the leader, a topic deleted or not yet
		// known, a broker in trouble: ask for the leader again.
		w.srcLeaders.forget(tp)
		if errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID) {
			w.triggerRefresh()
		}
		err = fmt.Errorf("fetching %s/%d from source broker %d: %w", ps.topic, ps.partition, id, err)
		w.noteErr(KindSource, err)
		w.fetchFailed(ps, time.Now(), err)
		return
	}
	entries, next, err := w.entries(ps, fp.from, rp)
	if err != nil {
		w.noteErr(KindSource, fmt.Errorf("%s/%d at offset %d: %w", ps.topic, ps.partition, fp.from, err))
	}
	w.mu.Lock()
	if w.parts[tp] == ps {
		// Not for the answer to a fetch sent before the partition was
		// dropped: that fetch was of the topic it succeeds.
		w.fetchedSuccessor(ps.topic, ps.partition)
	}
	ps.hwm = max(ps.hwm, rp.HighWatermark)
	if next == fp.from && len(rp.RecordBatches) > 0 && err == nil && ps.fetchMax < fetchPartitionMax {
		// A batch larger than the partition limit came back cut.
		ps.fetchMax = min(2*ps.fetchMax, fetchPartitionMax)
	}
	w.mu.Unlock()
	w.fetchDone(fp, entries, next, err)
}

// fetchDone queues entries fetched from fp.from, if the partition is still
// owned and at that position, and moves its fetch position to next.
func (w *Worker) fetchDone(fp fetchPos, entries []entry, next int64, err error) {
	ps := fp.ps
	w.mu.Lock()
	ps.fetching = false
	if err != nil {
		ps.backOffFetch()
		ps.fetchFails.note(time.Now(), err)
	} else {
		ps.fetchBackoff = 0
		ps.fetchFails = failing{}
	}
	owned := w.parts[topicPartition{ps.topic, ps.partition}] == ps && ps.fetchAt == fp.from
	if owned {
		ps.fetchAt = next
		for _, e := range entries {
			ps.queue = append(ps.queue, e)
			ps.queued += e.size()
		}
		w.passEmpty(ps)
		w.updateLag(ps, time.Now())
	}
	w.mu.Unlock()
	if owned && len(entries) > 0 {
		select {
		case w.fetched <- struct{}{}:
		default:
		}
	}
}

// fetchFailed backs a partition off after a failed fetch, or none (no
// leader or position known), tried at since; the caller reported err.
func (w *Worker) fetchFailed(ps *partState, since time.Time, err error) {
	w.mu.Lock()
	ps.fetching = false
	ps.backOffFetch()
	ps.fetchFails.note(since, err)
	w.mu.Unlock()
}

// backOffFetch doubles the partition's fetch backoff. Called with mu held.
func (ps *partState) backOffFetch() {
	ps.fetchBackoff = min(max(2*ps.fetchBackoff, fetchMinBackoff), fetchMaxBackoff)
	ps.fetchRetryAt = time.Now().Add(ps.fetchBackoff)
}

// entries turns one partition's fetched bytes into queue entries: batches
// that can go as they are become forwarded batches, the rest records
// decoded by franz-go. A response with transactions is decoded whole, as
// knowing which records were aborted takes the batches in order. next is
// the offset to fetch from afterwards.
func (w *Worker) entries(ps *partState, from int64, rp *kmsg.FetchResponseTopicPartition) ([]entry, int64, error) {
	views, rest, err := splitBatches(rp.RecordBatches)
	txn := len(rp.AbortedTransactions) > 0
	for i := range views {
		txn = txn || views[i].magic != 2 || views[i].control() || views[i].transactional()
	}
	if txn {
		whole := *rp
		whole.RecordBatches = rp.RecordBatches[:rest]
		return w.decode(ps, from, &whole)
	}
	var out []entry
	next := from
	for i := range views {
		v := &views[i]
		if v.last < next {
			continue
		}
		ok, _ := v.forwardable(next)
		if ok && w.identity {
			// Every record gets the hop: only an uncompressed batch can
			// be rewritten without decoding it.
			if !v.compressed() {
				if cerr := v.checkCRC(); cerr != nil {
					return out, next, cerr
				}
				if b, walked := withHops(v, w.flow.SourceAlias, w.flow.TargetAlias, w.flow.LocalRecordsOnly); walked {
					out = append(out, entry{raw: b})
					next = v.last + 1
					continue
				}
			}
			ok = false
		}
		if ok && (!v.compressed() || len(v.data) >= forwardCompressed) {
			// Not checked against its CRC here: the stamp keeps a damaged
			// batch damaged, and the target refuses it. Only a batch
			// rewritten for its append time is checksummed anew, so it is
			// checked first.
			if v.appendTime() {
				if cerr := v.checkCRC(); cerr != nil {
					return out, next, cerr
				}
			}
			out = append(out, entry{raw: v.toRaw()})
			next = v.last + 1
			continue
		}
		one := kmsg.NewFetchResponseTopicPartition()
		one.Partition, one.HighWatermark, one.LastStableOffset = rp.Partition, rp.HighWatermark, rp.LastStableOffset
		one.RecordBatches = v.data
		recs, n, derr := w.decode(ps, next, &one)
		out = append(out, recs...)
		if derr != nil {
			return out, next, derr
		}
		next = max(n, v.last+1)
	}
	return out, next, err
}

// decode decodes records from offset from on with franz-go's own decoder
// (transactions, compression, old message formats).
func (w *Worker) decode(ps *partState, from int64, rp *kmsg.FetchResponseTopicPartition) ([]entry, int64, error) {
	fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset: from, IsolationLevel: kgo.ReadCommitted(), Topic: ps.topic, Partition: ps.partition,
	}, rp, w.decompressor, nil)
	out := make([]entry, len(fp.Records))
	for i, r := range fp.Records {
		out[i] = recordEntry(r)
	}
	if fp.Err != nil {
		return out, max(next, from), fp.Err
	}
	return out, max(next, from), nil
}

// resetOutOfRange moves a partition whose position the source no longer
// has: to the log start when records were deleted before they were copied
// (they are reported), to the log end when the source lost records the
// mirror had already read (an unclean leader election).
func (w *Worker) resetOutOfRange(ctx context.Context, fp fetchPos) {
	ps := fp.ps
	bounds := func() (start, end int64, err error) {
		starts, err := w.srcAdm.ListStartOffsets(ctx, ps.topic)
		if err != nil {
			return 0, 0, err
		}
		ends, err := w.srcAdm.ListEndOffsets(ctx, ps.topic)
		if err != nil {
			return 0, 0, err
		}
		s, sok := starts.Lookup(ps.topic, ps.partition)
		e, eok := ends.Lookup(ps.topic, ps.partition)
		switch {
		case !sok || !eok:
			return 0, 0, kerr.UnknownTopicOrPartition
		case s.Err != nil:
			return 0, 0, s.Err
		case e.Err != nil:
			return 0, 0, e.Err
		}
		return s.Offset, e.Offset, nil
	}
	start, end, err := bounds()
	if err != nil {
		w.noteErr(KindSource, fmt.Errorf("%s/%d: offset %d is out of range and the log's bounds are unknown: %w", ps.topic, ps.partition, fp.from, err))
		w.fetchDone(fp, nil, fp.from, err)
		return
	}
	at := start
	switch {
	case fp.from > end && w.successorPart(ps.topic, ps.partition):
		w.noteErr(KindSource, fmt.Errorf("%s/%d: position %d is past the log end %d of a topic re-created on the source (the position was the deleted topic's); copying it from its start, %d", ps.topic, ps.partition, fp.from, end, at))
	case fp.from > end && w.recreatedUnseen(ctx, ps.topic):
		// Seen before the refresh: a drop and a fresh start come with it.
		err := fmt.Errorf("%s/%d: position %d is past the log end %d, and the topic has a new topic id: it was re-created on the source; starting it over", ps.topic, ps.partition, fp.from, end)
		w.noteErr(KindSource, err)
		w.triggerRefresh()
		w.fetchDone(fp, nil, fp.from, err)
		return
	case fp.from > end:
		at = end
		w.noteErr(KindSource, fmt.Errorf("%s/%d: the source's log ends at %d, before the position %d; resuming there (the source lost records already copied)", ps.topic, ps.partition, end, fp.from))
	default:
		w.noteErr(KindSource, fmt.Errorf("%s/%d: records %d to %d were deleted on the source before they were copied; resuming at %d", ps.topic, ps.partition, fp.from, at-1, at))
	}
	w.fetchDone(fp, nil, at, nil)
}

// stalePosition reports whether offset is a position the worker had in the
// deleted topic that topic succeeds, while the partition is a successor's
// (topicState.stale).
func (w *Worker) stalePosition(topic string, partition int32, offset int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ts := w.topics[topic]
	return ts != nil && slices.Contains(ts.stale[partition], offset)
}

// successorPart reports whether the partition belongs to a topic that
// succeeds a deleted one and has not been fetched from yet (topicState.stale).
func (w *Worker) successorPart(topic string, partition int32) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ts := w.topics[topic]
	if ts == nil {
		return false
	}
	_, ok := ts.stale[partition]
	return ok
}

// fetchedSuccessor ends a partition's time as a successor's (topicState.stale):
// its positions are the new topic's from now on. Called with mu held.
func (w *Worker) fetchedSuccessor(topic string, partition int32) {
	if ts := w.topics[topic]; ts != nil && ts.stale != nil {
		delete(ts.stale, partition)
	}
}

// recreatedUnseen reports whether the source now names topic with another
// topic id than the worker mirrors: re-created since the last refresh.
func (w *Worker) recreatedUnseen(ctx context.Context, topic string) bool {
	w.mu.Lock()
	var id kadm.TopicID
	if ts := w.topics[topic]; ts != nil {
		id = ts.id
	}
	w.mu.Unlock()
	if id == (kadm.TopicID{}) {
		return false
	}
	// Asked of a broker, not through kadm, which answers from franz-go's
	// metadata cache: seconds old, it may still name the deleted topic.
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, w.srcCl)
	if err != nil {
		return false
	}
	for _, t := range resp.Topics {
		if t.Topic != nil && *t.Topic == topic && t.ErrorCode == 0 && t.TopicID != (kadm.TopicID{}) && kadm.TopicID(t.TopicID) != id {
			return true
		}
	}
	return false
}

// unpositioned are the owned partitions without a fetch position yet.
func (w *Worker) unpositioned(now time.Time) []*partState {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*partState
	for _, ps := range w.parts {
		if ps.fetchAt < 0 && !ps.fetching && !now.Before(ps.fetchRetryAt) {
			out = append(out, ps)
		}
	}
	return out
}

// resolvePositions starts partitions where the group committed, or at the
// log start when it never did (Kafka's auto.offset.reset=earliest, as
// MM2's consumers).
func (w *Worker) resolvePositions(ctx context.Context, parts []*partState) {
	if len(parts) == 0 {
		return
	}
	fail := func(err error) {
		err = fmt.Errorf("reading the committed positions of group %s: %w", w.flow.Group(), err)
		w.noteErr(KindSource, err)
		for _, ps := range parts {
			w.fetchFailed(ps, time.Now(), err)
		}
	}
	committed, err := w.srcAdm.FetchOffsets(ctx, w.flow.Group())
	if err != nil {
		fail(err)
		return
	}
	at := map[*partState]int64{}
	var need []string
	for _, ps := range parts {
		o, ok := committed.Lookup(ps.topic, ps.partition)
		ok = ok && o.Err == nil && o.At >= 0
		if w.stalePosition(ps.topic, ps.partition, o.At) && ok && o.At > 0 {
			w.noteErr(KindSource, fmt.Errorf("%s/%d: the committed position %d is the deleted topic's (a commit raced its deletion); copying the re-created topic from its start", ps.topic, ps.partition, o.At))
			ok = false
		}
		if ok {
			at[ps] = o.At
		} else if !slices.Contains(need, ps.topic) {
			need = append(need, ps.topic)
		}
	}
	if len(need) > 0 {
		starts, err := w.srcAdm.ListStartOffsets(ctx, need...)
		var shards *kadm.ShardErrors
		if err != nil && !errors.As(err, &shards) {
			fail(err)
			return
		}
		// With some brokers failing (shard errors), the partitions the
		// others answered for start anyway.
		for _, ps := range parts {
			if _, ok := at[ps]; ok {
				continue
			}
			o, ok := starts.Lookup(ps.topic, ps.partition)
			if ok && o.Err == nil {
				at[ps] = o.Offset
				continue
			}
			why := cmp.Or(o.Err, err, error(kerr.UnknownTopicOrPartition)) // the last: not in the answer
			why = fmt.Errorf("%s/%d: no committed position, and its log start is unknown (is its leader up?): %w", ps.topic, ps.partition, why)
			w.noteErr(KindSource, why)
			w.fetchFailed(ps, time.Now(), why)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for ps, off := range at {
		if w.parts[topicPartition{ps.topic, ps.partition}] == ps && ps.fetchAt < 0 {
			ps.fetchAt = off
			if ps.start < 0 {
				ps.start = off
			}
		}
	}
}

// tooLargeToForward reports whether the remote topic's max.message.bytes,
// if known, is smaller than the batch.
func (w *Worker) tooLargeToForward(ps *partState, b *rawBatch) bool {
	lim := w.limit(ps.remote)
	return lim > 0 && len(b.data) > int(lim)
}

// unforward replaces the forwarded batch at ps.queue[i] by its records, to
// be copied one by one (a batch the target cannot take whole). Called with
// mu held.
func (w *Worker) unforward(ps *partState, i int) {
	b := ps.queue[i].raw
	var recs []entry
	var err error
	if len(b.src) > 0 {
		// Rewritten for identity naming: the batches as fetched, which
		// the record path gives the hop itself.
		for _, src := range b.src {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition, rp.RecordBatches = ps.partition, src
			got, _, derr := w.decode(ps, b.base, &rp)
			recs, err = append(recs, got...), cmp.Or(err, derr)
		}
	} else {
		b.fixCRC()
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition, rp.RecordBatches = ps.partition, b.data
		recs, _, err = w.decode(ps, b.base, &rp)
	}
	if err != nil || len(recs) == 0 {
		// Not expected: the batch decoded on the source. It stays a batch,
		// and the target's refusal is reported each time it is retried.
		w.log.Error("decoding a forwarded batch into records", "topic", ps.topic, "partition", ps.partition, "offset", b.base, "err", err)
		return
	}
	ps.queue = slices.Replace(ps.queue, i, i+1, recs...)
	ps.queued -= len(b.data)
	for _, e := range recs {
		ps.queued += e.size()
	}
}

// mergeAt merges the small batches queued from index i on into one, up to
// the remote topic's batch size (with room for the record headers to grow
// when their deltas are rebased). Called with mu held.
func (w *Worker) mergeAt(ps *partState, i int) {
	limit := int(w.batchMaxBytes(ps.remote))
	bs := []*rawBatch{ps.queue[i].raw}
	size := len(bs[0].data) + 8*int(bs[0].count)
	j := i + 1
	for ; j < len(ps.queue); j++ {
		b := ps.queue[j].raw
		if b == nil || !b.mergeable() || b.base != bs[len(bs)-1].last+1 {
			break
		}
		grow := len(b.data) - batchHeaderLen + 8*int(b.count)
		if size+grow > limit {
			break
		}
		bs = append(bs, b)
		size += grow
	}
	if len(bs) < 2 {
		return
	}
	m := mergeBatches(bs)
	if m == nil {
		return
	}
	ps.queue = slices.Replace(ps.queue, i, j, entry{raw: m})
	ps.queued += len(m.data)
	for _, b := range bs {
		ps.queued -= len(b.data)
	}
}
