package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Log is the local replica's log, as the fetcher needs it. *storage.Log
// implements it.
type Log interface {
	LogStartOffset() int64
	LogEndOffset() int64
	LatestEpoch() int32
	EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64)
	TruncateTo(offset int64) error
	TruncateFullyAndStartAt(offset int64) error
	AppendAsFollower(batches []byte) error
}

// Assignment is one partition this broker follows.
type Assignment struct {
	Topic       string
	Partition   int32
	LeaderID    int32
	LeaderAddr  string
	LeaderEpoch int32
	Log         Log
	// Fetched is called after each successful fetch with the leader's high
	// watermark capped at the local log end offset, and after appends.
	Fetched func(highWatermark int64)
}

// FetcherConfig configures a Fetcher.
type FetcherConfig struct {
	NodeID int32
	// Dial opens connections to leaders (default: plain TCP).
	Dial Dialer
	// MaxWait is replica.fetch.wait.max.ms (default 500 ms).
	MaxWait time.Duration
	// PartitionMaxBytes is replica.fetch.max.bytes (default 1 MiB);
	// MaxBytes is replica.fetch.response.max.bytes (default 10 MiB).
	PartitionMaxBytes, MaxBytes int32
	// Backoff is replica.fetch.backoff.ms (default 200 ms).
	Backoff time.Duration
	Logger  *slog.Logger
}

func (c *FetcherConfig) defaults() {
	if c.MaxWait <= 0 {
		c.MaxWait = 500 * time.Millisecond
	}
	if c.PartitionMaxBytes <= 0 {
		c.PartitionMaxBytes = 1 << 20
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 10 << 20
	}
	if c.Backoff <= 0 {
		c.Backoff = 200 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

type tp struct {
	topic     string
	partition int32
}

// Lag is a followed partition's distance behind its leader.
type Lag struct {
	Topic     string
	Partition int32
	Records   int64         // leader high watermark − local log end offset, ≥ 0
	Behind    time.Duration // time since the replica last had the high watermark
}

// Fetcher runs one fetch loop per leader broker for the partitions this
// broker follows.
type Fetcher struct {
	cfg FetcherConfig

	mu      sync.Mutex
	loops   map[int32]*leaderLoop
	where   map[tp]int32 // partition → leader loop
	closed  bool
	wg      sync.WaitGroup
	fetches map[tp]*fetchState
}

// fetchState is per-partition progress, kept across leader changes for lag.
type fetchState struct {
	a            Assignment
	gen          uint64    // bumped by every Set, to spot stale answers
	truncate     bool      // ask OffsetForLeaderEpoch before fetching
	parkedUntil  time.Time // after a leadership error, until metadata moves on
	lagRecords   int64
	lastCaughtUp time.Time
}

// NewFetcher returns an idle fetcher.
func NewFetcher(cfg FetcherConfig) *Fetcher {
	cfg.defaults()
	return &Fetcher{cfg: cfg, loops: map[int32]*leaderLoop{}, where: map[tp]int32{}, fetches: map[tp]*fetchState{}}
}

// Set starts or updates following a partition. A new leader or leader
// epoch truncates the divergent suffix (OffsetForLeaderEpoch) before the
// next fetch.
func (f *Fetcher) Set(a Assignment) {
	key := tp{a.Topic, a.Partition}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	st, ok := f.fetches[key]
	if ok && st.a.LeaderID == a.LeaderID && st.a.LeaderEpoch == a.LeaderEpoch && st.a.LeaderAddr == a.LeaderAddr && st.a.Log == a.Log {
		return // unchanged; a parked partition stays parked briefly
	}
	if old, ok := f.where[key]; ok {
		f.loops[old].remove(key)
	}
	if !ok {
		st = &fetchState{lastCaughtUp: time.Now()}
		f.fetches[key] = st
	}
	st.a, st.truncate, st.parkedUntil = a, true, time.Time{}
	st.gen++
	loop, ok := f.loops[a.LeaderID]
	if !ok {
		loop = &leaderLoop{f: f, leader: a.LeaderID, parts: map[tp]*fetchState{}, wake: make(chan struct{}, 1),
			stop: make(chan struct{}), conn: newConn(fmt.Sprintf("kdr-replica-%d", f.cfg.NodeID), f.cfg.Dial)}
		f.loops[a.LeaderID] = loop
		f.wg.Add(1)
		go loop.run()
	}
	f.where[key] = a.LeaderID
	loop.add(key, st)
}

// Remove stops following a partition (it became leader, or was deleted).
func (f *Fetcher) Remove(topic string, partition int32) {
	key := tp{topic, partition}
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.where[key]; ok {
		f.loops[id].remove(key)
		delete(f.where, key)
	}
	delete(f.fetches, key)
}

// Lags reports every followed partition's lag.
func (f *Fetcher) Lags() []Lag {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	out := make([]Lag, 0, len(f.fetches))
	for key, st := range f.fetches {
		l := Lag{Topic: key.topic, Partition: key.partition}
		if id, ok := f.where[key]; ok {
			lp := f.loops[id]
			lp.mu.Lock()
			l.Records = st.lagRecords
			if st.lagRecords > 0 {
				l.Behind = now.Sub(st.lastCaughtUp)
			}
			lp.mu.Unlock()
		}
		out = append(out, l)
	}
	return out
}

// Close stops every loop and waits for them.
func (f *Fetcher) Close() {
	f.mu.Lock()
	f.closed = true
	for _, l := range f.loops {
		close(l.stop)
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// leaderLoop fetches every partition led by one broker in one request.
type leaderLoop struct {
	f      *Fetcher
	leader int32
	conn   *conn
	wake   chan struct{}
	stop   chan struct{}

	mu    sync.Mutex
	parts map[tp]*fetchState
}

func (l *leaderLoop) add(key tp, st *fetchState) {
	l.mu.Lock()
	l.parts[key] = st
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *leaderLoop) remove(key tp) {
	l.mu.Lock()
	delete(l.parts, key)
	l.mu.Unlock()
}

func (l *leaderLoop) run() {
	defer l.f.wg.Done()
	defer l.conn.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-l.stop
		cancel()
	}()
	log := l.f.cfg.Logger.With("leader", l.leader)
	for ctx.Err() == nil {
		trunc, fetch, addr := l.snapshot()
		if len(trunc)+len(fetch) == 0 {
			l.idle(ctx, l.f.cfg.Backoff)
			continue
		}
		var err error
		if len(trunc) > 0 {
			err = l.truncate(ctx, addr, trunc)
		} else {
			err = l.fetch(ctx, addr, fetch)
		}
		if err != nil && ctx.Err() == nil {
			log.Debug("replica fetch failed; retrying", "addr", addr, "err", err)
			l.idle(ctx, l.f.cfg.Backoff)
		}
	}
}

// idle waits for d, a new partition, or shutdown.
func (l *leaderLoop) idle(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-l.wake:
	case <-t.C:
	}
}

// snapshot returns the partitions to truncate and to fetch now, with their
// assignments as of now, and the leader's address.
func (l *leaderLoop) snapshot() (trunc, fetch map[tp]snap, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	trunc, fetch = map[tp]snap{}, map[tp]snap{}
	for key, st := range l.parts {
		if now.Before(st.parkedUntil) {
			continue
		}
		addr = st.a.LeaderAddr
		sn := snap{st: st, a: st.a, gen: st.gen}
		if st.truncate {
			trunc[key] = sn
		} else {
			fetch[key] = sn
		}
	}
	return trunc, fetch, addr
}

// current reports whether st is still the loop's state for key (a Set or
// Remove may have replaced it while a request was in flight).
func (l *leaderLoop) current(key tp, st *fetchState, gen uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.parts[key] == st && st.gen == gen
}

// snap is a partition's state and assignment as of one request; gen tells
// whether a Set replaced the assignment meanwhile.
type snap struct {
	st  *fetchState
	a   Assignment
	gen uint64
}

// truncate asks the leader where each partition's latest local epoch ends
// and cuts the local log back to it.
func (l *leaderLoop) truncate(ctx context.Context, addr string, parts map[tp]snap) error {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = 4
	req.ReplicaID = l.f.cfg.NodeID
	byTopic := map[string]int{}
	for key, sn := range parts {
		a := sn.a
		if a.Log.LatestEpoch() < 0 {
			continue // nothing with an epoch to compare: no divergence possible
		}
		i, ok := byTopic[key.topic]
		if !ok {
			i = len(req.Topics)
			byTopic[key.topic] = i
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = key.topic
			req.Topics = append(req.Topics, t)
		}
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		p.Partition, p.CurrentLeaderEpoch, p.LeaderEpoch = key.partition, a.LeaderEpoch, a.Log.LatestEpoch()
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
	}
	answers := map[tp]kmsg.OffsetForLeaderEpochResponseTopicPartition{}
	if len(req.Topics) > 0 {
		resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
		if err := l.conn.request(ctx, addr, req, resp); err != nil {
			return err
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				answers[tp{t.Topic, p.Partition}] = p
			}
		}
	}
	log := l.f.cfg.Logger
	for key, sn := range parts {
		st, a := sn.st, sn.a
		if !l.current(key, st, sn.gen) {
			continue
		}
		if a.Log.LatestEpoch() >= 0 {
			ans, ok := answers[key]
			if !ok || ans.ErrorCode != 0 {
				l.park(key, st, sn.gen, ans.ErrorCode)
				continue
			}
			target := divergence(a.Log, ans.LeaderEpoch, ans.EndOffset)
			if leo := a.Log.LogEndOffset(); target < leo {
				log.Info("truncating divergent log suffix", "topic", key.topic, "partition", key.partition,
					"from", leo, "to", target, "leader", l.leader, "leader_epoch", a.LeaderEpoch)
				if err := a.Log.TruncateTo(target); err != nil {
					return fmt.Errorf("truncating %s-%d to %d: %w", key.topic, key.partition, target, err)
				}
			}
		}
		l.mu.Lock()
		if l.parts[key] == st && st.gen == sn.gen {
			st.truncate = false
		}
		l.mu.Unlock()
	}
	return nil
}

// divergence is where the local log must be cut so that it is a prefix of
// the leader's: the leader says its log holds epoch leaderEpoch up to
// endOffset (exclusive).
func divergence(lg Log, leaderEpoch int32, endOffset int64) int64 {
	leo := lg.LogEndOffset()
	if leaderEpoch < 0 || endOffset < 0 {
		// The leader knows no epoch at or before ours: keep nothing
		// that could diverge; fetching from the start re-syncs.
		return lg.LogStartOffset()
	}
	target := min(leo, endOffset)
	if leaderEpoch < lg.LatestEpoch() {
		// The leader never saw our latest epoch: we may only keep what
		// we have of the epoch it names.
		if _, end := lg.EndOffsetForEpoch(leaderEpoch); end >= 0 {
			target = min(target, end)
		}
	}
	return max(target, lg.LogStartOffset())
}

// park stops fetching a partition for a while after a leadership error;
// the metadata update that fixes it calls Set, which unparks it.
func (l *leaderLoop) park(key tp, st *fetchState, gen uint64, code int16) {
	l.f.cfg.Logger.Debug("replica fetch parked", "topic", key.topic, "partition", key.partition,
		"leader", l.leader, "err", kerr.ErrorForCode(code))
	// A leader that does not know it leads yet (NOT_LEADER_OR_FOLLOWER,
	// UNKNOWN_LEADER_EPOCH) applies the same metadata within milliseconds:
	// retry soon, or every acks=all write waits out the park after a
	// failover. Other errors wait for our own metadata to move on.
	park := 5 * l.f.cfg.Backoff
	if code == kerr.NotLeaderForPartition.Code || code == kerr.UnknownLeaderEpoch.Code {
		park = l.f.cfg.Backoff / 4
	}
	l.mu.Lock()
	if l.parts[key] == st && st.gen == gen {
		st.parkedUntil = time.Now().Add(park)
		st.truncate = true
	}
	l.mu.Unlock()
}

func (l *leaderLoop) fetch(ctx context.Context, addr string, parts map[tp]snap) error {
	cfg := l.f.cfg
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.ReplicaID = cfg.NodeID
	req.MaxWaitMillis = int32(cfg.MaxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = cfg.MaxBytes
	req.SessionEpoch = -1
	byTopic := map[string]int{}
	offsets := map[tp]int64{}
	for key, sn := range parts {
		a := sn.a
		i, ok := byTopic[key.topic]
		if !ok {
			i = len(req.Topics)
			byTopic[key.topic] = i
			t := kmsg.NewFetchRequestTopic()
			t.Topic = key.topic
			req.Topics = append(req.Topics, t)
		}
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition, p.CurrentLeaderEpoch = key.partition, a.LeaderEpoch
		p.FetchOffset = a.Log.LogEndOffset()
		p.LastFetchedEpoch = a.Log.LatestEpoch()
		p.LogStartOffset = a.Log.LogStartOffset()
		p.PartitionMaxBytes = cfg.PartitionMaxBytes
		offsets[key] = p.FetchOffset
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
	}
	resp := kmsg.NewPtrFetchResponse()
	if err := l.conn.request(ctx, addr, req, resp); err != nil {
		return err
	}
	if resp.ErrorCode != 0 {
		return fmt.Errorf("fetch from leader %d: %w", l.leader, kerr.ErrorForCode(resp.ErrorCode))
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			key := tp{t.Topic, p.Partition}
			sn, ok := parts[key]
			if !ok || !l.current(key, sn.st, sn.gen) || sn.a.Log.LogEndOffset() != offsets[key] {
				continue
			}
			if err := l.apply(key, sn, &p, offsets[key]); err != nil {
				return err
			}
		}
	}
	return nil
}

// apply handles one partition's fetch answer.
func (l *leaderLoop) apply(key tp, sn snap, p *kmsg.FetchResponseTopicPartition, fetchOffset int64) error {
	st, a := sn.st, sn.a
	switch err := kerr.ErrorForCode(p.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange):
		if fetchOffset < p.LogStartOffset {
			// Retention removed what we need: restart at the leader's
			// log start.
			l.f.cfg.Logger.Info("follower behind the leader's log start; restarting the log there", "topic", key.topic,
				"partition", key.partition, "from", fetchOffset, "to", p.LogStartOffset)
			return a.Log.TruncateFullyAndStartAt(p.LogStartOffset)
		}
		l.park(key, st, sn.gen, p.ErrorCode) // ahead of the leader: truncate first
		return nil
	default:
		l.park(key, st, sn.gen, p.ErrorCode)
		return nil
	}
	if len(p.RecordBatches) > 0 {
		if err := a.Log.AppendAsFollower(p.RecordBatches); err != nil {
			return fmt.Errorf("appending %s-%d at %d from leader %d: %w", key.topic, key.partition, fetchOffset, l.leader, err)
		}
	}
	leo := a.Log.LogEndOffset()
	hw := min(p.HighWatermark, leo)
	l.mu.Lock()
	st.lagRecords = max(p.HighWatermark-leo, 0)
	if st.lagRecords == 0 {
		st.lastCaughtUp = time.Now()
	}
	l.mu.Unlock()
	if a.Fetched != nil {
		a.Fetched(hw)
	}
	return nil
}
