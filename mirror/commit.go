package mirror

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/internal/bounded"
	"github.com/kdr-io/kdr/mirror/mm2"
	"github.com/kdr-io/kdr/mirror/offsets"
)

// pendingSync is an offset sync waiting to be written to the source.
type pendingSync struct {
	rec       *kgo.Record
	topic     string
	partition int32
}

// noted is an error found under mu, reported after it is released.
type noted struct {
	kind  string
	err   error
	attrs []any
}

// settle applies a flushed cycle: for each partition, the acknowledged
// prefix of its jobs leaves the queue and advances its position, its copies
// become offset-sync pairs, and the first failure decides the retry.
func (w *Worker) settle(work map[*partState][]*job) {
	var notes []noted
	pause, resume := map[string][]int32{}, map[string][]int32{}
	w.mu.Lock()
	for ps, jobs := range work {
		if w.parts[topicPartition{ps.topic, ps.partition}] != ps {
			continue // dropped meanwhile (its topic was deleted); nothing to commit
		}
		notes = append(notes, w.settlePartition(ps, jobs)...)
		switch {
		case ps.backoff > 0 && !ps.paused:
			ps.paused = true
			pause[ps.topic] = append(pause[ps.topic], ps.partition)
		case ps.backoff == 0 && ps.paused && len(ps.queue) == 0:
			ps.paused = false
			resume[ps.topic] = append(resume[ps.topic], ps.partition)
		}
	}
	w.mu.Unlock()
	if w.forward {
		// The worker fetches itself; the consumer stays paused.
		pause, resume = nil, nil
		w.wakeFetcher()
	}
	if len(pause) > 0 {
		// Bounds the queue while the target refuses: records not yet
		// polled stay on the source.
		w.consumer.PauseFetchPartitions(pause)
	}
	if len(resume) > 0 {
		w.consumer.ResumeFetchPartitions(resume)
	}
	for _, n := range notes {
		w.noteErr(n.kind, n.err, n.attrs...)
	}
}

// settlePartition walks one partition's jobs in order. Called with mu held.
// After a failure, the partition drains: its jobs in cycles sent before the
// failure was known come back unsettled (a forwarded one refused as out of
// order, or landed behind the failed one, which the target will recognise
// as a duplicate when sent again), and it is planned again from the failed
// entry once none is in flight.
func (w *Worker) settlePartition(ps *partState, jobs []*job) []noted {
	ps.inflight -= len(jobs)
	if ps.draining {
		w.mendIfLanded(ps)
		return nil
	}
	var notes []noted
	var pairs []pair
	var failure error
	done := 0
	unpaired := false // copies after the last pair whose target offsets are unknown
	for _, j := range jobs {
		if j.raw != nil {
			if j.err != nil && j.skip == "" {
				failure = j.err
				break
			}
			done++
			ps.next, ps.epoch = j.raw.last+1, j.raw.epoch
			if j.skip != "" {
				w.skippedRaw(ps, j.skip, j.raw.count+j.raw.loops) // a skipLoop batch kept none
				continue
			}
			ps.probe = false
			w.forwarded(ps, j)
			w.skippedRaw(ps, skipLoop, j.raw.loops)
			if j.base >= 0 { // a duplicate's offsets may be unknown (DUPLICATE_SEQUENCE_NUMBER)
				pairs = append(pairs, j.raw.pairs(j.base)...)
				unpaired = false
			} else if j.raw.count > 0 {
				unpaired = true
			}
			continue
		}
		if j.out != nil && j.err != nil {
			if !ps.probe || !errors.Is(j.err, kerr.MessageTooLarge) {
				failure = j.err
				break
			}
			j.skip = skipTooLarge // refused even alone
		}
		done++
		ps.next, ps.epoch = j.src.Offset+1, j.src.LeaderEpoch
		switch {
		case j.skip == skipTooLarge:
			ps.skipped++
			w.topicCount(ps.topic, j.skip, 1)
			w.m.skipped.WithLabelValues(w.flow.Name(), ps.topic, j.skip).Inc()
			// Skipping keeps the flow moving; the record is reported, not
			// lost silently. See the package doc.
			w.log.Warn("record too large for the target topic: skipped",
				"topic", ps.topic, "partition", ps.partition, "offset", j.src.Offset,
				"remote_topic", ps.remote, "max_message_bytes", w.limit(ps.remote), "record_batch_bytes", batchSize(j.src))
			notes = append(notes, noted{KindTooLarge, fmt.Errorf("%s/%d@%d: record too large for %s", ps.topic, ps.partition, j.src.Offset, ps.remote), nil})
		case j.skip == skipControl:
		case j.skip != "":
			ps.skipped++
			w.topicCount(ps.topic, j.skip, 1)
			w.m.skipped.WithLabelValues(w.flow.Name(), ps.topic, j.skip).Inc()
		default:
			ps.probe = false
			w.copied(ps, j)
			pairs = append(pairs, pair{Upstream: j.src.Offset, Downstream: j.out.Offset})
			unpaired = false
		}
	}
	for _, e := range ps.queue[:done] {
		ps.queued -= e.size()
	}
	// Cleared, so the array's head does not keep settled records (and the
	// fetch responses forwarded batches point into) alive.
	clear(ps.queue[:done])
	ps.queue = ps.queue[done:]
	if len(pairs) > 0 {
		for _, s := range ps.em.batch(pairs) {
			w.addSync(ps, s, false)
		}
	}
	if unpaired {
		ps.em.unpaired()
	}
	if failure == nil {
		ps.backoff, ps.lastErr = 0, ""
		w.passEmpty(ps)
		w.updateLag(ps, time.Now())
		return notes
	}
	w.updateLag(ps, time.Now())
	for _, j := range jobs[done:] {
		if j.out != nil && j.err == nil && j.acked != (time.Time{}) {
			// Manual flushing makes acknowledgements a prefix; if that ever
			// breaks, the record is copied again rather than lost.
			w.log.Warn("copy acknowledged after an earlier one failed; it will be copied again",
				"topic", ps.topic, "partition", ps.partition, "offset", j.src.Offset)
		}
	}
	ps.lastErr = failure.Error()
	ps.draining = true
	w.mendIfLanded(ps)
	if len(ps.queue) > 0 && ps.queue[0].raw != nil && (errors.Is(failure, kerr.MessageTooLarge) || errors.Is(failure, kerr.RecordListTooLarge)) {
		// The target refused a forwarded batch as too large: copy its
		// records one by one, the head first, alone.
		w.unforward(ps, 0)
		ps.probe = true
		return notes
	}
	if errors.Is(failure, kerr.MessageTooLarge) {
		// The target refused a batch: copy the head alone next, which
		// either fits or is skipped as too large.
		ps.probe = true
		return notes
	}
	ps.backoff = min(max(2*ps.backoff, minBackoff), maxBackoff)
	ps.retryAt = time.Now().Add(ps.backoff)
	// The remote topic may be missing or short of partitions (franz-go
	// refuses a partition it does not know without a broker error to tell
	// it by): let the topic manager check, and the producer re-read
	// metadata. Both are cheap, so any failure asks for them.
	w.triggerRefresh()
	w.target.ForceMetadataRefresh()
	return append(notes, noted{KindTarget, failure, []any{"topic", ps.topic, "partition", ps.partition, "retry_in", ps.backoff}})
}

// addSync queues an offset sync of ps; a position (offsets.PositionHeader)
// marks where the copy stands rather than a copied record. Called with mu
// held.
func (w *Worker) addSync(ps *partState, s pair, position bool) {
	if position {
		s = offsets.PositionToWire(s)
	}
	os := mm2.OffsetSync{Topic: ps.topic, Partition: ps.partition, UpstreamOffset: s.Upstream, DownstreamOffset: s.Downstream}
	rec := &kgo.Record{Topic: w.syncTopic, Partition: 0, Key: os.Key(), Value: os.Value()}
	if position {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: offsets.PositionHeader})
	}
	if ps.topicID != (kadm.TopicID{}) {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: offsets.TopicIDHeader, Value: ps.topicID[:]})
	}
	w.pendingSyncs = append(w.pendingSyncs, pendingSync{rec: rec, topic: ps.topic, partition: ps.partition})
}

// passEmpty moves a partition's copy position over source offsets that
// hold nothing to copy, once every record fetched before them is settled:
// the markers that close transactions, aborted records (the worker reads
// committed), records deleted before they were read, records skipped.
// Without it a transactional topic's committed position and lag stay one
// marker behind its end until the next record, and a group at the end
// (every consumer that read the last transaction) is not translated: the
// position sync says where such a group resumes on the target. The
// worker's own fetching knows how far it read (fetchAt); on the record
// path franz-go hands over the markers, which settle like skipped records.
// Called with mu held.
func (w *Worker) passEmpty(ps *partState) {
	if len(ps.queue) > 0 || ps.inflight > 0 || ps.draining || ps.next < 0 && ps.fetchAt <= ps.start {
		return
	}
	if w.forward && ps.fetchAt > ps.next {
		// The leader epoch of the offsets passed is not known; -1 leaves a
		// consumer resuming from the commit without an epoch to check.
		ps.next, ps.epoch = ps.fetchAt, -1
	}
	if p, ok := ps.em.position(ps.next); ok {
		w.addSync(ps, p, true)
	}
}

// mendIfLanded ends a partition's draining once nothing of it is in
// flight: the forwarder may send it again, from the failed batch's
// sequence. Called with mu held.
func (w *Worker) mendIfLanded(ps *partState) {
	if ps.inflight > 0 {
		return
	}
	ps.draining = false
	if w.fwd != nil {
		w.fwd.mend(topicPartition{ps.remote, ps.partition})
	}
}

// copied accounts one acknowledged copy. Called with mu held.
func (w *Worker) copied(ps *partState, j *job) {
	w.account(ps, 1, recordBytes(j.src), j.acked.Sub(j.src.Timestamp))
}

// skippedRaw counts n records of a forwarded batch not copied for reason.
// Called with mu held.
func (w *Worker) skippedRaw(ps *partState, reason string, n int32) {
	if n == 0 {
		return
	}
	ps.skipped += int64(n)
	w.topicCount(ps.topic, reason, int(n))
	w.m.skipped.WithLabelValues(w.flow.Name(), ps.topic, reason).Add(float64(n))
}

// forwarded accounts one acknowledged forwarded batch: its records, its
// bytes as stored after the header, and the latency of its first record.
// Called with mu held.
func (w *Worker) forwarded(ps *partState, j *job) {
	ps.forwarded++
	w.m.forwarded.WithLabelValues(w.flow.Name(), ps.topic).Inc()
	w.account(ps, int(j.raw.count), j.raw.records(), j.acked.Sub(time.UnixMilli(j.raw.timestamp)))
}

// account adds n records of size bytes copied with the given latency.
// Called with mu held.
func (w *Worker) account(ps *partState, n, bytes int, latency time.Duration) {
	if ps.m == nil {
		lv := []string{w.flow.Name(), ps.topic, partLabel(ps.partition)}
		ps.m = &partMetrics{
			records: w.m.records.WithLabelValues(lv...),
			bytes:   w.m.bytes.WithLabelValues(lv...),
			latency: w.m.latency.WithLabelValues(w.flow.Name(), ps.topic),
			recent:  w.m.recentLatency.WithLabelValues(w.flow.Name()),
			age:     w.m.recordAge.WithLabelValues(lv...),
		}
	}
	ps.records += int64(n)
	ps.bytes += int64(bytes)
	ps.lastLatency = latency
	w.topicCount(ps.topic, "", n)
	ps.m.records.Add(float64(n))
	ps.m.bytes.Add(float64(bytes))
	if !ps.heartbeats {
		// Heartbeats are liveness records, not anyone's data: a flow that
		// starts copies a cluster's whole heartbeats history (a reversed
		// flow after a switchover: minutes of it), which is no replication
		// latency and tripped the latency alert after every switchover.
		ps.m.latency.Observe(max(ps.lastLatency, 0).Seconds())
		ps.m.recent.Observe(max(ps.lastLatency, 0).Seconds())
	}
	ps.m.age.Set(max(ps.lastLatency, 0).Seconds())
}

// topicCount keeps per-topic totals that outlive partition moves. Called
// with mu held; skip "" counts copies.
func (w *Worker) topicCount(topic, skip string, n int) {
	ts := w.topics[topic]
	if ts == nil {
		return
	}
	switch skip {
	case "":
		ts.records += int64(n)
	case skipLoop:
		ts.skippedLoop += int64(n)
	case skipTooLarge:
		ts.skippedTooLarge += int64(n)
	}
}

// syncAndCommit writes the pending offset syncs to partition 0 of the
// offset-syncs topic (Flow.SyncsTopic, on the source or the target), then commits the positions they cover (of
// the owned partitions in only, or all when only is nil). The syncs and the
// positions are taken together under mu, so a position is committed only
// once the syncs of every copy before it are written, even while the copy
// loop settles later cycles meanwhile. commitMu serialises the callers (the
// committer, revocation, shutdown) so that an older snapshot never lands
// after a newer one.
func (w *Worker) syncAndCommit(ctx context.Context, only map[string][]int32) {
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	w.mu.Lock()
	batch := w.pendingSyncs
	ready := w.syncReady
	offs := w.positions(only)
	w.mu.Unlock()
	if len(batch) > 0 && !w.writeSyncs(ctx, batch, ready) {
		return
	}
	w.commit(ctx, offs)
}

// writeSyncs writes batch, the head of pendingSyncs, and reports whether it
// was written.
func (w *Worker) writeSyncs(ctx context.Context, batch []pendingSync, ready bool) bool {
	if !ready {
		return false // the topic manager has not created the topic yet
	}
	recs := make([]*kgo.Record, len(batch))
	for i, s := range batch {
		// A copy each time: franz-go sets a record's fields as it sends it,
		// and a write given up on may still be sending the last one.
		rec := *s.rec
		recs[i] = &rec
	}
	// Bounded: a silent source would hold a stopping worker for the
	// request timeout. Syncs given up on here and written later anyway are
	// written again: repeats are harmless.
	_, err := bounded.Call(ctx, func() (struct{}, error) {
		return struct{}{}, w.syncCl.ProduceSync(ctx, recs...).FirstErr()
	})
	if err != nil {
		w.noteErr(KindOffsetSync, fmt.Errorf("writing %d offset syncs to %s: %w", len(batch), w.syncTopic, err))
		return false
	}
	w.mu.Lock()
	w.pendingSyncs = w.pendingSyncs[len(batch):]
	w.syncs += int64(len(batch))
	w.mu.Unlock()
	for _, s := range batch {
		w.m.offsetSyncs.WithLabelValues(w.flow.Name(), s.topic, partLabel(s.partition)).Inc()
	}
	return true
}

// positions are the owned partitions' positions (only those in only, if it
// is not nil) that moved since their last commit. Called with mu held.
func (w *Worker) positions(only map[string][]int32) map[string]map[int32]kgo.EpochOffset {
	offs := map[string]map[int32]kgo.EpochOffset{}
	for tp, ps := range w.parts {
		if only != nil && !containsPartition(only, tp) {
			continue
		}
		if ts := w.topics[tp.topic]; ps.next < 0 || ps.next <= ps.committed || ts != nil && ts.gone {
			continue
		}
		if offs[tp.topic] == nil {
			offs[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		offs[tp.topic][tp.partition] = kgo.EpochOffset{Epoch: ps.epoch, Offset: ps.next}
	}
	return offs
}

// commit commits offs to the workers' group.
func (w *Worker) commit(ctx context.Context, offs map[string]map[int32]kgo.EpochOffset) {
	if len(offs) == 0 {
		return
	}
	// Bounded, as writeSyncs. A commit given up on may still land; the
	// positions it carries are right either way.
	ok, failed := bounded.Call(ctx, func() (map[topicPartition]bool, error) {
		ok := map[topicPartition]bool{}
		var failed error
		w.consumer.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				failed = err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						failed = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
						continue
					}
					ok[topicPartition{t.Topic, p.Partition}] = true
				}
			}
		})
		return ok, failed // the partitions committed, and the last failure
	})
	w.mu.Lock()
	for tp := range ok {
		if ps := w.parts[tp]; ps != nil {
			ps.committed = max(ps.committed, offs[tp.topic][tp.partition].Offset)
		}
	}
	w.mu.Unlock()
	if len(ok) > 0 {
		w.m.commits.WithLabelValues(w.flow.Name()).Inc()
	}
	if failed != nil {
		w.noteErr(KindCommit, fmt.Errorf("committing source positions of group %s: %w", w.flow.Group(), failed))
	}
}

// commitLoop is the committer: it syncs and commits what the copy cycles
// settled (the copy loop hands over through commitNow and goes on polling
// and copying meanwhile), at most once per CommitInterval, and retries every
// second while anything waits.
//
// Each commit is two round trips to the source (the offset syncs, then the
// positions) and, at 77 MB/s in cycles of a few hundred records, committing
// after each of 160 cycles a second took a quarter of the mirror's CPU and
// an eighth of the source broker's. Gathering them bounds that cost by time;
// a crash re-copies at most what one interval copied, plus two cycles.
func (w *Worker) commitLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.commitNow:
		case <-t.C:
		}
		if wait := time.Until(last.Add(w.flow.CommitInterval)); wait > 0 {
			// Cycles settled meanwhile join this commit. Run commits
			// what is left when ctx ends.
			pause := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				pause.Stop()
				return
			case <-pause.C:
			}
		}
		last = time.Now()
		cctx, cancel := context.WithTimeout(w.commits, w.flow.DeliveryTimeout)
		w.syncAndCommit(cctx, nil)
		cancel()
	}
}

func containsPartition(m map[string][]int32, tp topicPartition) bool {
	for _, p := range m[tp.topic] {
		if p == tp.partition {
			return true
		}
	}
	return false
}
