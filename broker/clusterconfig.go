package broker

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Voter is one member of the metadata quorum: a node id and its raft address.
type Voter struct {
	ID   int32
	Addr string
}

// ClusterConfig is how a broker joins a replicated cluster. With RaftListen
// empty the broker runs alone and keeps its metadata in a local file.
type ClusterConfig struct {
	// RaftListen is the host:port of the metadata quorum's listener
	// (raft and controller requests share it).
	RaftListen string
	// Quorum is controller.quorum.voters: the brokers that vote on
	// metadata, usually the first 3 or 5. Every voter lists the same set.
	Quorum []Voter
	// Join lists raft addresses of existing members; a broker not in Quorum
	// joins through any one of them as a non-voter.
	Join []string
	// PeerRaftAddresses overrides, per node id, the raft address this broker
	// dials to reach another member of the quorum (raft and controller
	// requests alike), as PeerAddresses does for replication; the quorum
	// and the raft configuration keep the advertised addresses. For
	// proxies and multi-homed hosts.
	PeerRaftAddresses map[int32]string
	// SessionTimeout is broker.session.timeout.ms: a broker whose
	// heartbeats stop for this long is fenced and loses its leaderships.
	SessionTimeout time.Duration
	// HeartbeatInterval is broker.heartbeat.interval.ms.
	HeartbeatInterval time.Duration
	// LeaderImbalanceCheckInterval is leader.imbalance.check.interval.seconds
	// (preferred-leader elections); 0 disables auto.leader.rebalance.enable.
	LeaderImbalanceCheckInterval time.Duration
}

// DefaultClusterConfig is a single broker.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{
		SessionTimeout:               9 * time.Second,
		HeartbeatInterval:            1 * time.Second,
		LeaderImbalanceCheckInterval: 5 * time.Minute,
	}
}

// Replicated reports whether the broker is part of a raft quorum.
func (c ClusterConfig) Replicated() bool { return c.RaftListen != "" }

// Validate checks the quorum settings of broker nodeID.
func (c ClusterConfig) Validate(nodeID int32) error {
	if !c.Replicated() {
		if len(c.Quorum) > 0 || len(c.Join) > 0 || len(c.PeerRaftAddresses) > 0 {
			return fmt.Errorf("controller quorum, join or peer raft addresses set without a raft listener: set --raft-listen")
		}
		return nil
	}
	if err := validHostPort("raft listen", c.RaftListen, true); err != nil {
		return err
	}
	if len(c.Quorum) == 0 && len(c.Join) == 0 {
		return fmt.Errorf("raft listen %s set but no --controller-quorum (voters) and no --join (seed): a broker needs one of them", c.RaftListen)
	}
	seen := map[int32]bool{}
	for _, v := range c.Quorum {
		if seen[v.ID] {
			return fmt.Errorf("controller quorum lists node %d twice", v.ID)
		}
		seen[v.ID] = true
		if err := validHostPort(fmt.Sprintf("controller quorum voter %d", v.ID), v.Addr, false); err != nil {
			return err
		}
	}
	for _, j := range c.Join {
		if err := validHostPort("join seed", j, false); err != nil {
			return err
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.PeerRaftAddresses)) {
		if id < 0 {
			return fmt.Errorf("peer raft address of node %d: node ids are 0 or more", id)
		}
		if err := validHostPort(fmt.Sprintf("peer raft address of node %d", id), c.PeerRaftAddresses[id], false); err != nil {
			return err
		}
	}
	switch {
	case c.SessionTimeout <= 0:
		return fmt.Errorf("broker.session.timeout.ms=%s: must be positive", c.SessionTimeout)
	case c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.SessionTimeout:
		return fmt.Errorf("broker.heartbeat.interval.ms=%s: must be positive and below broker.session.timeout.ms (%s)", c.HeartbeatInterval, c.SessionTimeout)
	case c.LeaderImbalanceCheckInterval < 0:
		return fmt.Errorf("leader.imbalance.check.interval=%s: must be 0 (off) or positive", c.LeaderImbalanceCheckInterval)
	}
	return nil
}

// ParseQuorum parses controller.quorum.voters: "1@host:port,2@host:port".
func ParseQuorum(s string) ([]Voter, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []Voter
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "@")
		n, err := strconv.ParseInt(id, 10, 32)
		if !ok || err != nil || n < 0 || addr == "" {
			return nil, fmt.Errorf("controller quorum entry %q: want NODE_ID@HOST:PORT, e.g. 1@127.0.0.1:9093", part)
		}
		out = append(out, Voter{ID: int32(n), Addr: addr})
	}
	return out, nil
}

// ParsePeerAddresses parses a list of per-node address overrides,
// "1=host:port,2=host:port", as --peer-addresses and --peer-raft-addresses
// take them. An empty string is no overrides (nil).
func ParsePeerAddresses(s string) (map[int32]string, error) {
	var out map[int32]string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		n, err := strconv.ParseInt(id, 10, 32)
		if !ok || err != nil || n < 0 || addr == "" {
			return nil, fmt.Errorf("entry %q: want NODE_ID=HOST:PORT, e.g. 2=127.0.0.1:19093", part)
		}
		if out == nil {
			out = map[int32]string{}
		}
		out[int32(n)] = addr
	}
	return out, nil
}
