package raftstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
)

func TestRaftStoreThreeVotersReplicate(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newTestCluster(t, 3, func(cfg *Config) {
		if cfg.NodeID == 1 {
			cfg.Registerer = reg
		}
	})
	c.leader()
	// Every node proposes, leader and followers alike.
	for _, n := range c.running() {
		propose(t, n, registerBroker(n.id))
	}
	for _, n := range c.running() {
		name := fmt.Sprintf("topic-%d", n.id)
		res := propose(t, n, createTopic(name))
		topic, ok := res.(*cluster.Topic)
		if !ok || topic.Name != name || len(topic.Partitions) != 3 {
			t.Fatalf("node %d: CreateTopic result %#v", n.id, res)
		}
		// Propose returns once the change is applied on the proposing node.
		if _, ok := n.s.State().Topic(name); !ok {
			t.Fatalf("node %d: topic %s not in its state after Propose", n.id, name)
		}
	}
	f := c.followers()[0]
	first, ok := propose(t, f, &cluster.AllocateProducerIDs{Count: 10}).(int64)
	if !ok || first != 0 {
		t.Fatalf("follower AllocateProducerIDs: %v", first)
	}

	// A failed command comes back as *cluster.Error with its Kafka code.
	for _, n := range []*testNode{f, c.leader()} {
		err := proposeErr(t, n, createTopic("topic-1"))
		var ce *cluster.Error
		if !errors.As(err, &ce) || !errors.Is(err, kerr.TopicAlreadyExists) || !strings.Contains(ce.Message, "topic-1") {
			t.Fatalf("node %d: duplicate CreateTopic: %v", n.id, err)
		}
	}
	err := proposeErr(t, f, &cluster.RegisterBroker{Broker: cluster.Broker{NodeID: -1}})
	if err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("follower: invalid RegisterBroker: %v", err)
	}

	js := c.converge()
	if idx := c.nodes[1].s.State().Index; idx < 10 {
		t.Fatalf("state index %d after 10 commands (3 of them failed)", idx)
	}
	if !strings.Contains(js, `"cluster_id":"`+testClusterID+`"`) {
		t.Fatalf("state lacks the cluster id: %s", js)
	}
	if got := f.s.Stats().ForwardedProposals; got < 3 {
		t.Fatalf("follower forwarded %d proposals, want at least 3", got)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{"kdr_raft_term", "kdr_raft_commit_index", "kdr_raft_applied_index", "kdr_raft_is_leader",
		"kdr_raft_commit_seconds", "kdr_raft_leader_changes_total", "kdr_raft_forwarded_proposals_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("metric %s not registered (have %v)", want, names)
		}
	}
}

func TestRaftStoreLeaderFailover(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	propose(t, c.leader(), registerBroker(1))
	old := c.leader()
	stopped := time.Now()
	c.stop(old.id)
	next := c.leader()
	t.Logf("node %d took over from node %d after %s", next.id, old.id, time.Since(stopped).Round(time.Millisecond))
	if next.id == old.id {
		t.Fatal("the stopped node still leads")
	}
	for _, n := range c.running() {
		propose(t, n, createTopic(fmt.Sprintf("after-failover-%d", n.id)))
	}
	c.converge()

	c.start(old.id)
	// Sync makes the restarted node's state current without polling.
	ctx, cancel := context.WithTimeout(context.Background(), convergeWait)
	defer cancel()
	if err := old.s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	js := stateJSON(t, old.s.State())
	if want := stateJSON(t, next.s.State()); js != want {
		t.Fatalf("after Sync the restarted node has\n%s\nthe leader has\n%s", js, want)
	}
	st := old.s.Stats()
	if st.Bootstrapped {
		t.Fatal("the restarted node bootstrapped again")
	}
	if st.LeaderID < 0 {
		t.Fatalf("the restarted node knows no leader: %+v", st)
	}
	if !strings.Contains(js, "after-failover-") {
		t.Fatalf("restarted node missed the proposals made while it was down: %s", js)
	}
	propose(t, old, createTopic("from-restarted"))
	c.converge()
}

func TestRaftStoreSnapshotRestart(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold = 5
		cfg.SnapshotInterval = 20 * time.Millisecond
		cfg.TrailingLogs = 2
	})
	for id := int32(1); id <= 3; id++ {
		propose(t, c.leader(), registerBroker(id))
	}
	for i := range 30 {
		n := c.running()[i%3]
		propose(t, n, createTopic(fmt.Sprintf("snap-%02d", i)))
	}
	js := c.converge()
	waitFor(t, convergeWait, func() (bool, string) {
		for _, n := range c.running() {
			if st := n.s.Stats(); st.LastSnapshotIndex == 0 {
				return false, fmt.Sprintf("node %d has not snapshotted: %+v", n.id, st)
			}
		}
		return true, ""
	})
	index := c.nodes[1].s.State().Index

	c.stopAll()
	for id := int32(1); id <= 3; id++ {
		n := c.start(id)
		// The snapshot is restored before Open returns, before any leader.
		if got := n.s.State().Index; got == 0 {
			t.Fatalf("node %d restarted with an empty state; the snapshot was not restored", id)
		}
		if n.s.Stats().Bootstrapped {
			t.Fatalf("node %d bootstrapped again", id)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), convergeWait)
	defer cancel()
	for _, n := range c.running() {
		if err := n.s.Sync(ctx); err != nil {
			t.Fatalf("node %d: %v", n.id, err)
		}
	}
	if got := c.converge(); got != js {
		t.Fatalf("state after restart differs:\nbefore %s\nafter  %s", js, got)
	}
	if got := c.nodes[2].s.State().Index; got != index {
		t.Fatalf("index %d after restart, want %d", got, index)
	}
}

func TestRaftStoreJoinNonVoter(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	propose(t, c.leader(), registerBroker(1))
	propose(t, c.leader(), createTopic("before-join"))
	seed := c.followers()[0]
	n4 := c.join(4, seed.addr)
	waitFor(t, convergeWait, func() (bool, string) {
		st := c.leader().s.Stats()
		return slices.Equal(st.NonVoters, []int32{4}) && slices.Equal(st.Voters, []int32{1, 2, 3}), fmt.Sprintf("leader's configuration: %+v", st)
	})
	c.converge()
	if _, ok := n4.s.State().Topic("before-join"); !ok {
		t.Fatal("the new node did not receive the existing state")
	}
	res := propose(t, n4, createTopic("from-non-voter"))
	if topic, ok := res.(*cluster.Topic); !ok || topic.Name != "from-non-voter" {
		t.Fatalf("CreateTopic through the non-voter: %#v", res)
	}
	if n4.s.Stats().ForwardedProposals == 0 {
		t.Fatal("the non-voter did not forward its proposal")
	}
	c.converge()

	// With state on disk the node restarts without contacting any seed.
	c.stop(4)
	n4.seeds = []string{"127.0.0.1:1"}
	c.start(4)
	propose(t, n4, createTopic("after-rejoin"))
	c.converge()

	// Membership changes go through the leader from any node.
	ctx, cancel := context.WithTimeout(context.Background(), convergeWait)
	defer cancel()
	if err := seed.s.AddVoter(ctx, 4, n4.addr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, convergeWait, func() (bool, string) {
		st := n4.s.Stats()
		return slices.Equal(st.Voters, []int32{1, 2, 3, 4}) && len(st.NonVoters) == 0, fmt.Sprintf("node 4's configuration: %+v", st)
	})
	if err := n4.s.RemoveServer(ctx, 4); err != nil {
		t.Fatal(err)
	}
	c.stop(4) // a removed node's raft has shut itself down
	waitFor(t, convergeWait, func() (bool, string) {
		st := c.leader().s.Stats()
		return slices.Equal(st.Voters, []int32{1, 2, 3}) && len(st.NonVoters) == 0, fmt.Sprintf("leader's configuration: %+v", st)
	})
	propose(t, seed, createTopic("after-removal"))
}

func TestRaftStoreRequestLeader(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	for _, n := range c.running() {
		id := n.id
		n.s.SetHandler("echo", func(ctx context.Context, body []byte) ([]byte, error) {
			return fmt.Appendf(nil, "%d:%s", id, body), nil
		})
		n.s.SetHandler("fail", func(ctx context.Context, body []byte) ([]byte, error) {
			return nil, &cluster.Error{Code: kerr.PolicyViolation, Message: "no " + string(body)}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), convergeWait)
	defer cancel()
	leader := c.leader()
	for _, n := range c.running() {
		got, err := n.s.RequestLeader(ctx, "echo", []byte("hi"))
		if want := fmt.Sprintf("%d:hi", leader.id); err != nil || string(got) != want {
			t.Fatalf("node %d: echo = %q, %v; want %q", n.id, got, err, want)
		}
	}
	f := c.followers()[0]
	_, err := f.s.RequestLeader(ctx, "fail", []byte("way"))
	var ce *cluster.Error
	if !errors.As(err, &ce) || !errors.Is(err, kerr.PolicyViolation) || ce.Message != "no way" {
		t.Fatalf("fail handler: %v", err)
	}
	_, err = f.s.RequestLeader(ctx, "missing", nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Kind != "missing" {
		t.Fatalf("unknown kind: %v", err)
	}

	c.stop(leader.id)
	next := c.leader()
	for _, n := range c.running() {
		got, err := n.s.RequestLeader(ctx, "echo", []byte("again"))
		if want := fmt.Sprintf("%d:again", next.id); err != nil || string(got) != want {
			t.Fatalf("node %d after failover: echo = %q, %v; want %q", n.id, got, err, want)
		}
	}
}

func TestRaftStoreNoQuorum(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	propose(t, c.leader(), registerBroker(1))
	leader := c.leader()
	survivor := c.followers()[0]
	for _, n := range c.running() {
		if n != survivor {
			c.stop(n.id)
		}
	}
	const wait = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	_, err := survivor.s.Propose(ctx, registerBroker(2))
	took := time.Since(start)
	if !errors.Is(err, ErrNoLeader) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("propose without quorum: %v", err)
	}
	if took > wait+time.Second {
		t.Fatalf("propose without quorum took %s, ctx allowed %s", took, wait)
	}

	// The survivor is still healthy: bring a quorum back and propose again.
	c.start(leader.id)
	c.leader()
	propose(t, survivor, registerBroker(3))
	c.converge()
}

func TestRaftStoreSkipsUndecodableEntries(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.leader()
	propose(t, leader, registerBroker(1))
	f := leader.s.r.Apply([]byte{250, '{', '}'}, convergeWait)
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	if r := f.Response().(applyResult); !errors.Is(r.err, ErrUnknownCommand) {
		t.Fatalf("leader applied an unknown command type: %v", r.err)
	}
	waitFor(t, convergeWait, func() (bool, string) {
		for _, n := range c.running() {
			if got := n.s.Stats().UndecodableEntries; got != 1 {
				return false, fmt.Sprintf("node %d counted %d undecodable entries", n.id, got)
			}
		}
		return true, ""
	})
	for _, n := range c.running() {
		propose(t, n, createTopic(fmt.Sprintf("still-works-%d", n.id)))
	}
	c.converge()
}

// A single node with no Voters and no Seeds bootstraps a cluster of itself;
// a pooled RPC connection to it survives the node restarting on its port.
func TestRaftStoreSingleNodeAndStalePooledConnection(t *testing.T) {
	dir, logs := t.TempDir(), &syncBuffer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), convergeWait)
	defer cancel()
	open := func(ln net.Listener) *Store {
		t.Helper()
		s, err := Open(ctx, Config{NodeID: 1, Listener: ln, Dir: dir, ClusterID: testClusterID,
			Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		s.SetHandler("echo", func(ctx context.Context, body []byte) ([]byte, error) { return body, nil })
		if err := s.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(ln)
	if !s.Stats().Bootstrapped {
		t.Fatal("a lone node did not bootstrap")
	}
	propose(t, &testNode{id: 1, s: s}, registerBroker(1))

	p := newPool(time.Second, testClusterID)
	defer p.close()
	if got, err := p.call(ctx, addr, "echo", []byte("one")); err != nil || string(got) != "one" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if ln, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	s = open(ln)
	defer s.Close()
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Bootstrapped || s.State().Index != 1 {
		t.Fatalf("restart: %+v, index %d", s.Stats(), s.State().Index)
	}
	if got, err := p.call(ctx, addr, "echo", []byte("two")); err != nil || string(got) != "two" {
		t.Fatalf("echo over a connection pooled before the restart: %q, %v", got, err)
	}
}

// TestRaftStoreRefusesOtherClusters dials a node as a node of another
// cluster would (one that took over a stopped voter's port on a shared
// host): its raft RPCs and kdr RPCs get no answer, the refusals are counted
// in kdr_raft_refused_connections_total and logged with both cluster ids,
// while the same calls with this cluster's id are answered.
func TestRaftStoreRefusesOtherClusters(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.Registerer = reg })
	n := c.leader()
	n.s.SetHandler("echo", func(ctx context.Context, body []byte) ([]byte, error) { return body, nil })
	ctx, cancel := context.WithTimeout(context.Background(), convergeWait)
	defer cancel()

	// raft's own RPCs, through the transport raft uses, from a throwaway
	// listener whose mux carries clusterID.
	requestVote := func(clusterID string) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		m := newMux(ln, ln.Addr(), clusterID, slog.New(slog.DiscardHandler))
		m.start(func(net.Conn) {})
		defer m.close()
		trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: raftLayer{m}, MaxPool: 1, Timeout: time.Second})
		defer trans.Close()
		req := &raft.RequestVoteRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("9"), Addr: []byte(ln.Addr().String())},
			Term:      1,
		}
		var resp raft.RequestVoteResponse
		return trans.RequestVote("1", raft.ServerAddress(n.addr), req, &resp)
	}
	echo := func(clusterID string) error {
		p := newPool(time.Second, clusterID)
		defer p.close()
		got, err := p.call(ctx, n.addr, "echo", []byte("ping"))
		if err == nil && string(got) != "ping" {
			t.Fatalf("echo answered %q", got)
		}
		return err
	}

	if err := requestVote(testClusterID); err != nil {
		t.Fatalf("RequestVote from this cluster: %v", err)
	}
	if err := echo(testClusterID); err != nil {
		t.Fatalf("echo from this cluster: %v", err)
	}
	if got := n.s.mux.refused.Load(); got != 0 {
		t.Fatalf("%d connections refused from this cluster", got)
	}
	if err := requestVote("another-cluster"); err == nil {
		t.Fatal("RequestVote from another cluster was answered")
	}
	if err := echo("another-cluster"); err == nil {
		t.Fatal("echo from another cluster was answered")
	}
	if got := n.s.mux.refused.Load(); got != 2 {
		t.Errorf("refused %d connections from another cluster, want 2", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var refused float64 = -1
	for _, mf := range mfs {
		if mf.GetName() == "kdr_raft_refused_connections_total" {
			refused = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if refused != 2 {
		t.Errorf("kdr_raft_refused_connections_total = %v, want 2", refused)
	}
	logs := c.logs.String()
	if !strings.Contains(logs, "refusing a connection from a node of another cluster") ||
		!strings.Contains(logs, "remote_cluster_id=another-cluster") || !strings.Contains(logs, "cluster_id="+testClusterID) {
		t.Errorf("no refusal naming both cluster ids in the logs:\n%s", logs)
	}
	// The node still serves its own cluster.
	propose(t, n, registerBroker(2))
}
