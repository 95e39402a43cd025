package kdrtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Cluster is a replicated kdr cluster of `kdr broker` processes on
// loopback, every one a voter of the metadata quorum. Broker i (0-based)
// has node id i+1.
type Cluster struct {
	t       TB
	Brokers []*Process
	id      string // --cluster-id
	raft    []string
	client  *kgo.Client
	admin   *kadm.Client
}

// ClusterFlags are the flags a replicated test cluster runs with: quick
// failure detection so tests spend seconds, not the production defaults'
// tens of seconds, waiting for fencing and ISR changes.
var ClusterFlags = []string{
	"--broker-session-timeout-ms", "3000", "--broker-heartbeat-interval-ms", "500",
	"--replica-lag-time-max-ms", "4000", "--leader-imbalance-check-interval-ms", "0",
}

// newClusterID is a cluster id of the test cluster's own. Test packages
// run at once, and a broker's raft listener refuses nodes of other
// clusters: a port one cluster's stopped broker freed and another's took
// cannot mix their quorums.
func newClusterID() string { return fmt.Sprintf("kdrtest-%016x", rand.Uint64()) }

// freePorts reserves n loopback ports and releases them for the brokers to
// bind: a quorum needs every raft address before any broker starts.
func freePorts(t TB, n int) []string {
	t.Helper()
	var lns []net.Listener
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("kdrtest: %v", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// StartCluster starts n brokers as processes of bin (flags from
// ClusterFlags, then extra) and waits until every one is registered and
// unfenced.
func StartCluster(t TB, bin string, n int, extra ...string) *Cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	c := &Cluster{t: t, id: newClusterID(), raft: ports[n:]}
	var quorum []string
	for i := range n {
		quorum = append(quorum, fmt.Sprintf("%d@%s", i+1, c.raft[i]))
	}
	args := make([][]string, n)
	for i := range n {
		args[i] = append(slices.Clone(ClusterFlags),
			"--cluster-id", c.id, "--node-id", strconv.Itoa(i+1), "--listen", ports[i], "--raft-listen", c.raft[i],
			"--controller-quorum", strings.Join(quorum, ","), "--offsets-topic-replication-factor", strconv.Itoa(min(n, 3)))
		args[i] = append(args[i], extra...)
	}
	c.start(bin, args)
	return c
}

// start runs one broker process per argument list, all at once (a quorum
// forms only when a majority is up), then connects an admin client and
// waits until every broker is live.
func (c *Cluster) start(bin string, args [][]string) {
	t := c.t
	t.Helper()
	c.Brokers = make([]*Process, len(args))
	var wg sync.WaitGroup
	for i := range args {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Brokers[i] = StartProcess(t, bin, args[i]...)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster logs:\n%s", c.Logs())
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...))
	if err != nil {
		t.Fatalf("kdrtest: %v", err)
	}
	t.Cleanup(cl.Close)
	c.client, c.admin = cl, kadm.NewClient(cl)
	c.WaitBrokers(len(args))
}

// Bootstrap is every broker's Kafka address.
func (c *Cluster) Bootstrap() []string {
	out := make([]string, len(c.Brokers))
	for i, b := range c.Brokers {
		out[i] = b.Addr()
	}
	return out
}

// Admin is a kadm client of the whole cluster.
func (c *Cluster) Admin() *kadm.Client { return c.admin }

// Index is the Brokers index of node id.
func (c *Cluster) Index(nodeID int32) int { return int(nodeID) - 1 }

// WaitBrokers waits until Metadata lists n live brokers and a controller.
func (c *Cluster) WaitBrokers(n int) {
	c.t.Helper()
	Eventually(c.t, 60*time.Second, func() (bool, string) {
		m, err := c.metadata()
		if err != nil {
			return false, err.Error()
		}
		var ids []int32
		for _, b := range m.Brokers {
			ids = append(ids, b.NodeID)
		}
		return len(ids) == n && m.ControllerID >= 0, fmt.Sprintf("live brokers %v, want %d; controller %d", ids, n, m.ControllerID)
	})
}

// Controller is the node Metadata names as controller (the metadata
// quorum's leader), once there is one.
func (c *Cluster) Controller() int32 {
	c.t.Helper()
	var id int32 = -1
	Eventually(c.t, 60*time.Second, func() (bool, string) {
		m, err := c.metadata()
		if err != nil {
			return false, err.Error()
		}
		id = m.ControllerID
		return id >= 0, "no controller"
	})
	return id
}

// metadata issues a fresh Metadata request (kadm's Metadata may answer
// from the client's cache, which lags a failover).
func (c *Cluster) metadata(topics ...string) (*kmsg.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	if topics == nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	return req.RequestWith(ctx, c.client)
}

// Partition is one partition's metadata as clients see it.
type Partition struct {
	Leader      int32
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
}

// Partition returns topic/p's current metadata.
func (c *Cluster) Partition(topic string, p int32) (Partition, error) {
	m, err := c.metadata(topic)
	if err != nil {
		return Partition{}, err
	}
	for _, t := range m.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if t.ErrorCode != 0 {
			return Partition{}, fmt.Errorf("topic %s: %v", topic, kerr.ErrorForCode(t.ErrorCode))
		}
		for _, pd := range t.Partitions {
			if pd.Partition == p {
				return Partition{Leader: pd.Leader, LeaderEpoch: pd.LeaderEpoch, Replicas: pd.Replicas, ISR: pd.ISR}, nil
			}
		}
	}
	return Partition{}, fmt.Errorf("%s-%d not in metadata", topic, p)
}

// Leader waits until topic/p has a leader and returns its node id.
func (c *Cluster) Leader(topic string, p int32) int32 {
	c.t.Helper()
	var leader int32 = -1
	Eventually(c.t, 30*time.Second, func() (bool, string) {
		pd, err := c.Partition(topic, p)
		if err != nil {
			return false, err.Error()
		}
		leader = pd.Leader
		return leader >= 0, fmt.Sprintf("%s-%d leader %d", topic, p, leader)
	})
	return leader
}

// WaitISR waits until topic/p's ISR has n members.
func (c *Cluster) WaitISR(topic string, p int32, n int) {
	c.t.Helper()
	Eventually(c.t, 60*time.Second, func() (bool, string) {
		pd, err := c.Partition(topic, p)
		if err != nil {
			return false, err.Error()
		}
		return len(pd.ISR) == n && pd.Leader >= 0, fmt.Sprintf("%s-%d ISR %v leader %d, want %d in sync", topic, p, pd.ISR, pd.Leader, n)
	})
}

// Kill SIGKILLs node id's process.
func (c *Cluster) Kill(nodeID int32) { c.Brokers[c.Index(nodeID)].Kill() }

// Stop stops node id cleanly (SIGTERM).
func (c *Cluster) Stop(nodeID int32) { c.Brokers[c.Index(nodeID)].Stop() }

// Restart starts node id again on its data dir and ports.
func (c *Cluster) Restart(nodeID int32) { c.Brokers[c.Index(nodeID)].Restart() }

// Logs returns every broker's log, for failure messages.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for i, p := range c.Brokers {
		fmt.Fprintf(&b, "==== broker %d ====\n%s\n", i+1, p.Logs())
	}
	return b.String()
}
