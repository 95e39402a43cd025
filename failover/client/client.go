package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/topology"
)

// Defaults of Config.
const (
	DefaultOffsetsTimeout = 60 * time.Second
	DefaultFlushTimeout   = 10 * time.Second
	DefaultCommitTimeout  = 5 * time.Second
	// watchRetry is how long the watch loop waits after a store error
	// before it watches again.
	watchRetry = time.Second
)

// Config configures a Client.
type Config struct {
	// Topology names the clusters and their bootstrap servers and client
	// security. Required.
	Topology *topology.Topology
	// Store is the topology's coordination store. Required.
	Store store.Store
	// ClientOpts are added to every franz-go client, after the seed
	// brokers and the cluster's TLS/SASL options.
	ClientOpts []kgo.Opt
	// Logger receives repoint logs (default: discard).
	Logger *slog.Logger
	// OffsetsTimeout bounds a repointing consumer's wait for
	// State.ConsumerOffsets to name the new cluster (default 60 s).
	OffsetsTimeout time.Duration
	// FlushTimeout bounds how long a repointing producer waits for the old
	// cluster's buffered records before it fails them (default 10 s).
	FlushTimeout time.Duration
	// CommitTimeout bounds a consumer's commit and leave on the old cluster
	// (default 5 s each).
	CommitTimeout time.Duration
	// OnRepoint, if set, is called after every repoint of a producer or
	// consumer (metrics hook). It must not block.
	OnRepoint func(Repoint)
}

// Repoint describes one finished repoint.
type Repoint struct {
	Role     string // "producer" or "consumer"
	From, To string // cluster names; From is "" for the first connection
	Started  time.Time
	// Duration is from noticing the change until the new cluster's client
	// was in place (for a consumer: commit, leave, offsets wait and join).
	Duration time.Duration
	// OffsetsTimedOut is set when a consumer started on To without
	// State.ConsumerOffsets naming it.
	OffsetsTimedOut bool
}

// Stats are a producer's or consumer's repoint metrics.
type Stats struct {
	Cluster     string        // the cluster in use
	Repoints    int64         // repoints done (not counting the first connection)
	LastRepoint time.Duration // duration of the last one
}

// Client follows State.Active. Its methods are safe for concurrent use.
type Client struct {
	cfg    Config
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	state   store.Versioned
	active  string
	subs    []chan string
	changed chan struct{} // closed and replaced on every state update
}

// New reads the state, resolves the active cluster and starts watching the
// store. Close stops it.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Topology == nil {
		return nil, errors.New("client: Config.Topology is nil")
	}
	if cfg.Store == nil {
		return nil, errors.New("client: Config.Store is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.OffsetsTimeout <= 0 {
		cfg.OffsetsTimeout = DefaultOffsetsTimeout
	}
	if cfg.FlushTimeout <= 0 {
		cfg.FlushTimeout = DefaultFlushTimeout
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = DefaultCommitTimeout
	}
	v, err := cfg.Store.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: reading the failover state: %w", err)
	}
	c := &Client{cfg: cfg, done: make(chan struct{}), changed: make(chan struct{})}
	active, err := c.resolve(v.State)
	if err != nil {
		return nil, err
	}
	c.state, c.active = v, active
	wctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.watch(wctx)
	return c, nil
}

// DefaultActive is the active cluster when the store has no document: the
// first active-passive primary, else the first cluster.
func DefaultActive(t *topology.Topology) string {
	for _, p := range t.Replication {
		if p.Type == topology.ActivePassive && p.Primary != "" {
			return p.Primary
		}
	}
	if len(t.Clusters) > 0 {
		return t.Clusters[0].Name
	}
	return ""
}

// resolve is s's active cluster, checked against the topology.
func (c *Client) resolve(s store.State) (string, error) {
	name := s.Active
	if name == "" {
		name = DefaultActive(c.cfg.Topology)
	}
	if c.cfg.Topology.ClusterByName(name) == nil {
		return "", fmt.Errorf("client: the active cluster %q is not in topology %s", name, c.cfg.Topology.Metadata.Name)
	}
	return name, nil
}

func (c *Client) watch(ctx context.Context) {
	defer close(c.done)
	for {
		c.mu.Lock()
		after := c.state.Version
		c.mu.Unlock()
		v, err := c.cfg.Store.Watch(ctx, after)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.cfg.Logger.Warn("client: watching the failover state", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(watchRetry):
			}
			continue
		}
		c.update(v)
	}
}

// update installs a newer state and tells subscribers when Active moved.
func (c *Client) update(v store.Versioned) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v.Version <= c.state.Version {
		return
	}
	c.state = v
	close(c.changed)
	c.changed = make(chan struct{})
	active, err := c.resolve(v.State)
	if err != nil {
		c.cfg.Logger.Error("client: ignoring the new active cluster", "err", err)
		return
	}
	if active == c.active {
		return
	}
	c.cfg.Logger.Info("client: active cluster changed", "from", c.active, "to", active, "epoch", v.State.Epoch)
	c.active = active
	for _, ch := range c.subs {
		offer(ch, active)
	}
}

// offer puts v in ch (capacity 1), replacing a value not yet received.
func offer(ch chan string, v string) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// Active is the active cluster's name.
func (c *Client) Active() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active
}

// State is the last state document seen.
func (c *Client) State() store.Versioned {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Changes returns a new subscription: it receives the active cluster's name
// after every change. A slow reader gets only the latest name.
func (c *Client) Changes() <-chan string {
	ch := make(chan string, 1)
	c.mu.Lock()
	c.subs = append(c.subs, ch)
	c.mu.Unlock()
	return ch
}

// waitState waits until cond holds for the current state, or ctx ends.
func (c *Client) waitState(ctx context.Context, cond func(store.State) bool) error {
	for {
		c.mu.Lock()
		ok, changed := cond(c.state.State), c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// kgoClient builds a franz-go client for the named cluster.
func (c *Client) kgoClient(cluster string, extra []kgo.Opt) (*kgo.Client, error) {
	cl := c.cfg.Topology.ClusterByName(cluster)
	if cl == nil {
		return nil, fmt.Errorf("client: cluster %q is not in the topology", cluster)
	}
	sec, err := cl.ClientOpts()
	if err != nil {
		return nil, fmt.Errorf("client: cluster %s: %w", cluster, err)
	}
	opts := append([]kgo.Opt{kgo.SeedBrokers(cl.BootstrapServers()...)}, sec...)
	opts = append(opts, c.cfg.ClientOpts...)
	opts = append(opts, extra...)
	k, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("client: cluster %s: %w", cluster, err)
	}
	return k, nil
}

func (c *Client) repointed(r Repoint) {
	if c.cfg.OnRepoint != nil {
		c.cfg.OnRepoint(r)
	}
}

// Close stops watching the store. Close producers and consumers first.
func (c *Client) Close() {
	c.cancel()
	<-c.done
}

// KafkaClient is a plain franz-go client of the named cluster (seed
// brokers, the cluster's TLS/SASL, Config.ClientOpts, then opts); it does
// not follow failovers.
func (c *Client) KafkaClient(cluster string, opts ...kgo.Opt) (*kgo.Client, error) {
	return c.kgoClient(cluster, opts)
}
