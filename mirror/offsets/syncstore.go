package offsets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/mirror/mm2"
)

// ErrSyncTopicCompacted is wrapped by EnsureSyncTopic's error when the
// offset-syncs topic exists with cleanup.policy=compact (as MM2 creates it).
var ErrSyncTopicCompacted = errors.New("offsets: offset-syncs topic is compacted")

// ErrSyncTopicRetention is wrapped by EnsureSyncTopic's error when the
// offset-syncs topic exists and the cluster refused to set its retention.ms.
var ErrSyncTopicRetention = errors.New("offsets: offset-syncs topic keeps its retention")

// SyncTopicUsable reports whether EnsureSyncTopic's err leaves the topic
// usable: nil, or a warning (ErrSyncTopicCompacted, ErrSyncTopicRetention)
// about what it keeps.
func SyncTopicUsable(err error) bool {
	return err == nil || errors.Is(err, ErrSyncTopicCompacted) || errors.Is(err, ErrSyncTopicRetention)
}

// EnsureSyncTopic creates the offset-syncs topic name (on the flow's
// source, or its target: see mirror.Flow.SyncsTopic) with one partition,
// replicationFactor replicas (-1: the cluster's default.replication.factor,
// which is 1 unless set: syncs lost with one broker), cleanup.policy=delete and retention.ms=retentionMs (-1 keeps syncs
// forever). Give it at least the longest retention of the mirrored source
// topics: a position older than the oldest sync kept cannot be translated.
// An existing topic gets retentionMs too, so the flow's setting is the one
// that holds (a value set on the topic by hand is replaced); if the cluster
// refuses, the error wraps ErrSyncTopicRetention and the topic is used as
// it is.
//
// MM2 compacts this topic, keeping only the newest sync per partition, so
// after a restart it can translate only near the head (KAFKA-15905); kdr
// deletes by age instead so that the history survives. If the topic exists
// and is compacted, the error wraps ErrSyncTopicCompacted: translation
// still works, for positions after the syncs compaction kept; change the
// topic's cleanup.policy to delete to keep history.
func EnsureSyncTopic(ctx context.Context, adm *kadm.Client, name string, retentionMs int64, replicationFactor int16) error {
	retention := fmt.Sprint(retentionMs)
	resp, err := adm.CreateTopic(ctx, 1, replicationFactor, map[string]*string{
		"cleanup.policy": kadm.StringPtr("delete"),
		"retention.ms":   &retention,
	}, name)
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		if err != nil {
			return fmt.Errorf("offsets: creating offset-syncs topic %s: %w", name, err)
		}
		return nil
	}
	configs, err := adm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		return fmt.Errorf("offsets: describing offset-syncs topic %s: %w", name, err)
	}
	rc, err := configs.On(name, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return fmt.Errorf("offsets: describing offset-syncs topic %s: %w", name, err)
	}
	have := ""
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil && strings.Contains(*c.Value, "compact") {
			return fmt.Errorf("%w: %s has cleanup.policy=%s, so older syncs are compacted away and only positions near the head translate; set cleanup.policy=delete", ErrSyncTopicCompacted, name, *c.Value)
		}
		if c.Key == "retention.ms" && c.Value != nil {
			have = *c.Value
		}
	}
	if have == retention {
		return nil
	}
	// The flow's retention is the one to keep: raising it for topics kept
	// longer must reach a topic an earlier run created.
	resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &retention}}, name)
	if err == nil {
		var r kadm.AlterConfigsResponse
		if r, err = resps.On(name, nil); err == nil {
			err = r.Err
		}
	}
	if err != nil {
		return fmt.Errorf("%w: setting retention.ms=%s on %s (it has %s) failed: %w; syncs older than its retention cannot be translated: grant the mirror's principal ALTER_CONFIGS on the topic or set retention.ms on it by hand",
			ErrSyncTopicRetention, retention, name, have, err)
	}
	return nil
}

// SyncStoreConfig configures a SyncStore.
type SyncStoreConfig struct {
	// Source reaches the cluster holding the offset-syncs topic: the
	// flow's source, or its target (MM2's offset-syncs.topic.location):
	// seed brokers, TLS, SASL. The store adds its own consuming options.
	Source []kgo.Opt
	// TargetAlias names the flow's target; the topic is
	// mm2.OffsetSyncsTopic(TargetAlias) unless Topic is set.
	TargetAlias string
	Topic       string
	// Flow labels metrics ("east->west").
	Flow       string
	Logger     *slog.Logger          // nil: slog.Default()
	Registerer prometheus.Registerer // nil: no metrics
}

// SyncStore reads a flow's offset-syncs topic from the beginning into one
// Index per source partition, follows new syncs, and translates. Safe for
// concurrent use. Every partition of the topic is read (MM2 and kdr write
// to partition 0 only).
type SyncStore struct {
	topic string
	cl    *kgo.Client
	log   *slog.Logger
	m     storeMetrics

	mu  sync.RWMutex
	idx map[string]map[int32]*Index

	ready     chan struct{}
	readyOnce sync.Once
	stopped   chan struct{} // closed when Run returns
	runErr    error
}

// NewSyncStore connects to the source. Call Run to read, and Close when
// done.
func NewSyncStore(cfg SyncStoreConfig) (*SyncStore, error) {
	topic := cfg.Topic
	if topic == "" {
		if cfg.TargetAlias == "" {
			return nil, errors.New("offsets: SyncStoreConfig needs Topic or TargetAlias")
		}
		topic = mm2.OffsetSyncsTopic(cfg.TargetAlias)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	opts := append(slices.Clone(cfg.Source),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(time.Second),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("offsets: sync store client: %w", err)
	}
	return &SyncStore{
		topic:   topic,
		cl:      cl,
		log:     logger.With("component", "offset-syncs", "topic", topic),
		m:       newStoreMetrics(cfg.Registerer, cfg.Flow),
		idx:     map[string]map[int32]*Index{},
		ready:   make(chan struct{}),
		stopped: make(chan struct{}),
	}, nil
}

// Topic is the offset-syncs topic read.
func (s *SyncStore) Topic() string { return s.topic }

// Close stops reading; a running Run returns.
func (s *SyncStore) Close() { s.cl.Close() }

// Run reads syncs until ctx ends or the store is closed; call it once. It
// first notes the topic's end offsets, and WaitReady returns once they are
// read. A missing topic counts as empty; it is read once it appears.
func (s *SyncStore) Run(ctx context.Context) error {
	err := s.run(ctx)
	s.runErr = err
	close(s.stopped)
	return err
}

func (s *SyncStore) run(ctx context.Context) error {
	pending, err := s.endOffsets(ctx)
	if err != nil {
		return nil // ctx ended
	}
	if len(pending) == 0 {
		s.markReady()
	}
	for {
		fs := s.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		failed := false
		fs.EachError(func(topic string, p int32, err error) {
			failed = true
			s.log.Warn("reading offset syncs", "partition", p, "err", err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			s.apply(r)
			if end, ok := pending[r.Partition]; ok && r.Offset+1 >= end {
				delete(pending, r.Partition)
				if len(pending) == 0 {
					s.markReady()
				}
			}
		})
		if failed {
			select { // the client retries; do not spin on a persistent error
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// endOffsets returns, per partition that has records, the end offset to
// read up to before the store is ready. It retries until ctx ends.
func (s *SyncStore) endOffsets(ctx context.Context) (map[int32]int64, error) {
	adm := kadm.NewClient(s.cl)
	for {
		starts, err := adm.ListStartOffsets(ctx, s.topic)
		var ends kadm.ListedOffsets
		if err == nil {
			ends, err = adm.ListEndOffsets(ctx, s.topic)
		}
		if err == nil {
			pending := map[int32]int64{}
			ends.Each(func(o kadm.ListedOffset) {
				if o.Err != nil && !errors.Is(o.Err, kerr.UnknownTopicOrPartition) && err == nil {
					err = o.Err
				}
				if st, ok := starts.Lookup(o.Topic, o.Partition); o.Err == nil && ok && st.Err == nil && st.Offset < o.Offset {
					pending[o.Partition] = o.Offset
				}
			})
			if err == nil {
				if len(ends[s.topic]) == 0 || ends[s.topic][-1].Err != nil {
					s.log.Info("offset-syncs topic does not exist yet; nothing to translate until it does")
				}
				return pending, nil
			}
		}
		s.log.Warn("listing offset-syncs end offsets; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (s *SyncStore) apply(r *kgo.Record) {
	sync, err := mm2.DecodeOffsetSync(r.Key, r.Value)
	if err != nil {
		s.m.invalid.Inc()
		s.log.Warn("skipping a record that is not an offset sync", "partition", r.Partition, "offset", r.Offset, "err", err)
		return
	}
	s.m.read.Inc()
	p := Pair{Upstream: sync.UpstreamOffset, Downstream: sync.DownstreamOffset}
	ix := s.index(sync.Topic, sync.Partition, true)
	if !ix.Incarnation(TopicIDOf(r)) {
		return // a late sync of a topic since deleted and re-created
	}
	if IsPosition(r) {
		ix.AddPosition(PositionFromWire(p))
		return
	}
	ix.Add(p)
}

// TopicIDHeader carries, on an offset sync kdr writes, the source topic's
// id (16 bytes): a topic deleted and re-created under the same name starts
// its offsets again, and the id tells its syncs from the deleted one's
// (Index.Incarnation). MM2's readers ignore it.
const TopicIDHeader = "kdr-topic-id"

// TopicIDOf is the source topic id an offset-sync record carries
// (TopicIDHeader); zero if it carries none.
func TopicIDOf(r *kgo.Record) [16]byte {
	var id [16]byte
	for _, h := range r.Headers {
		if h.Key == TopicIDHeader && len(h.Value) == len(id) {
			copy(id[:], h.Value)
		}
	}
	return id
}

// PositionHeader marks an offset sync that is a copier's position
// (Emitter.Position) rather than a copied record. On the wire a position
// (P, D) is written as (P, D-1): the last copied record's target offset.
// MM2's readers ignore headers and answer an offset u past a sync s with
// s.Downstream+1; read as written, a position gives them D-1 for u = P
// (one record read again) and D for any u after it, which skips nothing,
// where (P, D) would give D+1 and skip the record copied to D.
const PositionHeader = "kdr-position"

// IsPosition reports whether an offset-sync record carries PositionHeader.
func IsPosition(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == PositionHeader {
			return true
		}
	}
	return false
}

// PositionToWire is the pair written for position p (see PositionHeader).
func PositionToWire(p Pair) Pair { return Pair{Upstream: p.Upstream, Downstream: p.Downstream - 1} }

// PositionFromWire is the position a pair written by PositionToWire stands
// for.
func PositionFromWire(w Pair) Pair { return Pair{Upstream: w.Upstream, Downstream: w.Downstream + 1} }

func (s *SyncStore) markReady() { s.readyOnce.Do(func() { close(s.ready) }) }

// WaitReady returns once Run has read the syncs that were in the topic
// when it started, or an error if ctx ends or Run stops first.
func (s *SyncStore) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("offsets: waiting for offset syncs of %s: %w", s.topic, ctx.Err())
	case <-s.stopped:
		select {
		case <-s.ready:
			return nil
		default:
		}
		return fmt.Errorf("offsets: sync store for %s stopped before it was ready (err: %v)", s.topic, s.runErr)
	}
}

// Add records a sync for source topic/partition, as reading it from the
// topic would. A copier in the same process may feed its syncs here too.
func (s *SyncStore) Add(topic string, partition int32, p Pair) {
	s.index(topic, partition, true).Add(p)
}

// index returns topic/partition's Index, creating it if create is set.
func (s *SyncStore) index(topic string, partition int32, create bool) *Index {
	s.mu.RLock()
	ix := s.idx[topic][partition]
	s.mu.RUnlock()
	if ix != nil || !create {
		return ix
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.idx[topic]
	if ps == nil {
		ps = map[int32]*Index{}
		s.idx[topic] = ps
	}
	if ix = ps[partition]; ix == nil {
		ix = NewIndex()
		ps[partition] = ix
	}
	return ix
}

// Translate translates source topic/partition's offset upstream (see
// Index.Translate).
func (s *SyncStore) Translate(topic string, partition int32, upstream int64) (int64, bool) {
	d, st := s.Lookup(topic, partition, upstream)
	return d, st == Translated
}

// Lookup is Translate with the reason for a failure; a partition without
// syncs gives NoSyncs.
func (s *SyncStore) Lookup(topic string, partition int32, upstream int64) (int64, Status) {
	ix := s.index(topic, partition, false)
	if ix == nil {
		return 0, NoSyncs
	}
	return ix.Lookup(upstream)
}

// HasTopic reports whether any sync for source topic has been read.
func (s *SyncStore) HasTopic(topic string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.idx[topic]) > 0
}

// Topics lists the source topics with syncs, sorted.
func (s *SyncStore) Topics() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.idx))
	for t := range s.idx {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// TrimBefore forgets topic/partition's syncs below upstream, the source
// partition's log start offset (see Index.TrimBefore).
func (s *SyncStore) TrimBefore(topic string, partition int32, upstream int64) {
	if ix := s.index(topic, partition, false); ix != nil {
		ix.TrimBefore(upstream)
	}
}
