package raftstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/internal/faultproxy"
)

// The cluster fixture: real nodes on loopback listeners and temp dirs, with
// the vocabulary the tests use — leader, followers, stop, start, join,
// converge. Every wait polls a condition under a deadline.

const (
	testClusterID = "raftstore-test"
	electionWait  = 5 * time.Second  // a leader must appear within this
	convergeWait  = 10 * time.Second // every running node must agree within this
)

type testNode struct {
	id    int32
	addr  string
	dir   string
	seeds []string
	s     *Store // nil while stopped
}

type testCluster struct {
	t      *testing.T
	base   string // node dirs live here; made before the cleanups that stop nodes
	voters []Voter
	nodes  map[int32]*testNode
	tweak  func(*Config)
	logs   *syncBuffer
}

// newTestCluster starts n voters with ids 1..n; tweak, if set, adjusts each
// node's config.
func newTestCluster(t *testing.T, n int, tweak func(*Config)) *testCluster {
	t.Helper()
	c, lns := bindTestCluster(t, n)
	c.tweak = tweak
	c.openAll(lns)
	return c
}

// newMeshTestCluster starts n voters, ids 1..n, where node i reaches node j
// only through the mesh's proxy Addr(i-1, j-1) (PeerAddresses); Voters
// keeps the real addresses, so every dial that bypassed the overrides would
// bypass the mesh too.
func newMeshTestCluster(t *testing.T, n int) (*testCluster, *faultproxy.Mesh) {
	t.Helper()
	c, lns := bindTestCluster(t, n)
	addrs := make([]string, n)
	for i, v := range c.voters {
		addrs[i] = v.Addr
	}
	mesh, err := faultproxy.NewMesh(addrs)
	if err != nil {
		t.Fatal(err)
	}
	// Registered after the nodes' cleanups, so it runs before them: close
	// the proxies first, then the nodes need not wait on cut paths.
	t.Cleanup(func() { mesh.Close() })
	c.tweak = func(cfg *Config) {
		cfg.PeerAddresses = map[int32]string{}
		for _, v := range c.voters {
			if v.ID != cfg.NodeID {
				cfg.PeerAddresses[v.ID] = mesh.Addr(meshIndex(cfg.NodeID), meshIndex(v.ID))
			}
		}
	}
	c.openAll(lns)
	return c, mesh
}

// meshIndex is node id's index in a test mesh.
func meshIndex(id int32) int { return int(id) - 1 }

// bindTestCluster makes the fixture and binds one listener per voter, ids
// 1..n, without starting any node.
func bindTestCluster(t *testing.T, n int) (*testCluster, []net.Listener) {
	t.Helper()
	c := &testCluster{t: t, base: t.TempDir(), nodes: map[int32]*testNode{}, logs: &syncBuffer{}}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("KDR_TEST_LOGS") != "" {
			t.Logf("node logs:\n%s", c.logs.String())
		}
	})
	t.Cleanup(c.stopAll)
	lns := make([]net.Listener, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
		c.voters = append(c.voters, Voter{ID: int32(i + 1), Addr: ln.Addr().String()})
	}
	return c, lns
}

// openAll starts the voters on their bound listeners.
func (c *testCluster) openAll(lns []net.Listener) {
	c.t.Helper()
	for i, ln := range lns {
		v := c.voters[i]
		c.nodes[v.ID] = &testNode{id: v.ID, addr: v.Addr, dir: c.dir(v.ID)}
		c.open(c.nodes[v.ID], ln)
	}
}

func (c *testCluster) dir(id int32) string {
	return filepath.Join(c.base, fmt.Sprintf("node-%d", id))
}

func (c *testCluster) config(n *testNode, ln net.Listener) Config {
	cfg := Config{
		NodeID: n.id, Listener: ln, Dir: n.dir, ClusterID: testClusterID,
		Voters: c.voters, Seeds: n.seeds,
		Logger: slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	return cfg
}

func (c *testCluster) open(n *testNode, ln net.Listener) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), convergeWait)
	defer cancel()
	s, err := Open(ctx, c.config(n, ln))
	if err != nil {
		c.t.Fatalf("node %d: %v", n.id, err)
	}
	n.s = s
}

// start restarts a stopped node on its old address and dir.
func (c *testCluster) start(id int32) *testNode {
	c.t.Helper()
	n := c.nodes[id]
	ln, err := net.Listen("tcp", n.addr)
	if err != nil {
		c.t.Fatalf("node %d: rebinding %s: %v", id, n.addr, err)
	}
	c.open(n, ln)
	return n
}

// join starts a new node outside Voters that joins through seeds.
func (c *testCluster) join(id int32, seeds ...string) *testNode {
	c.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	n := &testNode{id: id, addr: ln.Addr().String(), dir: c.dir(id), seeds: seeds}
	c.nodes[id] = n
	c.open(n, ln)
	return n
}

func (c *testCluster) stop(id int32) {
	c.t.Helper()
	n := c.nodes[id]
	if err := n.s.Close(); err != nil {
		c.t.Errorf("node %d: close: %v", id, err)
	}
	n.s = nil
}

func (c *testCluster) stopAll() {
	for _, n := range c.running() {
		c.stop(n.id)
	}
}

// running returns the started nodes by id.
func (c *testCluster) running() []*testNode {
	var out []*testNode
	for _, n := range c.nodes {
		if n.s != nil {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b *testNode) int { return int(a.id - b.id) })
	return out
}

// leader waits until exactly one running node leads and every running node
// knows it.
func (c *testCluster) leader() *testNode {
	c.t.Helper()
	return leaderAmong(c.t, c.running())
}

// followers returns the running nodes that do not lead.
func (c *testCluster) followers() []*testNode {
	c.t.Helper()
	l := c.leader()
	var out []*testNode
	for _, n := range c.running() {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

// converge waits until every running node has the same state and returns
// its JSON.
func (c *testCluster) converge() string {
	c.t.Helper()
	var js string
	waitFor(c.t, convergeWait, func() (bool, string) {
		nodes := c.running()
		js = stateJSON(c.t, nodes[0].s.State())
		for _, n := range nodes[1:] {
			if other := stateJSON(c.t, n.s.State()); other != js {
				return false, fmt.Sprintf("node %d has\n%s\nnode %d has\n%s", nodes[0].id, js, n.id, other)
			}
		}
		return true, ""
	})
	return js
}

func stateJSON(t *testing.T, s *cluster.State) string {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() (ok bool, reason string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, reason := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, reason)
		}
		<-tick.C
	}
}

// propose proposes cmd through n and returns its result. A leader change
// under load can leave the outcome unknown; then it checks the state (for
// CreateTopic) or proposes again (the other commands the tests use are
// idempotent enough).
func propose(t *testing.T, n *testNode, cmd cluster.Command) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), convergeWait)
	defer cancel()
	for {
		res, err := n.s.Propose(ctx, cmd)
		if err == nil {
			return res
		}
		if !errors.Is(err, ErrOutcomeUnknown) {
			t.Fatalf("node %d: propose %T: %v", n.id, cmd, err)
		}
		t.Logf("node %d: propose %T: %v; checking and retrying", n.id, cmd, err)
		if ct, ok := cmd.(*cluster.CreateTopic); ok {
			if err := n.s.Sync(ctx); err != nil {
				t.Fatalf("node %d: sync: %v", n.id, err)
			}
			if topic, ok := n.s.State().Topic(ct.Name); ok && topic.ID == ct.ID {
				return topic
			}
		}
	}
}

// proposeErr proposes a command expected to fail and returns its error,
// retrying when a leader change left the outcome unknown.
func proposeErr(t *testing.T, n *testNode, cmd cluster.Command) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), convergeWait)
	defer cancel()
	for {
		_, err := n.s.Propose(ctx, cmd)
		if !errors.Is(err, ErrOutcomeUnknown) {
			return err
		}
		t.Logf("node %d: propose %T: %v; retrying", n.id, cmd, err)
	}
}

func registerBroker(id int32) *cluster.RegisterBroker {
	return &cluster.RegisterBroker{Broker: cluster.Broker{NodeID: id, Host: "127.0.0.1", Port: 9090 + id}}
}

func createTopic(name string) *cluster.CreateTopic {
	return &cluster.CreateTopic{Name: name, ID: cluster.NewTopicID(), Partitions: 3, ReplicationFactor: 1}
}

// syncBuffer collects the nodes' logs, shown when a test fails.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
