package raftstore

import (
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Voter is one member of the static initial quorum.
type Voter struct {
	// ID is the broker's node id (Kafka's node.id).
	ID int32
	// Addr is the host:port the voter's raft listener is reachable at, as it
	// advertises it.
	Addr string
}

// Config configures one node's store. Durations are wall-clock; zero values
// take the defaults listed on each field.
type Config struct {
	// NodeID is this broker's node id; it is also its raft server id.
	NodeID int32
	// RaftAddr is the host:port to bind the raft listener to (raft traffic and
	// kdr's own RPC share it). Port 0 binds any free port; Addr reports it.
	// Ignored when Listener is set.
	RaftAddr string
	// AdvertisedAddr is the host:port other nodes dial. Default: the bound
	// address, which must then not be a wildcard (0.0.0.0, ::).
	AdvertisedAddr string
	// Listener, when set, is an already bound listener to use instead of
	// binding RaftAddr; the store owns and closes it. Tests pre-bind
	// 127.0.0.1:0 this way so the voter list can name the port.
	Listener net.Listener
	// Dir holds the raft log (Dir/wal) and snapshots (Dir/snapshots).
	Dir string
	// ClusterID is the Kafka cluster id of a new cluster's initial state.
	ClusterID string
	// Voters is the static initial quorum ("combined mode": these brokers
	// vote). Every voter must be given the same list. A node listed here
	// bootstraps the cluster on first start; a node not listed joins via
	// Seeds as a non-voter. When both Voters and Seeds are empty the node
	// bootstraps a one-voter cluster of itself.
	Voters []Voter
	// Seeds are raft addresses of existing members, used by a node not in
	// Voters to ask the leader to add it. Any member will do.
	Seeds []string
	// PeerAddresses overrides, per node id, the host:port this node dials to
	// reach another node: raft's own traffic, kdr RPC to the leader
	// (forwarded proposals, RequestLeader, Sync) and joins through a seed
	// that is a voter's address in Voters. Nodes not listed are dialled at
	// the address the raft configuration (or Voters, or Seeds) gives, and
	// other nodes still dial this one at its advertised address. For NAT,
	// multi-homed hosts and fault-injecting proxies in tests. An entry for
	// NodeID itself is ignored. Default: none.
	PeerAddresses map[int32]string

	// HeartbeatTimeout is how long a follower goes without hearing from the
	// leader before it starts an election. Default 500ms.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits for votes. Default 500ms;
	// at least HeartbeatTimeout.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without reaching a
	// quorum. Default 400ms; at most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is the longest an idle leader waits before telling
	// followers the commit index, which bounds how soon a follower applies a
	// forwarded proposal. Default 20ms.
	CommitTimeout time.Duration
	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one. Default 8192.
	SnapshotThreshold uint64
	// SnapshotInterval is how often raft checks SnapshotThreshold. Default 2m.
	SnapshotInterval time.Duration
	// TrailingLogs is how many entries stay in the log after a snapshot, so
	// a slightly lagging follower catches up without a snapshot. Default 10240.
	TrailingLogs uint64
	// RPCTimeout bounds a kdr RPC or raft transport exchange whose context has
	// no deadline. Default 10s.
	RPCTimeout time.Duration

	// Logger receives the store's logs and raft's at warn and above.
	// Default: discard.
	Logger *slog.Logger
	// Registerer, when set, receives the kdr_raft_* metrics.
	Registerer prometheus.Registerer
}

// Defaults tuned for a LAN and for loopback tests: a leader is elected in
// about a second and a dead leader is replaced in 1-2s, while a leader
// starved of CPU for a few hundred milliseconds (a loaded CI machine) keeps
// its leadership.
const (
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 400 * time.Millisecond
	DefaultCommitTimeout      = 20 * time.Millisecond
	DefaultSnapshotThreshold  = 8192
	DefaultSnapshotInterval   = 2 * time.Minute
	DefaultTrailingLogs       = 10240
	DefaultRPCTimeout         = 10 * time.Second
)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.ElectionTimeout, DefaultElectionTimeout)
	def(&c.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	def(&c.CommitTimeout, DefaultCommitTimeout)
	def(&c.SnapshotInterval, DefaultSnapshotInterval)
	def(&c.RPCTimeout, DefaultRPCTimeout)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks a config after defaults are applied; each error names the
// field at fault.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.NodeID < 0 {
		return fmt.Errorf("raftstore: NodeID %d must not be negative", c.NodeID)
	}
	if c.Listener == nil && c.RaftAddr == "" {
		return fmt.Errorf("raftstore: RaftAddr is required (or a pre-bound Listener)")
	}
	if c.RaftAddr != "" {
		if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
			return fmt.Errorf("raftstore: RaftAddr %q: %v", c.RaftAddr, err)
		}
	}
	if c.AdvertisedAddr != "" {
		if err := checkDialable(c.AdvertisedAddr); err != nil {
			return fmt.Errorf("raftstore: AdvertisedAddr %q: %v", c.AdvertisedAddr, err)
		}
	}
	if c.Dir == "" {
		return fmt.Errorf("raftstore: Dir is required")
	}
	if c.ClusterID == "" {
		return fmt.Errorf("raftstore: ClusterID is required")
	}
	if len(c.ClusterID) > MaxClusterIDLen {
		return fmt.Errorf("raftstore: ClusterID is %d bytes long; at most %d", len(c.ClusterID), MaxClusterIDLen)
	}
	seen := map[int32]bool{}
	for i, v := range c.Voters {
		if v.ID < 0 {
			return fmt.Errorf("raftstore: Voters[%d].ID %d must not be negative", i, v.ID)
		}
		if seen[v.ID] {
			return fmt.Errorf("raftstore: Voters[%d].ID %d is listed twice", i, v.ID)
		}
		seen[v.ID] = true
		if err := checkDialable(v.Addr); err != nil {
			return fmt.Errorf("raftstore: Voters[%d].Addr %q: %v", i, v.Addr, err)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.PeerAddresses)) {
		if id < 0 {
			return fmt.Errorf("raftstore: PeerAddresses[%d] names a negative node id", id)
		}
		if err := checkDialable(c.PeerAddresses[id]); err != nil {
			return fmt.Errorf("raftstore: PeerAddresses[%d] %q: %v", id, c.PeerAddresses[id], err)
		}
	}
	for i, s := range c.Seeds {
		if err := checkDialable(s); err != nil {
			return fmt.Errorf("raftstore: Seeds[%d] %q: %v", i, s, err)
		}
	}
	if len(c.Voters) > 0 && !seen[c.NodeID] && len(c.Seeds) == 0 {
		return fmt.Errorf("raftstore: NodeID %d is not in Voters, so Seeds must name a member to join through", c.NodeID)
	}
	if c.HeartbeatTimeout < 5*time.Millisecond {
		return fmt.Errorf("raftstore: HeartbeatTimeout %s must be at least 5ms", c.HeartbeatTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		return fmt.Errorf("raftstore: ElectionTimeout %s must be at least HeartbeatTimeout %s", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout < 5*time.Millisecond || c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return fmt.Errorf("raftstore: LeaderLeaseTimeout %s must be between 5ms and HeartbeatTimeout %s", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.CommitTimeout < time.Millisecond {
		return fmt.Errorf("raftstore: CommitTimeout %s must be at least 1ms", c.CommitTimeout)
	}
	if c.SnapshotInterval < 5*time.Millisecond {
		return fmt.Errorf("raftstore: SnapshotInterval %s must be at least 5ms", c.SnapshotInterval)
	}
	if c.RPCTimeout < time.Millisecond {
		return fmt.Errorf("raftstore: RPCTimeout %s must be at least 1ms", c.RPCTimeout)
	}
	return nil
}

// checkDialable reports whether addr is a host:port another node can dial.
func checkDialable(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if port == "0" || port == "" {
		return fmt.Errorf("port must be set, not %q", port)
	}
	if host == "" {
		return fmt.Errorf("host must be set")
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%s is a wildcard address; advertise a reachable one", host)
	}
	return nil
}

// selfVoter returns this node's entry in Voters.
func (c Config) selfVoter() (Voter, bool) {
	for _, v := range c.Voters {
		if v.ID == c.NodeID {
			return v, true
		}
	}
	return Voter{}, false
}
