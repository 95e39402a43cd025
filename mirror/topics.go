package mirror

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/mirror/mm2"
	"github.com/kdr-io/kdr/mirror/naming"
)

// topicState is one source topic the flow mirrors.
type topicState struct {
	name, remote string
	id           kadm.TopicID
	partitions   int32 // on the source
	ready        bool  // the remote topic exists; the topic is consumed
	gone         bool  // deleted on the source
	deletePend   bool  // gone, and its remote topic is to be deleted (SyncTopicDeletions)
	remoteGone   bool  // its remote topic was deleted by this worker
	// stale are, for a gone topic and then the topic of its name that
	// succeeds it, the positions its partitions had in the worker. The
	// successor's offsets start again, so until a partition's first fetch
	// of the new topic works (successorPart) a position from the old one
	// (a commit of which may have raced the deletion, or been kept by the
	// source) is not resumed from, and one past the new log's end means
	// the log start, not an unclean truncation (resetOutOfRange).
	stale     map[int32][]int64
	cfgFailed map[string]string // config → value the target refused; not retried until it changes
	// syncsExpireFirst says why the source keeps the topic's records
	// longer than the offset-syncs topic keeps syncs; empty when it does not
	// or is not known.
	syncsExpireFirst string

	records, skippedLoop, skippedTooLarge int64
}

// manage runs the topic manager: a refresh at start, then every
// RefreshInterval, sooner when the copy loop asks, and with backoff while
// refreshes fail.
func (w *Worker) manage(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		err := w.refresh(ctx)
		w.mu.Lock()
		w.refreshErr = err
		if err == nil {
			w.refreshes++
		}
		w.mu.Unlock()
		wait := w.flow.RefreshInterval
		if err != nil {
			backoff = min(max(2*backoff, minBackoff), w.flow.RefreshInterval)
			wait = backoff
		} else {
			backoff = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-w.refreshNow:
			t.Stop()
		}
	}
}

// refresh lists the source's topics and brings the target in line: internal
// topics, remote topics (created, grown, reconfigured), consumption, lag.
func (w *Worker) refresh(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, max(w.flow.RefreshInterval, 30*time.Second))
	defer cancel()
	w.ensureInternalTopics(rctx)
	src, err := w.srcAdm.ListTopics(rctx)
	if err != nil {
		err = fmt.Errorf("listing source topics: %w", w.explainAuth(KindSource, err))
		w.noteErr(KindSource, err)
		return err
	}
	w.dropDeleted(src)
	w.deleteRemotes(rctx)
	wanted := map[string]kadm.TopicDetail{}
	for name, td := range src {
		if td.Err != nil {
			continue
		}
		if ok, _ := w.rules.ShouldReplicate(w.flow.SourceAlias, w.flow.TargetAlias, name); ok {
			wanted[name] = td
		}
	}
	if len(wanted) == 0 {
		return w.refreshLag(rctx)
	}
	if err := w.ensureRemotes(rctx, wanted); err != nil {
		return err
	}
	w.syncACLs(rctx)
	return w.refreshLag(rctx)
}

// ensureInternalTopics creates the offset-syncs topic (on the source, or the
// target with Flow.OffsetSyncsLocation SyncsOnTarget) and the heartbeats
// topic on the target, once each.
func (w *Worker) ensureInternalTopics(ctx context.Context) {
	w.mu.Lock()
	syncReady, hbReady := w.syncReady, w.hbReady
	w.mu.Unlock()
	if !syncReady {
		rf, err := w.internalRF(ctx, w.syncAdm, w.syncKind)
		var warning error
		if err == nil {
			warning, err = ensureSyncTopic(ctx, w.syncAdm, w.syncTopic, w.flow.OffsetSyncsRetention, rf)
		}
		switch {
		case err != nil:
			if w.syncKind == KindSource && (errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed)) {
				err = fmt.Errorf("%w: a principal that may only read the source can keep the syncs on the target with --offset-syncs-topic-location target (topology: mirror.offsetSyncsTopicLocation)", err)
			}
			w.noteErr(KindTopic, fmt.Errorf("creating %s on the %s: %w", w.syncTopic, w.syncKind, err))
		case warning != nil:
			w.log.Warn("offset-syncs topic", "topic", w.syncTopic, "warning", warning)
			fallthrough
		default:
			syncReady = true
		}
	}
	if !hbReady && w.flow.HeartbeatInterval > 0 {
		rf, err := w.internalRF(ctx, w.tgtAdm, KindTarget)
		if err == nil {
			var resp kadm.CreateTopicResponse
			resp, err = createTopic(ctx, w.tgtAdm, 1, rf, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, mm2.HeartbeatsTopic)
			if err == nil && resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
				err = resp.Err
			}
		}
		if err != nil {
			w.noteErr(KindTopic, fmt.Errorf("creating %s on the target: %w", mm2.HeartbeatsTopic, err))
		} else {
			hbReady = true
		}
	}
	w.mu.Lock()
	w.syncReady, w.hbReady = syncReady, hbReady
	w.mu.Unlock()
}

// internalRF is the replication factor of internal topics (heartbeats and
// checkpoints on the target, offset syncs where they live) on the cluster
// adm reaches, of kind KindSource or KindTarget: ReplicationFactor, or 3
// capped at the cluster's broker count (MM2's *.topic.replication.factor
// default, 3). Not the cluster's default.replication.factor, which is 1
// unless set: a broker lost would take the syncs, and exact translation,
// with it.
func (w *Worker) internalRF(ctx context.Context, adm *kadm.Client, kind string) (int16, error) {
	if w.flow.ReplicationFactor > 0 {
		return w.flow.ReplicationFactor, nil
	}
	n, err := w.brokerCount(ctx, adm, kind)
	return w.flow.InternalReplicationFactor(n), err
}

func (w *Worker) targetBrokers(ctx context.Context) (int, error) {
	return w.brokerCount(ctx, w.tgtAdm, KindTarget)
}

func (w *Worker) brokerCount(ctx context.Context, adm *kadm.Client, kind string) (int, error) {
	n, err := BrokerCount(ctx, adm)
	if err != nil {
		w.noteErr(kind, fmt.Errorf("reading %s metadata: %w", kind, err))
	}
	return n, err
}

// dropDeleted stops mirroring topics that disappeared from the source (or
// were recreated, under a new topic ID): they are purged from consumption
// and their partitions dropped, so that they cannot wedge the flow.
func (w *Worker) dropDeleted(src kadm.TopicDetails) {
	var gone []string
	drop := map[string][]int32{}
	w.mu.Lock()
	for name, ts := range w.topics {
		td, ok := src[name]
		recreated := ok && td.Err == nil && td.ID != ts.id && td.ID != (kadm.TopicID{}) && ts.id != (kadm.TopicID{})
		if ts.gone || ok && !errors.Is(td.Err, kerr.UnknownTopicOrPartition) && !recreated {
			continue
		}
		ts.gone, ts.ready = true, false
		ts.deletePend = w.flow.SyncTopicDeletions && !recreated
		gone = append(gone, name)
		ts.stale = map[int32][]int64{}
		for tp, ps := range w.parts {
			if tp.topic == name {
				drop[name] = append(drop[name], tp.partition)
				ts.stale[tp.partition] = []int64{ps.committed, ps.next, ps.fetchAt}
			}
		}
	}
	w.mu.Unlock()
	if len(gone) == 0 {
		return
	}
	sort.Strings(gone)
	w.consumer.PurgeTopicsFromConsuming(gone...)
	w.drop(drop)
	// Every topic is logged: deletions are rare, and which topics the
	// worker dropped is what an operator needs (noteErr logs one a kind
	// in 5 s).
	for _, name := range gone {
		err := fmt.Errorf("topic %q was deleted on the source (or recreated); its partitions are dropped", name)
		w.recordErr(KindTopicDeleted, err)
		w.log.Warn("mirror error", "kind", KindTopicDeleted, "err", err, "topic", name)
	}
}

// deleteRemotes deletes, on the target, the remote topics of source topics
// that dropDeleted saw deleted, when SyncTopicDeletions is on. The topics
// are first looked up again on the source: only one the source confirms
// is gone has its remote topic deleted, so a metadata answer that merely
// missed a topic deletes nothing. Only remote topics this flow mirrors
// are candidates, named by the flow's naming policy; a deletion that
// fails is retried at the next refresh.
func (w *Worker) deleteRemotes(ctx context.Context) {
	if !w.flow.SyncTopicDeletions {
		return
	}
	pending := map[string]string{} // source topic → remote topic
	w.mu.Lock()
	for name, ts := range w.topics {
		if ts.deletePend {
			pending[name] = ts.remote
		}
	}
	w.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(pending))
	src, err := w.srcAdm.ListTopics(ctx, names...)
	if err != nil {
		w.noteErr(KindSource, fmt.Errorf("confirming deleted source topics %v: %w", names, err))
		return
	}
	var remotes []string
	bySource := map[string]string{} // remote → source topic
	for _, name := range names {
		remote := pending[name]
		td, listed := src[name]
		confirmed := !listed || errors.Is(td.Err, kerr.UnknownTopicOrPartition)
		ok, _ := w.rules.ShouldReplicate(w.flow.SourceAlias, w.flow.TargetAlias, name)
		if !confirmed || !ok || remote != w.policy.RemoteTopic(w.flow.SourceAlias, name) {
			// Back on the source (or, never, not the flow's): keep it.
			w.setDeletePending(name, false, false)
			continue
		}
		remotes = append(remotes, remote)
		bySource[remote] = name
	}
	if len(remotes) == 0 {
		return
	}
	resps, err := w.tgtAdm.DeleteTopics(ctx, remotes...)
	if err != nil {
		w.noteErr(KindTopic, fmt.Errorf("deleting remote topics %v: %w", remotes, err))
		return
	}
	for _, remote := range remotes {
		name := bySource[remote]
		r, ok := resps[remote]
		switch {
		case !ok:
			w.noteErr(KindTopic, fmt.Errorf("the answer to deleting %s does not mention it", remote))
		case errors.Is(r.Err, kerr.UnknownTopicOrPartition):
			w.setDeletePending(name, false, false) // gone already (another worker of the flow, or an operator)
			w.limits.Delete(remote)
		case r.Err != nil:
			w.noteErr(KindTopic, fmt.Errorf("deleting remote topic %s: %w", remote, kafkaErr(r.Err, r.ErrMessage)), "topic", name)
		default:
			w.setDeletePending(name, false, true)
			w.limits.Delete(remote)
			// A remote topic created again (the source topic comes back)
			// has a new id, which franz-go adopts only for a purged topic.
			w.target.PurgeTopicsFromProducing(remote)
			w.m.deleted.WithLabelValues(w.flow.Name()).Inc()
			w.log.Info("deleted remote topic: its source topic was deleted", "topic", name, "remote_topic", remote)
		}
	}
	w.target.ForceMetadataRefresh()
}

func (w *Worker) setDeletePending(name string, pending, deleted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ts := w.topics[name]; ts != nil && ts.gone {
		ts.deletePend = pending
		ts.remoteGone = ts.remoteGone || deleted
	}
}

// ensureRemotes creates missing remote topics, grows short ones, syncs
// configs, learns each remote topic's max.message.bytes, and starts
// consuming topics whose remote topic is ready.
func (w *Worker) ensureRemotes(ctx context.Context, wanted map[string]kadm.TopicDetail) error {
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range wanted {
			if !yield(n) {
				return
			}
		}
	})
	remotes := make([]string, len(names))
	for i, n := range names {
		remotes[i] = w.policy.RemoteTopic(w.flow.SourceAlias, n)
	}
	tgt, err := w.tgtAdm.ListTopics(ctx, remotes...)
	if err != nil {
		err = fmt.Errorf("listing target topics: %w", w.explainAuth(KindTarget, err))
		w.noteErr(KindTarget, err)
		return err
	}
	srcCfg := w.sourceConfigs(ctx, names)
	var brokers int
	var added []string
	for i, name := range names {
		sd, remote := wanted[name], remotes[i]
		parts := int32(len(sd.Partitions))
		td, exists := tgt[remote]
		switch {
		case !exists || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
			if brokers == 0 {
				if brokers, err = w.targetBrokers(ctx); err != nil {
					return err
				}
			}
			ok, created := w.createRemote(ctx, name, remote, sd, brokers, srcCfg[name])
			if !ok {
				continue
			}
			// Created now, for a topic whose remote topic existed: it was
			// deleted on the target. (A listing that merely missed the
			// topic, from franz-go's cached metadata, gets TOPIC_ALREADY_EXISTS.)
			w.mu.Lock()
			ts := w.topics[name]
			vanished := created && ts != nil && ts.ready && !ts.gone && !ts.remoteGone
			w.mu.Unlock()
			if vanished {
				// franz-go never adopts a re-created topic's new id: until
				// the topic is purged from the producer, every copy to it
				// fails with UNKNOWN_TOPIC_ID.
				w.target.PurgeTopicsFromProducing(remote)
				// Copying goes on from the worker's positions, so the
				// new remote topic lacks what was copied before, and the
				// offset syncs written for the old one describe another
				// log (mirror/offsets: Limits).
				w.noteErr(KindTopic, fmt.Errorf("remote topic %s was deleted on the target and has been re-created: the records copied before are not in it, and group offsets translated for it point into the deleted log; to copy %s again from the source's log start, stop the flow's workers, run `kdr group reset-offsets %s --topic %s --to-earliest --execute --brokers <source>`, delete %s on the target and start the workers", remote, name, w.flow.Group(), name, remote), "topic", name)
			}
		case td.Err != nil:
			w.noteErr(KindTopic, fmt.Errorf("remote topic %s: %w", remote, td.Err))
			continue
		case int32(len(td.Partitions)) < parts:
			if !w.growRemote(ctx, remote, parts) {
				continue
			}
		}
		w.mu.Lock()
		ts := w.topics[name]
		if ts == nil || ts.gone { // a topic of a gone one's name is new and starts over
			next := &topicState{name: name, remote: remote, id: sd.ID, cfgFailed: map[string]string{}}
			switch {
			case ts == nil:
			case ts.id == sd.ID && sd.ID != (kadm.TopicID{}):
				// The same topic back: a metadata answer missed it (a
				// broker serving an old state). Its positions are its
				// own; copying resumes from them.
				w.log.Warn("topic taken for deleted is back with the same topic id: resuming from its positions", "topic", name)
			default:
				next.stale = ts.stale
			}
			ts = next
			w.topics[name] = ts
		}
		ts.partitions = parts
		newlyReady := !ts.ready
		ts.ready = true
		w.mu.Unlock()
		if newlyReady {
			added = append(added, name)
		}
	}
	w.syncConfigs(ctx, names, remotes, srcCfg)
	if len(added) > 0 {
		w.log.Info("mirroring topics", "topics", added)
		w.consumer.AddConsumeTopics(added...)
		w.checkSyncRetention(ctx, added)
	}
	return nil
}

// checkSyncRetention warns, once per topic as it starts being mirrored,
// when the source keeps its records longer than the offset-syncs topic
// keeps syncs (OffsetSyncsRetention): a group further behind than that
// cannot be translated once the syncs covering its position expire, which
// a worker that restarts or `kdr mirror translate` then finds missing. The
// check is advisory: if the configs cannot be read it is skipped.
func (w *Worker) checkSyncRetention(ctx context.Context, topics []string) {
	rcs, err := w.srcAdm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return
	}
	keep := w.flow.OffsetSyncsRetention.Milliseconds()
	for _, rc := range rcs {
		// Heartbeats topics are kdr's and MM2's own, compacted, and no
		// consumer group's offsets on them need translating.
		if rc.Err != nil || naming.IsHeartbeats(w.policy, rc.Name) {
			continue
		}
		var policy, retention string
		for _, c := range rc.Configs {
			switch {
			case c.Value == nil:
			case c.Key == "cleanup.policy":
				policy = *c.Value
			case c.Key == "retention.ms":
				retention = *c.Value
			}
		}
		ms, perr := strconv.ParseInt(retention, 10, 64)
		why := ""
		switch {
		case strings.Contains(policy, "compact"):
			why = "cleanup.policy=" + policy + ": records are kept without a time limit"
		case perr == nil && ms < 0:
			why = "retention.ms=-1: records are kept without a time limit"
		case perr == nil && ms > keep:
			why = fmt.Sprintf("retention.ms=%d (%v)", ms, time.Duration(ms)*time.Millisecond)
		default:
			continue
		}
		w.log.Warn("offset syncs expire before the topic's records: positions further behind than the offset-syncs retention cannot be translated once their syncs expire; raise offset-syncs-retention (offsetSyncsRetention in a topology) to the topic's retention",
			"topic", rc.Name, "kept", why, "offset_syncs_retention", w.flow.OffsetSyncsRetention)
		w.mu.Lock()
		if ts := w.topics[rc.Name]; ts != nil {
			ts.syncsExpireFirst = why
		}
		w.mu.Unlock()
	}
}

// createRemote creates a remote topic with the source's partition count and
// replication factor (capped at the target's brokers; an override is not) and
// the synced configs. If the target refuses a config, the topic is created
// without them and the refusal reported. ok is false when the topic is not
// there; created is true when this call made it.
func (w *Worker) createRemote(ctx context.Context, name, remote string, sd kadm.TopicDetail, brokers int, cfg map[string]string) (ok, created bool) {
	rf := remoteRF(w.flow, sd, brokers)
	configs := map[string]*string{}
	for k, v := range cfg {
		configs[k] = kadm.StringPtr(v)
	}
	parts := int32(len(sd.Partitions))
	resp, err := createTopic(ctx, w.tgtAdm, parts, rf, configs, remote)
	if err == nil && resp.Err != nil && len(configs) > 0 && !errors.Is(resp.Err, kerr.TopicAlreadyExists) && !errors.Is(resp.Err, kerr.InvalidReplicationFactor) {
		w.noteErr(KindConfig, fmt.Errorf("creating %s with configs %v: %w; creating it without them", remote, cfg, kafkaErr(resp.Err, resp.ErrMessage)))
		resp, err = createTopic(ctx, w.tgtAdm, parts, rf, nil, remote)
	}
	switch {
	case err != nil:
		w.noteErr(KindTarget, fmt.Errorf("creating %s: %w", remote, err))
		return false, false
	case errors.Is(resp.Err, kerr.TopicAlreadyExists):
		return true, false // another worker of the flow made it
	case errors.Is(resp.Err, kerr.InvalidReplicationFactor) && w.flow.ReplicationFactor > 0:
		w.noteErr(KindTopic, fmt.Errorf("creating %s: the target refuses --replication-factor %d with %d broker(s) (0 takes the source topic's, capped at the brokers): %w",
			remote, rf, brokers, kafkaErr(resp.Err, resp.ErrMessage)))
		return false, false
	case resp.Err != nil:
		w.noteErr(KindTopic, fmt.Errorf("creating %s: %w", remote, kafkaErr(resp.Err, resp.ErrMessage)))
		return false, false
	}
	w.log.Info("created remote topic", "topic", name, "remote_topic", remote, "partitions", parts, "replication_factor", rf)
	return true, true
}

// growRemote raises a remote topic's partition count to the source's.
func (w *Worker) growRemote(ctx context.Context, remote string, parts int32) bool {
	resps, err := w.tgtAdm.UpdatePartitions(ctx, int(parts), remote)
	if err == nil {
		err = resps.Error()
	}
	if err != nil && !errors.Is(err, kerr.InvalidPartitions) {
		w.noteErr(KindTopic, fmt.Errorf("growing %s to %d partitions: %w", remote, parts, err))
		return false
	}
	w.log.Info("grew remote topic", "remote_topic", remote, "partitions", parts)
	w.target.ForceMetadataRefresh()
	return true
}

// refreshLag reads the source high watermarks of the mirrored partitions
// and sets the lag gauges: the owned partitions' and the flow's.
func (w *Worker) refreshLag(ctx context.Context) error {
	w.mu.Lock()
	var topics []string
	for name, ts := range w.topics {
		if ts.ready && !ts.gone {
			topics = append(topics, name)
		}
	}
	w.mu.Unlock()
	if len(topics) == 0 {
		w.m.flowLag.WithLabelValues(w.flow.Name()).Set(0)
		return nil
	}
	ends, err := w.srcAdm.ListEndOffsets(ctx, topics...)
	if err != nil {
		w.noteErr(KindSource, fmt.Errorf("listing source end offsets: %w", err))
		return nil // lag is advisory; the copy goes on
	}
	committed := w.consumer.CommittedOffsets()
	now := time.Now()
	w.mu.Lock()
	for tp, ps := range w.parts {
		end, ok := ends.Lookup(tp.topic, tp.partition)
		if !ok || end.Err != nil {
			continue
		}
		ps.hwm = max(ps.hwm, end.Offset)
		if c, ok := committed[tp.topic][tp.partition]; ok && ps.start < 0 {
			ps.start = c.Offset
		}
		w.updateLag(ps, now)
	}
	w.mu.Unlock()
	w.refreshFlowLag(ctx, ends)
	return nil
}

// refreshFlowLag sets kdr_mirror_flow_lag_records from ends, the mirrored
// partitions' high watermarks, and the workers group's committed positions:
// what no worker has copied, owned or not. A partition the group never
// committed counts from its log start, where a worker starts it.
func (w *Worker) refreshFlowLag(ctx context.Context, ends kadm.ListedOffsets) {
	committed, err := w.srcAdm.FetchOffsets(ctx, w.flow.Group())
	if err != nil {
		w.noteErr(KindSource, fmt.Errorf("reading the committed positions of group %s: %w", w.flow.Group(), err))
		return
	}
	var lag int64
	uncommitted := map[topicPartition]int64{} // → end offset; counted from the log start
	var topics []string
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			return
		}
		if c, ok := committed.Lookup(e.Topic, e.Partition); ok && c.Err == nil && c.At >= 0 {
			lag += max(e.Offset-c.At, 0)
			return
		}
		uncommitted[topicPartition{e.Topic, e.Partition}] = e.Offset
		if !slices.Contains(topics, e.Topic) {
			topics = append(topics, e.Topic)
		}
	})
	if len(topics) > 0 {
		starts, err := w.srcAdm.ListStartOffsets(ctx, topics...)
		if err != nil {
			w.noteErr(KindSource, fmt.Errorf("listing source start offsets: %w", err))
			return
		}
		starts.Each(func(s kadm.ListedOffset) {
			if end, ok := uncommitted[topicPartition{s.Topic, s.Partition}]; ok && s.Err == nil {
				lag += max(end-s.Offset, 0)
			}
		})
	}
	w.m.flowLag.WithLabelValues(w.flow.Name()).Set(float64(lag))
}

// createTopic creates one topic. Unlike kadm's CreateTopic, err is only a
// failed request; the topic's own error is in resp.Err.
func createTopic(ctx context.Context, adm *kadm.Client, parts int32, rf int16, configs map[string]*string, name string) (kadm.CreateTopicResponse, error) {
	resps, err := adm.CreateTopics(ctx, parts, rf, configs, name)
	if err != nil {
		return kadm.CreateTopicResponse{}, err
	}
	resp, ok := resps[name]
	if !ok {
		return resp, fmt.Errorf("the answer to creating %s does not mention it", name)
	}
	return resp, nil
}

// kafkaErr adds the broker's message to a Kafka error, if it says more.
func kafkaErr(err error, msg string) error {
	if msg == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, msg)
}
