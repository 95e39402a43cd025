package mirror

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/mirror/naming"
)

// Status is a snapshot of a worker, for `kdr mirror` and tests.
type Status struct {
	Flow   string // "east->west"
	Group  string // the workers' consumer group on the source
	Naming string
	// ForwardBatches is true when the worker forwards the source's
	// batches as they are (Flow.ForwardBatches applies).
	ForwardBatches bool
	Running        bool
	// Refreshes counts completed topic refreshes.
	Refreshes   int64
	OffsetSyncs int64 // offset syncs written
	Heartbeats  int64 // heartbeats written
	// MembershipDoubts counts the times copying waited, after the source
	// was unreachable, for the group to confirm the worker's partitions.
	MembershipDoubts int64
	// FlushWaiting is how long the cycle in flight has been waiting for
	// the target to acknowledge its copies; 0 when none is.
	FlushWaiting time.Duration
	Topics       []TopicStatus
	Partitions   []PartitionStatus // the partitions this worker owns now
	// Errors by kind (KindSource, KindTarget, ...); absent kinds had none.
	Errors map[string]ErrorStatus
	// Checkpoint is the checkpoint side: whether this worker is the flow's
	// checkpointer and how old its last checkpoints are.
	Checkpoint CheckpointStatus
	// ACLs is the topic ACL sync (Flow.SyncTopicACLs).
	ACLs ACLStatus
}

// TopicStatus is one mirrored source topic. Counts cover this worker's
// lifetime, across partition moves.
type TopicStatus struct {
	Topic, RemoteTopic string
	Partitions         int32 // on the source, at the last refresh
	// Ready is true once the remote topic exists and the topic is consumed.
	Ready bool
	// Gone is true once the topic disappeared from the source.
	Gone bool
	// RemoteDeleted is true once this worker deleted the remote topic
	// because the source topic was deleted (Flow.SyncTopicDeletions).
	RemoteDeleted   bool
	MaxMessageBytes int32 // the remote topic's max.message.bytes; 0 unknown
	Records         int64 // copies acknowledged
	SkippedLoop     int64 // not copied: the target had them (identity naming)
	SkippedTooLarge int64 // not copied: too large for the remote topic
	// SyncsExpireFirst says why the source keeps the topic's records longer
	// than the offset-syncs topic keeps syncs (Flow.OffsetSyncsRetention),
	// so that positions further behind cannot be translated once their
	// syncs expire; empty when it does not.
	SyncsExpireFirst string
}

// PartitionStatus is one owned source partition.
type PartitionStatus struct {
	Topic       string
	Partition   int32
	RemoteTopic string
	// NextOffset is the next source offset to copy (-1 before the first).
	NextOffset int64
	// Committed is the last position this worker committed (-1 none).
	Committed     int64
	HighWatermark int64 // -1 unknown
	Lag           int64 // HighWatermark - NextOffset; -1 unknown
	Queued        int   // polled, waiting to be copied
	Records       int64 // copied since this worker got the partition
	Forwarded     int64 // batches forwarded as they are, of Records
	Bytes         int64
	Skipped       int64
	LastLatency   time.Duration // source timestamp to target ack, last copy
	Paused        bool          // waiting to retry after the target refused
	LastError     string        // the target's last refusal, until a copy works
	FetchError    string        // why fetching from the source fails now (the worker's own fetching); "" while it works
}

// ErrorStatus counts one kind of error.
type ErrorStatus struct {
	Count int64
	Last  string    // the latest error
	At    time.Time // when it happened
}

// Status returns a snapshot of the worker.
func (w *Worker) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := Status{
		Flow: w.flow.Name(), Group: w.flow.Group(), Naming: w.flow.Naming, ForwardBatches: w.forward, Running: w.running,
		Refreshes: w.refreshes, OffsetSyncs: w.syncs, Heartbeats: w.heartbeats, MembershipDoubts: w.doubts,
		Errors: map[string]ErrorStatus{}, Checkpoint: w.checkpointStatus(), ACLs: w.acl,
	}
	if !w.flushSince.IsZero() {
		s.FlushWaiting = time.Since(w.flushSince)
	}
	for k, e := range w.errs {
		s.Errors[k] = *e
	}
	for _, ts := range w.topics {
		s.Topics = append(s.Topics, TopicStatus{
			Topic: ts.name, RemoteTopic: ts.remote, Partitions: ts.partitions, Ready: ts.ready, Gone: ts.gone, RemoteDeleted: ts.remoteGone,
			MaxMessageBytes: w.limit(ts.remote), Records: ts.records, SkippedLoop: ts.skippedLoop, SkippedTooLarge: ts.skippedTooLarge,
			SyncsExpireFirst: ts.syncsExpireFirst,
		})
	}
	slices.SortFunc(s.Topics, func(a, b TopicStatus) int { return cmp.Compare(a.Topic, b.Topic) })
	for _, ps := range w.parts {
		lag := int64(-1)
		if pos := ps.position(); ps.hwm >= 0 && pos >= 0 {
			lag = max(ps.hwm-pos, 0)
		}
		s.Partitions = append(s.Partitions, PartitionStatus{
			Topic: ps.topic, Partition: ps.partition, RemoteTopic: ps.remote,
			NextOffset: ps.next, Committed: ps.committed, HighWatermark: ps.hwm, Lag: lag, Queued: queuedRecords(ps.queue),
			Records: ps.records, Forwarded: ps.forwarded, Bytes: ps.bytes, Skipped: ps.skipped, LastLatency: ps.lastLatency,
			Paused: ps.paused || w.forward && ps.backoff > 0, LastError: ps.lastErr, FetchError: ps.fetchFails.text(),
		})
	}
	slices.SortFunc(s.Partitions, func(a, b PartitionStatus) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return s
}

// Topic returns the status of one source topic.
func (s Status) Topic(name string) (TopicStatus, bool) {
	for _, t := range s.Topics {
		if t.Topic == name {
			return t, true
		}
	}
	return TopicStatus{}, false
}

var errNotRunning = errors.New("mirror: worker not running")

// fetchFailingHealth is how long the worker's fetches from the source may
// keep failing before Health says so: one failure is retried at once, and a
// source that stopped answering (a dropped network) has already cost a
// request timeout by the time the first failure is known.
const fetchFailingHealth = 5 * time.Second

// groupErrHealth is how long the worker may be out of its group (a
// rebalance's rejoin takes less) before Health reports it.
const groupErrHealth = 5 * time.Second

// Health is nil while the worker runs, its last topic refresh worked and
// neither its fetches from the source nor those of any partition it owns
// have been failing for fetchFailingHealth; otherwise it says why not. It
// backs /healthz. A refresh stuck on a silent source gives up only after
// max(RefreshInterval, 30 s); the fetches tell within a request timeout.
// Per partition, a source broker that is down while others serve (the
// leader of some partitions only, with no replica to take over) shows too.
func (w *Worker) Health() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case !w.running:
		return errNotRunning
	case w.refreshErr != nil:
		return w.refreshErr
	case w.groupErr.lasted(time.Now(), groupErrHealth):
		return fmt.Errorf("not a member of the workers' group for %v, so copying nothing: %w",
			time.Since(w.groupErr.since).Round(time.Second), w.groupErr.err)
	case w.fetchFails.lasted(time.Now(), fetchFailingHealth):
		return fmt.Errorf("fetches from the source have failed for %v (is the source up, and reachable from this worker?): %w",
			time.Since(w.fetchFails.since).Round(time.Second), w.fetchFails.err)
	}
	if n, worst := w.fetchFailingParts(time.Now()); worst != nil {
		f := worst.fetchFails
		return fmt.Errorf("%d of the %d partitions owned have not been fetched for %v or more while the rest of the source answers (is their leader broker up?): %s/%d since %v: %w",
			n, len(w.parts), fetchFailingHealth, worst.topic, worst.partition, time.Since(f.since).Round(time.Second), f.err)
	}
	return nil
}

// fetchFailingParts counts the owned partitions whose fetches have failed
// for fetchFailingHealth or more, and returns the one failing longest.
// Called with mu held.
func (w *Worker) fetchFailingParts(now time.Time) (int, *partState) {
	if w.fetchHeld {
		return 0, nil
	}
	var worst *partState
	failing := 0
	for _, ps := range w.parts {
		if !ps.fetchFails.lasted(now, fetchFailingHealth) {
			continue
		}
		failing++
		if worst == nil || ps.fetchFails.since.Before(worst.fetchFails.since) {
			worst = ps
		}
	}
	return failing, worst
}

// onAssigned starts the state of newly assigned partitions. A new emitter
// per assignment makes the first copy after a move emit a sync.
func (w *Worker) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	w.mu.Lock()
	w.groupErr = failing{}
	for t, parts := range assigned {
		for _, p := range parts {
			key := topicPartition{t, p}
			if w.parts[key] == nil {
				ps := &partState{topic: t, partition: p, remote: w.policy.RemoteTopic(w.flow.SourceAlias, t),
					next: -1, committed: -1, hwm: -1, start: -1, em: newEmitter(),
					fetchAt: -1, fetchMax: fetchPartitionBytes, assignedAt: time.Now(), heartbeats: naming.IsHeartbeats(w.policy, t)}
				if ts := w.topics[t]; ts != nil {
					ps.topicID = ts.id
				}
				w.parts[key] = ps
			}
		}
	}
	n := len(w.parts)
	w.mu.Unlock()
	w.trustMembership("rebalance")
	if w.forward {
		// Before franz-go starts fetching them: the worker fetches its
		// partitions itself (fetch.go).
		w.consumer.PauseFetchPartitions(assigned)
		w.wakeFetcher()
	}
	w.m.assigned.WithLabelValues(w.flow.Name()).Set(float64(n))
	w.log.Info("partitions assigned", "assigned", assigned, "owned", n)
	if len(assigned) > 0 {
		// A new partition may be one the remote topic lacks yet.
		w.triggerRefresh()
	}
}

// onRevoked gives partitions up: BlockRebalanceOnPoll runs it between
// cycles, when every copy made has been acknowledged and settled, so it
// writes the pending offset syncs and commits before letting go.
func (w *Worker) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return
	}
	w.lockCycles()
	defer w.cycleMu.Unlock()
	// w.commits, not the callback's context: a revocation still commits
	// when the group is left, unless the worker stops with its source
	// unreachable (abandonCommits).
	cctx, cancel := context.WithTimeout(w.commits, w.flow.DeliveryTimeout)
	defer cancel()
	if err := w.target.Flush(cctx); err == nil {
		w.syncAndCommit(cctx, revoked)
	}
	w.drop(revoked)
	w.trustMembership("rebalance")
	w.log.Info("partitions revoked", "revoked", revoked)
}

// onLost drops partitions taken away without a chance to commit (the worker
// was thrown out of the group); their new owner re-copies from the last
// commit.
func (w *Worker) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	w.lockCycles()
	defer w.cycleMu.Unlock()
	w.drop(lost)
	w.trustMembership("partitions lost")
	if len(lost) > 0 { // franz-go calls it with none after a failed join too
		w.log.Warn("partitions lost", "lost", lost)
	}
}

// lockCycles takes cycleMu for a group callback: the forwarding loop sends
// no new cycle while one waits, so that the cycles in flight settle and it
// lets go.
func (w *Worker) lockCycles() {
	w.cycleWanted.Add(1)
	w.cycleMu.Lock()
	w.cycleWanted.Add(-1)
}

// drop forgets partitions.
func (w *Worker) drop(tps map[string][]int32) {
	resume := map[string][]int32{}
	w.mu.Lock()
	for t, parts := range tps {
		for _, p := range parts {
			key := topicPartition{t, p}
			ps := w.parts[key]
			if ps == nil {
				continue
			}
			if ps.paused {
				resume[t] = append(resume[t], p)
			}
			delete(w.parts, key)
			w.m.forget(t, p)
			if w.fwd != nil {
				w.fwd.mend(topicPartition{ps.remote, p})
			}
		}
	}
	n := len(w.parts)
	w.mu.Unlock()
	if len(resume) > 0 && !w.forward {
		w.consumer.ResumeFetchPartitions(resume)
	}
	w.m.assigned.WithLabelValues(w.flow.Name()).Set(float64(n))
}

// updateLag sets a partition's lag gauges. Called with mu held. Lag in
// seconds is the age of the oldest record polled but not copied; when the
// worker is behind but holds none, the last value stands.
func (w *Worker) updateLag(ps *partState, now time.Time) {
	pos := ps.position()
	if ps.hwm < 0 || pos < 0 {
		return
	}
	lv := []string{w.flow.Name(), ps.topic, partLabel(ps.partition)}
	lag := max(ps.hwm-pos, 0)
	w.m.lagRecords.WithLabelValues(lv...).Set(float64(lag))
	switch {
	case lag == 0:
		w.m.lagSeconds.WithLabelValues(lv...).Set(0)
		ps.caughtUpAt = now
	case len(ps.queue) > 0:
		w.m.lagSeconds.WithLabelValues(lv...).Set(max(now.Sub(ps.queue[0].timestamp()), 0).Seconds())
	case !ps.caughtUpAt.IsZero():
		// Records wait on the source unread (the fetch held back by the
		// byte cap, or failing): the oldest was written after the copy
		// last had everything, so it is at most that old. Without this
		// the gauge kept its last value, often 0, while a backlog grew.
		w.m.lagSeconds.WithLabelValues(lv...).Set(now.Sub(ps.caughtUpAt).Seconds())
	case !ps.assignedAt.IsZero():
		// Not caught up since the partition was assigned, nothing read
		// yet: the oldest record is at least as old as the assignment.
		w.m.lagSeconds.WithLabelValues(lv...).Set(now.Sub(ps.assignedAt).Seconds())
	}
}
