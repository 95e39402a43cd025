package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/replica"
	"github.com/kdr-io/kdr/broker/storage"
	"github.com/kdr-io/kdr/internal/atomicfile"
)

// offsetsTopic is Kafka's internal topic for committed offsets and group
// metadata.
const offsetsTopic = "__consumer_offsets"

// partition is one partition replica hosted on this broker.
type partition struct {
	topic string
	index int32
	id    cluster.TopicID
	log   *storage.Log

	mu             sync.Mutex
	leaderEpoch    int32
	isLeader       bool
	replicas, isr  []int32
	partitionEpoch int32
	leader         *replica.Leader // set while this broker leads
	followerHW     int64           // the leader's high watermark, as last fetched
	alterInFlight  bool            // an ISR change is being proposed
	settings       topicSettings
	waiters        map[chan struct{}]struct{} // fetches waiting for data
}

func (p *partition) state() (leader bool, epoch int32, settings topicSettings) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.isLeader, p.leaderEpoch, p.settings
}

// addWaiter registers ch to be signalled on the next append.
func (p *partition) addWaiter(ch chan struct{}) {
	p.mu.Lock()
	p.waiters[ch] = struct{}{}
	p.mu.Unlock()
}

func (p *partition) removeWaiter(ch chan struct{}) {
	p.mu.Lock()
	delete(p.waiters, ch)
	p.mu.Unlock()
}

// notify wakes every fetch waiting on this partition. Channels have a buffer
// of one, so a waiter already signalled by another partition is skipped.
func (p *partition) notify() {
	p.mu.Lock()
	p.notifyLocked()
	p.mu.Unlock()
}

func (p *partition) notifyLocked() {
	for ch := range p.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// partitionMeta is the file Kafka also keeps in each partition directory: it
// ties the directory to a topic id, so a directory left over from a deleted
// topic is never mistaken for a re-created topic of the same name.
//
// Index is the highest metadata index (cluster.State.Index) at which this
// broker opened the directory for TopicID. A replicated broker replays the
// metadata log after a restart, so it may be handed a state from before the
// topic was deleted and re-created: a state naming another id for the same
// name is older than the directory when its index is lower, and the
// directory then belongs to the newer topic and must be kept. Directories
// written before the index was kept have 0, and are judged only against a
// caught-up state.
type partitionMeta struct {
	TopicID cluster.TopicID `json:"topic_id"`
	Index   uint64          `json:"index,omitempty"`
}

// errNewerTopicDir is openPartition's answer for a directory of a topic
// newer than the state being applied: the partition opens when a later state
// names that topic.
var errNewerTopicDir = errors.New("the directory belongs to a newer topic of the same name")

const partitionMetaFile = "partition.metadata"

func (b *Broker) partitionDir(topic string, p int32) string {
	return filepath.Join(b.cfg.DataDir, topic+"-"+strconv.Itoa(int(p)))
}

// onMetadata is the metadata store's listener.
func (b *Broker) onMetadata(prev, next *cluster.State) {
	if b.ctx.Err() != nil {
		return // shutting down: the logs are being closed
	}
	if err := b.reconcile(prev, next); err != nil {
		b.log.Error("applying metadata change", "err", err)
	}
	b.dropDeletedTopicOffsets(prev, next)
	b.serveIfCurrent(next)
	if prev.Fence != next.Fence {
		b.syncFence()
	}
}

// dropDeletedTopicOffsets removes the committed offsets of topics deleted
// (or re-created: a new topic id) between prev and next from the groups this
// broker coordinates. Only for a live change: the states raft replays after
// a restart are old, and a deletion replayed there may name a topic since
// re-created, whose offsets are the new topic's.
func (b *Broker) dropDeletedTopicOffsets(prev, next *cluster.State) {
	if prev == nil || b.raft != nil && !b.caughtUp.Load() {
		return
	}
	var deleted []string
	for name, t := range prev.Topics {
		if n, ok := next.Topics[name]; !ok || n.ID != t.ID {
			deleted = append(deleted, name)
		}
	}
	if len(deleted) == 0 {
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.coord.DeleteTopicOffsets(b.ctx, deleted)
	}()
}

// reconcile opens the logs of partitions assigned to this broker, closes and
// deletes the ones no longer assigned, and applies topic config changes.
//
// The disk work (creating, opening and deleting logs, each with fsyncs) is
// done outside b.mu, which every produce and fetch takes: holding it there
// stalled the whole broker while a topic was created. On a disk busy with
// writeback an fsync took over 100 ms, and a mirror creating its checkpoints
// topic held up the replication stream into the same broker for that long.
// A partition is in the map only once its log is open, and out of it before
// its log is deleted; meanwhile requests for it get the errors of a
// partition this broker does not have, which clients retry.
func (b *Broker) reconcile(prev, next *cluster.State) error {
	b.reconcileMu.Lock()
	defer b.reconcileMu.Unlock()
	want := b.assigned(next)
	now := time.Now()
	settings := map[string]topicSettings{} // by topic: one parse, one warning per topic
	for _, t := range want {
		if _, ok := settings[t.Name]; !ok {
			settings[t.Name] = b.settingsFor(t)
		}
	}

	type removed struct {
		key tp
		p   *partition
	}
	var gone []removed
	var missing []tp
	b.mu.Lock()
	for key, p := range b.partitions {
		if t, ok := want[key]; ok && t.ID == p.id {
			continue
		}
		delete(b.partitions, key)
		b.fetcher.Remove(key.topic, key.partition)
		if key.topic == offsetsTopic {
			b.coord.UnloadPartition(key.partition)
		}
		gone = append(gone, removed{key, p})
	}
	for key := range want {
		if _, ok := b.partitions[key]; !ok {
			missing = append(missing, key)
		}
	}
	b.mu.Unlock()

	var errs []error
	// Deleted first: a topic re-created under the same name reuses the
	// directories.
	for _, r := range gone {
		if err := r.p.log.Delete(); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s-%d: %w", r.key.topic, r.key.partition, err))
		}
		b.log.Info("partition removed", "topic", r.key.topic, "partition", r.key.partition)
	}
	opened := make(map[tp]*partition, len(missing))
	current := b.raft == nil || b.caughtUp.Load()
	for _, key := range missing {
		p, err := b.openPartition(want[key], key.partition, settings[key.topic], next.Index, current)
		if errors.Is(err, errNewerTopicDir) {
			b.log.Debug("partition not opened from an older metadata state", "topic", key.topic, "partition", key.partition,
				"metadata_index", next.Index, "err", err)
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		opened[key] = p
	}

	var loaded []int32
	b.mu.Lock()
	for key, t := range want {
		s := settings[key.topic]
		p, ok := b.partitions[key]
		if !ok {
			if p, ok = opened[key]; !ok {
				continue // did not open; the error is in errs
			}
			b.partitions[key] = p
		} else if p.log.Config() != s.log {
			if err := p.log.SetConfig(s.log); err != nil {
				errs = append(errs, fmt.Errorf("%s-%d: %w", key.topic, key.partition, err))
			}
		}
		p.mu.Lock()
		p.settings = s
		p.mu.Unlock()
		gained, lost := b.replicaRole(next, p, t.Partitions[key.partition], now)
		if key.topic == offsetsTopic {
			if gained {
				loaded = append(loaded, key.partition)
			} else if lost {
				b.coord.UnloadPartition(key.partition)
			}
		}
	}
	b.mu.Unlock()

	// Group state is loaded outside the lock: replay reads the partition
	// logs through the broker.
	for _, idx := range loaded {
		idx := idx
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := b.coord.LoadPartition(b.ctx, idx); err != nil && b.ctx.Err() == nil {
				b.log.Error("loading group coordinator partition", "partition", idx, "err", err)
			}
		}()
	}
	// A replicated broker's first state may be an old one (raft replays
	// its log after start): only a caught-up state may decide that a
	// directory is stray. See cleanStrayDirs.
	if prev == nil && b.raft == nil {
		b.removeStrayDirs(want)
	}
	return errors.Join(errs...)
}

// settingsFor is t's settings on this broker: its configs over the
// broker's defaults.
func (b *Broker) settingsFor(t *cluster.Topic) topicSettings {
	settings, err := b.cfg.topicSettingsFor(t.Configs)
	if err != nil {
		// Validated before proposing; a bad value here comes from an
		// older or newer kdr. Keep serving with the defaults.
		b.log.Warn("topic config not applied", "topic", t.Name, "err", err)
		settings = topicSettings{log: b.cfg.Log, minInsyncReplicas: b.cfg.MinInsyncReplicas}
	}
	return settings
}

// openPartition opens (or creates) a partition log as the metadata state of
// index stateIndex says, replacing a directory that belongs to an older topic
// of the same name. current says the state is known to be caught up with the
// cluster's (see partitionMeta for why a replayed one may not be).
func (b *Broker) openPartition(t *cluster.Topic, idx int32, settings topicSettings, stateIndex uint64, current bool) (*partition, error) {
	dir := b.partitionDir(t.Name, idx)
	metaPath := filepath.Join(dir, partitionMetaFile)
	index := stateIndex
	if raw, err := os.ReadFile(metaPath); err == nil {
		var m partitionMeta
		switch {
		case json.Unmarshal(raw, &m) != nil:
			b.log.Warn("removing partition directory with an unreadable "+partitionMetaFile, "dir", dir)
			if err := os.RemoveAll(dir); err != nil {
				return nil, fmt.Errorf("removing stale %s: %w", dir, err)
			}
		case m.TopicID == t.ID:
			index = max(index, m.Index)
		case m.Index > stateIndex || m.Index == 0 && !current:
			return nil, fmt.Errorf("%s (topic id %s, seen at metadata index %d; this state: id %s, index %d): %w",
				dir, m.TopicID, m.Index, t.ID, stateIndex, errNewerTopicDir)
		default:
			b.log.Warn("removing partition directory of an older topic with the same name", "dir", dir,
				"old_topic_id", m.TopicID, "topic_id", t.ID)
			if err := os.RemoveAll(dir); err != nil {
				return nil, fmt.Errorf("removing stale %s: %w", dir, err)
			}
		}
	}
	l, err := storage.Open(dir, settings.log, storage.Options{Logger: b.log.With("topic", t.Name, "partition", idx), Writeback: b.wb, OnFlush: b.metrics.flushed, FlushLimit: b.flushes})
	if err != nil {
		return nil, fmt.Errorf("opening %s-%d: %w", t.Name, idx, err)
	}
	raw, _ := json.Marshal(partitionMeta{TopicID: t.ID, Index: index})
	if err := atomicfile.Write(metaPath, raw, 0o644); err != nil {
		l.Close()
		return nil, err
	}
	return &partition{topic: t.Name, index: idx, id: t.ID, log: l, waiters: map[chan struct{}]struct{}{}}, nil
}

// assigned returns the partitions of st that have a replica on this broker.
func (b *Broker) assigned(st *cluster.State) map[tp]*cluster.Topic {
	want := map[tp]*cluster.Topic{}
	for _, t := range st.Topics {
		for i, pa := range t.Partitions {
			for _, r := range pa.Replicas {
				if r == b.cfg.NodeID {
					want[tp{t.Name, int32(i)}] = t
				}
			}
		}
	}
	return want
}

// cleanStrayDirs removes directories of deleted topics once the metadata
// has caught up: registration is applied locally only after every command
// before it, so after register returns the state is current.
//
// It first applies the current state again: a partition whose directory
// could not be judged against a replayed state (a directory from before
// partitionMeta kept an index) opens now.
func (b *Broker) cleanStrayDirs() {
	b.caughtUp.Store(true)
	st := b.meta.State()
	if err := b.reconcile(st, st); err != nil {
		b.log.Error("applying metadata after registering", "err", err)
	}
	b.reconcileMu.Lock()
	defer b.reconcileMu.Unlock()
	// The state as of now, under the lock: a topic created since st has
	// directories that are not stray.
	b.removeStrayDirs(b.assigned(b.meta.State()))
}

// removeStrayDirs deletes partition directories that no topic claims: what
// a crash between a topic deletion and its directory removal leaves behind.
func (b *Broker) removeStrayDirs(want map[tp]*cluster.Topic) {
	entries, err := os.ReadDir(b.cfg.DataDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		i := strings.LastIndexByte(name, '-')
		if !e.IsDir() || i <= 0 || strings.HasPrefix(name, "__cluster_metadata") {
			continue
		}
		n, err := strconv.Atoi(name[i+1:])
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(b.cfg.DataDir, name, partitionMetaFile)); err != nil {
			continue // not ours
		}
		if _, ok := want[tp{name[:i], int32(n)}]; !ok {
			b.log.Info("removing partition directory of a deleted topic", "dir", name)
			os.RemoveAll(filepath.Join(b.cfg.DataDir, name))
		}
	}
}

// partition returns the local replica of topic/index.
func (b *Broker) partition(topic string, index int32) (*partition, bool) {
	b.mu.RLock()
	p, ok := b.partitions[tp{topic, index}]
	b.mu.RUnlock()
	return p, ok
}

func (b *Broker) partitionExists(topic string, index int32) bool {
	t, ok := b.meta.State().Topic(topic)
	return ok && index >= 0 && index < int32(len(t.Partitions))
}

func (b *Broker) allPartitions() []*partition {
	b.mu.RLock()
	out := make([]*partition, 0, len(b.partitions))
	for _, p := range b.partitions {
		out = append(out, p)
	}
	b.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].topic != out[j].topic {
			return out[i].topic < out[j].topic
		}
		return out[i].index < out[j].index
	})
	return out
}

func (b *Broker) partitionCount() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.partitions)
}

// createTopic validates and proposes a new topic.
func (b *Broker) createTopic(ctx context.Context, name string, partitions int32, rf int16, assignment [][]int32, configs map[string]string) (*cluster.Topic, error) {
	if err := validTopicName(name); err != nil {
		return nil, err
	}
	if _, err := b.cfg.topicSettingsFor(configs); err != nil {
		return nil, err
	}
	res, err := b.meta.Propose(ctx, &cluster.CreateTopic{
		Name: name, ID: cluster.NewTopicID(), Partitions: partitions, ReplicationFactor: rf, Assignment: assignment, Configs: configs,
	})
	if err != nil {
		return nil, err
	}
	t := res.(*cluster.Topic)
	b.log.Info("topic created", "topic", name, "id", t.ID.String(), "partitions", len(t.Partitions), "replication_factor", len(t.Partitions[0].Replicas))
	return t, nil
}
