package group

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Options are the coordinator's injected dependencies.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics not registered
	Now        func() time.Time      // nil: time.Now
	// PartitionExists reports whether a topic partition exists; offset
	// commits for others answer UNKNOWN_TOPIC_OR_PARTITION. nil: all exist.
	PartitionExists func(topic string, partition int32) bool
}

// partitionState is the load state of one offsets topic partition.
type partitionState int

const (
	partitionLoading partitionState = iota + 1
	partitionLoaded
)

// Coordinator is the group coordinator of one broker.
type Coordinator struct {
	cfg     Config
	log     Log
	logger  *slog.Logger
	now     func() time.Time
	exists  func(string, int32) bool
	metrics *metrics

	mu         sync.Mutex
	groups     map[string]*group
	partitions map[int32]partitionState
	closed     bool
}

// New returns a coordinator that owns no partitions until LoadPartition.
func New(cfg Config, log Log, opts Options) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PartitionExists == nil {
		opts.PartitionExists = func(string, int32) bool { return true }
	}
	c := &Coordinator{
		cfg: cfg, log: log, logger: opts.Logger, now: opts.Now, exists: opts.PartitionExists,
		groups: map[string]*group{}, partitions: map[int32]partitionState{},
	}
	c.metrics = newMetrics(c)
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(c.metrics); err != nil {
			return nil, fmt.Errorf("group: registering metrics: %w", err)
		}
	}
	return c, nil
}

// PartitionFor returns the offsets topic partition that holds a group:
// Kafka's abs(groupId.hashCode()) % partitions, so a group lives in the same
// partition it would on Apache Kafka.
func (c *Coordinator) PartitionFor(groupID string) int32 {
	var h int32
	for _, r := range utf16Units(groupID) {
		h = 31*h + int32(r)
	}
	if h == -2147483648 { // Kafka's Utils.abs maps MIN_VALUE to 0
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % c.cfg.OffsetsTopicPartitions
}

// utf16Units is the string as Java sees it, for String.hashCode.
func utf16Units(s string) []uint16 {
	out := make([]uint16, 0, len(s))
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}

// LoadPartition replays an offsets topic partition this broker now leads.
// Until it finishes, its groups answer COORDINATOR_LOAD_IN_PROGRESS.
func (c *Coordinator) LoadPartition(ctx context.Context, p int32) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return kerr.CoordinatorNotAvailable
	}
	c.partitions[p] = partitionLoading
	c.mu.Unlock()
	start := c.now()
	loaded, err := c.replay(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || ctx.Err() != nil || c.partitions[p] != partitionLoading {
		delete(c.partitions, p)
		if err == nil {
			err = ctx.Err()
		}
		return err
	}
	for id, g := range loaded {
		c.groups[id] = g
		g.resumeAfterLoad(c)
	}
	c.partitions[p] = partitionLoaded
	c.logger.Info("group coordinator partition loaded", "partition", p, "groups", len(loaded), "took", c.now().Sub(start))
	return nil
}

// UnloadPartition forgets the groups of a partition this broker no longer
// leads; their requests answer NOT_COORDINATOR.
func (c *Coordinator) UnloadPartition(p int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.partitions, p)
	for id, g := range c.groups {
		if g.partition == p {
			g.mu.Lock()
			g.shutdown(kerr.NotCoordinator)
			g.mu.Unlock()
			delete(c.groups, id)
		}
	}
}

// Close stops all timers and wakes blocked requests.
func (c *Coordinator) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for id, g := range c.groups {
		g.mu.Lock()
		g.shutdown(kerr.CoordinatorNotAvailable)
		g.mu.Unlock()
		delete(c.groups, id)
	}
	c.partitions = map[int32]partitionState{}
}

// lookup returns the group for id, creating it (Empty) when create is set.
// The error is the Kafka code the request should answer with when this
// broker cannot serve the group.
func (c *Coordinator) lookup(id string, create bool) (*group, *kerr.Error) {
	if id == "" {
		return nil, kerr.InvalidGroupID
	}
	p := c.PartitionFor(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.partitions[p] {
	case partitionLoading:
		return nil, kerr.CoordinatorLoadInProgress
	case partitionLoaded:
	default:
		if c.closed {
			return nil, kerr.CoordinatorNotAvailable
		}
		return nil, kerr.NotCoordinator
	}
	g, ok := c.groups[id]
	if !ok && create {
		g = newGroup(id, p, c.now())
		c.groups[id] = g
	}
	if !ok && !create {
		return nil, nil
	}
	return g, nil
}

// forget removes a group that is Dead (deleted, or emptied and without
// offsets).
func (c *Coordinator) forget(g *group) {
	c.mu.Lock()
	if c.groups[g.id] == g {
		delete(c.groups, g.id)
	}
	c.mu.Unlock()
}

func (c *Coordinator) allGroups() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	return out
}

// newMemberID is Kafka's "<client id>-<uuid>".
func newMemberID(clientID string) string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s-%s", clientID, h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}

// appendErr maps a Log.Append failure to the code the client gets.
func appendErr(err error) *kerr.Error {
	if ke, ok := asKerr(err); ok {
		return ke
	}
	if err == context.Canceled || err == context.DeadlineExceeded {
		return kerr.RequestTimedOut
	}
	return kerr.CoordinatorNotAvailable
}
