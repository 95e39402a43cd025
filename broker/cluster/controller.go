package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrNotController is returned by Controller.Heartbeat on a node whose
// controller is not active; errors.Is(err, kerr.NotController) holds too.
var ErrNotController error = &Error{Code: kerr.NotController, Message: "cluster: this node is not the active controller"}

// ControllerConfig configures a Controller. Zero fields take the defaults
// given on each.
type ControllerConfig struct {
	// SessionTimeout is how long a broker may go without a heartbeat before
	// it is fenced. Default 6 s: three missed beats at a 2 s heartbeat
	// interval. Kafka's broker.session.timeout.ms is 9 s, sized for JVM
	// pauses; Go's collector pauses are far shorter, so kdr moves
	// leadership off a dead broker sooner.
	SessionTimeout time.Duration
	// PreferredLeaderCheckInterval is how often leadership is moved back to
	// preferred replicas (auto.leader.rebalance.enable with
	// leader.imbalance.check.interval.seconds). Default 30 s; negative
	// disables the check.
	PreferredLeaderCheckInterval time.Duration
	// LeaderImbalanceThreshold is the share of a broker's preferred
	// partitions that may be led elsewhere before they are moved back
	// (leader.imbalance.per.broker.percentage / 100). Default 0.10.
	LeaderImbalanceThreshold float64
	// TickInterval is how often Run checks sessions. Default 1 s; at most
	// SessionTimeout.
	TickInterval time.Duration
	// DefaultMinInsyncReplicas is min.insync.replicas for topics without
	// an override, for the under-min-ISR gauge. Default 1.
	DefaultMinInsyncReplicas int
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Now is the clock; default time.Now. Tests inject a fake one.
	Now func() time.Time
	// ActivationGrace is how long a newly active controller waits for a
	// broker's first heartbeat before fencing it. Live brokers heartbeat
	// the new leader within about one heartbeat interval of an election,
	// so this can be much shorter than SessionTimeout; when the old
	// controller died with the partitions it led, this is what bounds
	// their failover. Default (0): SessionTimeout.
	ActivationGrace time.Duration
	// Registerer receives the kdr_controller_* metrics; nil registers none.
	Registerer prometheus.Registerer
}

func (cfg *ControllerConfig) setDefaults() error {
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 6 * time.Second
	}
	if cfg.PreferredLeaderCheckInterval == 0 {
		cfg.PreferredLeaderCheckInterval = 30 * time.Second
	}
	if cfg.ActivationGrace <= 0 || cfg.ActivationGrace > cfg.SessionTimeout {
		cfg.ActivationGrace = cfg.SessionTimeout
	}
	if cfg.LeaderImbalanceThreshold == 0 {
		cfg.LeaderImbalanceThreshold = 0.10
	}
	if cfg.TickInterval == 0 {
		cfg.TickInterval = min(time.Second, cfg.SessionTimeout)
	}
	if cfg.DefaultMinInsyncReplicas == 0 {
		cfg.DefaultMinInsyncReplicas = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.SessionTimeout < 0:
		return fmt.Errorf("cluster: controller SessionTimeout %v must be positive", cfg.SessionTimeout)
	case cfg.TickInterval < 0 || cfg.TickInterval > cfg.SessionTimeout:
		return fmt.Errorf("cluster: controller TickInterval %v must be positive and at most SessionTimeout %v", cfg.TickInterval, cfg.SessionTimeout)
	case cfg.LeaderImbalanceThreshold < 0 || cfg.LeaderImbalanceThreshold >= 1:
		return fmt.Errorf("cluster: controller LeaderImbalanceThreshold %v must be in [0, 1)", cfg.LeaderImbalanceThreshold)
	}
	return nil
}

// Controller is the cluster controller's logic: it runs on the node whose
// store is the metadata leader, tracks broker heartbeats, fences brokers
// whose session expired, unfences them when they heartbeat again and moves
// leadership back to preferred replicas. Everything it decides is proposed
// as a command, so the FSM stays the only writer of State.
//
// Every broker, including the one hosting the controller, must call
// Heartbeat (through the network or directly) at an interval well below
// SessionTimeout. Methods are safe for concurrent use; c.mu is never held
// while proposing.
type Controller struct {
	store   Store
	cfg     ControllerConfig
	log     *slog.Logger
	metrics *controllerMetrics

	mu            sync.Mutex
	active        bool
	sessions      map[int32]session
	lastPreferred time.Time
}

// session is what the controller knows of one broker's liveness.
type session struct {
	epoch int64
	seen  time.Time // last heartbeat, or when the controller first saw this registration
}

// NewController returns an inactive controller over store; call SetActive
// when this node becomes the metadata leader, and Run.
func NewController(store Store, cfg ControllerConfig) (*Controller, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &Controller{store: store, cfg: cfg, log: cfg.Logger, sessions: map[int32]session{}}
	m, err := newControllerMetrics(c, cfg.Registerer)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	return c, nil
}

// SetActive is called on every leadership change. Becoming active starts
// every registered broker's session afresh, so a new controller gives all
// brokers ActivationGrace to reach it before fencing any. Becoming
// inactive forgets every session; an inactive controller does nothing.
func (c *Controller) SetActive(active bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if active == c.active {
		return
	}
	c.active = active
	c.sessions = map[int32]session{}
	if active {
		now := c.cfg.Now()
		c.lastPreferred = now
		// A session expires SessionTimeout after seen: backdate so the
		// first deadline is ActivationGrace from now.
		seen := now.Add(c.cfg.ActivationGrace - c.cfg.SessionTimeout)
		for id, b := range c.store.State().Brokers {
			c.sessions[id] = session{epoch: b.Epoch, seen: seen}
		}
	}
	c.metrics.setActive(active)
	c.log.Info("controller active", "active", active)
}

// Heartbeat records that broker nodeID, registered at epoch, is alive, and
// unfences it if it was fenced. It returns whether the broker is fenced
// afterwards. Errors: ErrNotController, BROKER_ID_NOT_REGISTERED,
// STALE_BROKER_EPOCH (the broker must register again), or the store's.
func (c *Controller) Heartbeat(ctx context.Context, nodeID int32, epoch int64) (fenced bool, err error) {
	c.mu.Lock()
	if !c.active {
		c.mu.Unlock()
		return false, ErrNotController
	}
	b, err := c.store.State().brokerAtEpoch(nodeID, epoch)
	if err != nil {
		c.mu.Unlock()
		return false, err
	}
	c.sessions[nodeID] = session{epoch: epoch, seen: c.cfg.Now()}
	c.mu.Unlock()
	if !b.Fenced {
		return false, nil
	}
	res, err := c.propose(ctx, &UnfenceBroker{NodeID: nodeID, Epoch: epoch})
	if err != nil {
		return true, err
	}
	c.log.Info("broker unfenced", "node_id", nodeID, "epoch", epoch)
	c.recordElections(res, "clean")
	return false, nil
}

// Run checks sessions and leader balance every TickInterval until ctx is
// done.
func (c *Controller) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.tick(ctx)
		}
	}
}

// tick fences brokers whose session expired and, when due, runs preferred
// leader elections. Run calls it; tests call it directly with a fake clock.
func (c *Controller) tick(ctx context.Context) {
	c.mu.Lock()
	if !c.active {
		c.mu.Unlock()
		return
	}
	now := c.cfg.Now()
	st := c.store.State()
	var expired []FenceBroker
	for _, id := range st.BrokerIDs() {
		b := st.Brokers[id]
		s, ok := c.sessions[id]
		if !ok || s.epoch != b.Epoch {
			// A registration this controller has not seen: its session
			// starts now.
			c.sessions[id] = session{epoch: b.Epoch, seen: now}
			continue
		}
		if !b.Fenced && now.Sub(s.seen) > c.cfg.SessionTimeout {
			expired = append(expired, FenceBroker{NodeID: id, Epoch: b.Epoch})
		}
	}
	for id := range c.sessions {
		if _, ok := st.Brokers[id]; !ok {
			delete(c.sessions, id)
		}
	}
	rebalance := c.cfg.PreferredLeaderCheckInterval > 0 && now.Sub(c.lastPreferred) >= c.cfg.PreferredLeaderCheckInterval
	if rebalance {
		c.lastPreferred = now
	}
	c.mu.Unlock()

	for _, f := range expired {
		res, err := c.propose(ctx, &f)
		if err != nil {
			c.log.Warn("fencing broker failed", "node_id", f.NodeID, "epoch", f.Epoch, "err", err)
			continue
		}
		c.log.Warn("broker fenced: no heartbeat within the session timeout", "node_id", f.NodeID, "epoch", f.Epoch, "session_timeout", c.cfg.SessionTimeout)
		c.recordElections(res, "clean")
	}
	if rebalance {
		c.rebalance(ctx)
	}
}

// rebalance moves leadership back to preferred replicas for every broker
// that leads less than (1 - LeaderImbalanceThreshold) of the partitions it
// is the preferred replica of, for the partitions where it can lead (live
// and in sync).
func (c *Controller) rebalance(ctx context.Context) {
	st := c.store.State()
	type tally struct {
		preferred, elsewhere int
		movable              map[string][]int32
	}
	tallies := map[int32]*tally{}
	for _, name := range st.TopicNames() {
		for i, p := range st.Topics[name].Partitions {
			if len(p.Replicas) == 0 {
				continue
			}
			pref := p.Replicas[0]
			t := tallies[pref]
			if t == nil {
				t = &tally{movable: map[string][]int32{}}
				tallies[pref] = t
			}
			t.preferred++
			if p.Leader == pref {
				continue
			}
			t.elsewhere++
			if st.live(pref) && slices.Contains(p.ISR, pref) {
				t.movable[name] = append(t.movable[name], int32(i))
			}
		}
	}
	elect := map[string][]int32{}
	for _, id := range st.BrokerIDs() {
		t := tallies[id]
		if t == nil || float64(t.elsewhere)/float64(t.preferred) <= c.cfg.LeaderImbalanceThreshold {
			continue
		}
		for name, parts := range t.movable {
			elect[name] = append(elect[name], parts...)
		}
	}
	for _, name := range st.TopicNames() {
		parts := elect[name]
		if len(parts) == 0 {
			continue
		}
		slices.Sort(parts)
		res, err := c.propose(ctx, &ElectLeaders{Election: ElectPreferred, Topic: name, Partitions: parts})
		if err != nil {
			c.log.Warn("preferred leader election failed", "topic", name, "err", err)
			continue
		}
		n := c.recordElections(res, "preferred")
		c.log.Info("preferred leaders restored", "topic", name, "partitions", n)
	}
}

// propose proposes cmd, giving up after SessionTimeout so a store without
// quorum cannot stall the loop.
func (c *Controller) propose(ctx context.Context, cmd Command) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.SessionTimeout)
	defer cancel()
	return c.store.Propose(ctx, cmd)
}

// recordElections counts and logs the leader changes in a command's
// []ElectionResult; successful elections of an out-of-sync replica count
// as unclean, others as kind. It returns the number of elections.
func (c *Controller) recordElections(res any, kind string) int {
	results, _ := res.([]ElectionResult)
	n := 0
	for _, r := range results {
		switch {
		case r.Err != nil:
		case r.Leader == -1:
			c.log.Warn("partition offline: no live in-sync replica", "topic", r.Topic, "partition", r.Partition)
		case r.Unclean:
			c.log.Warn("unclean leader election: records not on the new leader are lost", "topic", r.Topic, "partition", r.Partition, "leader", r.Leader)
			c.metrics.election("unclean")
			n++
		default:
			c.metrics.election(kind)
			n++
		}
	}
	return n
}
