package raftstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
)

// TestRaftStorePartitionedLeaderIsReplaced cuts the leader off from the
// other two nodes (every path through the mesh, as PeerAddresses routes
// them): the two elect a new leader and commit; a proposal on the old
// leader is not acknowledged and never reaches the majority; after the
// partition heals the old leader takes the majority's state.
func TestRaftStorePartitionedLeaderIsReplaced(t *testing.T) {
	c, mesh := newMeshTestCluster(t, 3)
	old := c.leader()
	for _, n := range c.running() {
		propose(t, n, registerBroker(n.id))
	}
	c.converge()

	// Propose on the old leader at once, while it may still believe it
	// leads: the entry may be appended to its log but cannot commit.
	mesh.Isolate(meshIndex(old.id))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := old.s.Propose(ctx, createTopic("isolated"))
	cancel()
	if !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrOutcomeUnknown) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("isolated node %d: Propose returned %v, want no leader, outcome unknown or a deadline", old.id, err)
	}

	var majority []*testNode
	for _, n := range c.running() {
		if n != old {
			majority = append(majority, n)
		}
	}
	newLeader := leaderAmong(t, majority)
	if newLeader == old {
		t.Fatalf("node %d still leads the majority", old.id)
	}
	for _, n := range majority {
		name := fmt.Sprintf("majority-%d", n.id)
		if topic, ok := propose(t, n, createTopic(name)).(*cluster.Topic); !ok || topic.Name != name {
			t.Fatalf("node %d: CreateTopic %s while node %d is cut off: %#v", n.id, name, old.id, topic)
		}
	}

	// Once replaced, the old leader has stepped down and finds no leader.
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	_, err = old.s.Propose(ctx, createTopic("isolated-later"))
	cancel()
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("isolated node %d: Propose after the majority moved on returned %v, want no leader", old.id, err)
	}
	if old.s.IsLeader() {
		t.Fatalf("isolated node %d still claims leadership", old.id)
	}
	for _, n := range majority {
		ctx, cancel := context.WithTimeout(context.Background(), convergeWait)
		err := n.s.Sync(ctx)
		cancel()
		if err != nil {
			t.Fatalf("node %d: sync: %v", n.id, err)
		}
		for _, name := range []string{"isolated", "isolated-later"} {
			if _, ok := n.s.State().Topic(name); ok {
				t.Fatalf("node %d: the isolated node's proposal %s was applied by the majority", n.id, name)
			}
		}
	}

	mesh.HealAll()
	c.leader() // every node, the old leader included, knows the leader
	js := c.converge()
	st := old.s.State()
	for _, n := range majority {
		if _, ok := st.Topic(fmt.Sprintf("majority-%d", n.id)); !ok {
			t.Fatalf("old leader %d lacks majority-%d after healing: %s", old.id, n.id, js)
		}
	}
	for _, name := range []string{"isolated", "isolated-later"} {
		if _, ok := st.Topic(name); ok {
			t.Fatalf("the isolated proposal %s survived healing: %s", name, js)
		}
	}
	// The healed cluster commits through the old leader too.
	propose(t, old, createTopic("after-heal"))
	c.converge()
}

// leaderAmong waits until exactly one of nodes leads and all of nodes know
// it; nodes outside the list (cut off) are not asked.
func leaderAmong(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	var leader *testNode
	waitFor(t, electionWait, func() (bool, string) {
		leader = nil
		for _, n := range nodes {
			if n.s.IsLeader() {
				if leader != nil {
					return false, fmt.Sprintf("nodes %d and %d both lead", leader.id, n.id)
				}
				leader = n
			}
		}
		if leader == nil {
			return false, "no leader"
		}
		for _, n := range nodes {
			if id, _, ok := n.s.Leader(); !ok || id != leader.id {
				return false, fmt.Sprintf("node %d does not know leader %d yet", n.id, leader.id)
			}
		}
		return true, ""
	})
	return leader
}

// TestRaftStoreForwardUsesPeerAddress cuts only the path from a follower to
// the leader: raft still works (the leader dials the follower), but the
// follower's kdr RPC to the leader must go through the cut proxy too, so a
// forwarded proposal does not get through; it does once the path heals.
func TestRaftStoreForwardUsesPeerAddress(t *testing.T) {
	c, mesh := newMeshTestCluster(t, 3)
	l := c.leader()
	f := c.followers()[0]
	mesh.Cut(meshIndex(f.id), meshIndex(l.id))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := f.s.Propose(ctx, registerBroker(f.id))
	cancel()
	if err == nil {
		t.Fatalf("follower %d: a proposal reached leader %d over a cut path", f.id, l.id)
	}
	if id, _, ok := f.s.Leader(); !ok || id != l.id {
		t.Fatalf("follower %d lost leader %d over a one-way cut: %d %v", f.id, l.id, id, ok)
	}
	mesh.HealAll()
	propose(t, f, registerBroker(f.id))
	c.converge()
}

// TestRaftStoreProposeCommittedNeedsNoLocalApply cuts the leader's path to
// one follower, which then proposes through the leader (its own path to the
// leader stays open): the leader commits with the third node, and
// ProposeCommitted returns the leader's outcome although the follower has
// not applied the command, where Propose would wait for an entry the
// follower cannot get (a broker's controlled shutdown when the leader stops
// too). The leader's outcome comes back, a failure included, and after the
// heal the follower applies the command.
func TestRaftStoreProposeCommittedNeedsNoLocalApply(t *testing.T) {
	c, mesh := newMeshTestCluster(t, 3)
	leader := c.leader()
	follower := c.followers()[0]
	propose(t, follower, registerBroker(1))
	propose(t, follower, createTopic("exists"))
	c.converge()
	// The leader's outcome comes back, a failure included.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := follower.s.ProposeCommitted(ctx, createTopic("exists"))
	cancel()
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("ProposeCommitted of a topic that exists: %v, want TOPIC_ALREADY_EXISTS", err)
	}

	// The follower must still know the leader when it forwards; if its
	// heartbeat timeout came first (a slow machine), heal and try again.
	for attempt := 1; attempt <= 5; attempt++ {
		mesh.Cut(meshIndex(leader.id), meshIndex(follower.id))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = follower.s.ProposeCommitted(ctx, createTopic("committed-elsewhere"))
		cancel()
		if !errors.Is(err, ErrNoLeader) {
			break
		}
		t.Logf("attempt %d: the follower lost the leader before forwarding; healing and retrying", attempt)
		mesh.HealAll()
		c.leader()
		c.converge()
	}
	if err != nil {
		t.Fatalf("ProposeCommitted on a follower the leader cannot reach: %v", err)
	}
	if _, ok := follower.s.State().Topic("committed-elsewhere"); ok {
		t.Fatal("the follower applied the command although the leader cannot reach it")
	}
	if _, ok := leader.s.State().Topic("committed-elsewhere"); !ok {
		t.Fatal("ProposeCommitted returned before the leader applied the command")
	}
	mesh.HealAll()
	c.leader()
	c.converge()
	if _, ok := follower.s.State().Topic("committed-elsewhere"); !ok {
		t.Fatal("after the heal the follower still lacks the command")
	}
}
