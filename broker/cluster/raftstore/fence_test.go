package raftstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kdr-io/kdr/broker/cluster"
)

// TestRaftStoreFenceSurvivesSnapshotAndFullRestart fences through a
// follower (forwarded to the leader), lets every node snapshot, stops the
// whole quorum and checks each node restores the fence from its snapshot
// before any leader is elected, and that a stale epoch is still refused.
func TestRaftStoreFenceSurvivesSnapshotAndFullRestart(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold = 2
		cfg.SnapshotInterval = 20 * time.Millisecond
		cfg.TrailingLogs = 1
	})
	for id := int32(1); id <= 3; id++ {
		propose(t, c.leader(), registerBroker(id))
	}
	var follower *testNode
	for _, n := range c.running() {
		if !n.s.IsLeader() {
			follower = n
			break
		}
	}
	want := cluster.Fence{Fenced: true, Epoch: 7, Reason: "failover to west"}
	propose(t, follower, &cluster.SetFence{Fenced: want.Fenced, Epoch: want.Epoch, Reason: want.Reason})
	fenceIndex := follower.s.Stats().AppliedIndex
	for range 4 {
		propose(t, c.leader(), createTopic(cluster.NewTopicID().String()))
	}
	c.converge()
	waitFor(t, convergeWait, func() (bool, string) {
		for _, n := range c.running() {
			if st := n.s.Stats(); st.LastSnapshotIndex < fenceIndex {
				return false, fmt.Sprintf("node %d snapshotted up to %d, the fence is at %d", n.id, st.LastSnapshotIndex, fenceIndex)
			}
		}
		return true, ""
	})
	c.stopAll()
	for id := int32(1); id <= 3; id++ {
		if got := c.start(id).s.State().Fence; got != want {
			t.Fatalf("node %d restored fence %+v, want %+v", id, got, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), convergeWait)
	defer cancel()
	for _, n := range c.running() {
		if err := n.s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := proposeErr(t, c.leader(), &cluster.SetFence{Epoch: 6}); err == nil {
		t.Fatal("unfence with a stale epoch applied")
	}
	propose(t, c.leader(), &cluster.SetFence{Epoch: 7})
	for _, n := range c.running() {
		waitFor(t, convergeWait, func() (bool, string) {
			f := n.s.State().Fence
			return !f.Fenced && f.Epoch == 7, f.String()
		})
	}
}
