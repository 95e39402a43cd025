package main

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clusterSize is the number of brokers, every one a voter of the quorum.
const clusterSize = 3

// cluster is the brokers under measurement and an admin client of them.
type cluster struct {
	nodes   []*node // node id i+1 at index i
	tmp     string  // binary copy and data dirs, removed by close
	binInfo string  // what was copied, for the report
	client  *kgo.Client
}

// startCluster copies o.KdrBin into a temp dir and starts clusterSize
// brokers from it, each on its own data dir and reserved loopback ports,
// then waits until Metadata lists every broker.
func startCluster(ctx context.Context, o options) (*cluster, error) {
	tmp, err := os.MkdirTemp("", "clusterbench-")
	if err != nil {
		return nil, err
	}
	c := &cluster{tmp: tmp}
	bin := filepath.Join(tmp, "kdr")
	c.binInfo = binaryInfo(o.KdrBin)
	if err := copyFile(o.KdrBin, bin); err != nil {
		c.close()
		return nil, fmt.Errorf("copying --kdr-bin: %w", err)
	}
	ports, err := freePorts(2 * clusterSize)
	if err != nil {
		c.close()
		return nil, err
	}
	kafka, raft := ports[:clusterSize], ports[clusterSize:]
	var quorum []string
	for i := range clusterSize {
		quorum = append(quorum, fmt.Sprintf("%d@%s", i+1, raft[i]))
	}
	for i := range clusterSize {
		id := int32(i + 1)
		dir := filepath.Join(tmp, fmt.Sprintf("data-%d", id))
		c.nodes = append(c.nodes, &node{
			id:      id,
			bin:     bin,
			listen:  kafka[i],
			logPath: filepath.Join(o.OutDir, fmt.Sprintf("cluster-broker-%d.log", id)),
			args: []string{"broker", "--data-dir", dir, "--node-id", strconv.Itoa(int(id)),
				"--metrics-listen", "127.0.0.1:0", "--raft-listen", raft[i],
				"--controller-quorum", strings.Join(quorum, ","),
				"--broker-session-timeout-ms", strconv.Itoa(o.sessionTimeoutMS),
				"--broker-heartbeat-interval-ms", strconv.Itoa(o.heartbeatIntervalMS),
				"--replica-lag-time-max-ms", strconv.Itoa(o.replicaLagMaxMS),
				// No preferred-leader elections: leaderships move only
				// when the bench kills a broker.
				"--leader-imbalance-check-interval-ms", "0",
				"--log-level", o.brokerLogLevel},
		})
		os.Remove(c.nodes[i].logPath) // one run's log per file
	}

	// Every voter must be up for the quorum to form, so start them together.
	errs := make([]error, clusterSize)
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.start(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.close()
			return nil, err
		}
	}
	c.client, err = kgo.NewClient(kgo.SeedBrokers(c.bootstrap()...), kgo.DialTimeout(time.Second),
		kgo.RetryTimeout(5*time.Second))
	if err != nil {
		c.close()
		return nil, err
	}
	if err := c.waitBrokers(ctx, clusterSize, 60*time.Second); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// freePorts reserves n loopback ports and releases them for the brokers to
// bind: the quorum needs every raft address before any broker starts.
func freePorts(n int) ([]string, error) {
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// binaryInfo is the VCS revision a Go binary was built from, whether the
// tree was modified, and the file's modification time.
func binaryInfo(path string) string {
	var parts []string
	if bi, err := buildinfo.ReadFile(path); err == nil {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				parts = append(parts, "revision "+s.Value[:min(len(s.Value), 12)])
			case "vcs.modified":
				if s.Value == "true" {
					parts = append(parts, "built from a modified tree")
				}
			}
		}
	}
	if fi, err := os.Stat(path); err == nil {
		parts = append(parts, "built "+fi.ModTime().UTC().Format("2006-01-02 15:04 UTC"))
	}
	if len(parts) == 0 {
		return path
	}
	return path + " (" + strings.Join(parts, ", ") + ")"
}

// bootstrap is every broker's Kafka address.
func (c *cluster) bootstrap() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.listen
	}
	return out
}

// node is the broker with the given id.
func (c *cluster) node(id int32) *node { return c.nodes[id-1] }

// close stops every broker (SIGTERM, SIGKILL after stopTimeout), all at
// once, removes the data dirs and returns how each broker stopped.
func (c *cluster) close() []stopResult {
	if c.client != nil {
		c.client.Close()
	}
	out := make([]stopResult, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = n.stop()
		}()
	}
	wg.Wait()
	start := time.Now()
	if err := os.RemoveAll(c.tmp); err != nil {
		logf("removing %s: %v", c.tmp, err)
	}
	logf("removed the data dirs in %v", time.Since(start).Round(time.Millisecond))
	return out
}

// metadata issues a fresh Metadata request for topics (brokers only if
// none): kadm's Metadata may answer from the client's cache, which lags a
// failover.
func (c *cluster) metadata(ctx context.Context, topics ...string) (*kmsg.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // none, unless named below
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	return req.RequestWith(ctx, c.client)
}

// waitBrokers waits until Metadata lists n brokers and a controller.
func (c *cluster) waitBrokers(ctx context.Context, n int, timeout time.Duration) error {
	return poll(ctx, timeout, 100*time.Millisecond, func() (bool, string) {
		m, err := c.metadata(ctx)
		if err != nil {
			return false, err.Error()
		}
		var ids []int32
		for _, b := range m.Brokers {
			ids = append(ids, b.NodeID)
		}
		return len(ids) == n && m.ControllerID >= 0, fmt.Sprintf("brokers %v, want %d; controller %d", ids, n, m.ControllerID)
	})
}

// partitionState is one partition as fresh Metadata shows it.
type partitionState struct {
	leader   int32
	replicas []int32
	isr      []int32
	err      error
}

// topicState returns topic's partitions from fresh Metadata, by index.
func (c *cluster) topicState(ctx context.Context, topic string) (map[int32]partitionState, error) {
	m, err := c.metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	for _, t := range m.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, fmt.Errorf("topic %s: %w", topic, err)
		}
		out := make(map[int32]partitionState, len(t.Partitions))
		for _, p := range t.Partitions {
			out[p.Partition] = partitionState{leader: p.Leader, replicas: p.Replicas, isr: p.ISR,
				err: kerr.ErrorForCode(p.ErrorCode)}
		}
		return out, nil
	}
	return nil, fmt.Errorf("topic %s not in metadata", topic)
}

// topicReady reports whether fresh Metadata shows all partitions of topic
// with a leader and, if fullISR, every replica in the ISR.
func (c *cluster) topicReady(ctx context.Context, topic string, partitions int, fullISR bool) (bool, string) {
	ps, err := c.topicState(ctx, topic)
	if err != nil {
		return false, err.Error()
	}
	var leaderless, short int
	for _, p := range ps {
		if p.err != nil || p.leader < 0 {
			leaderless++
		}
		if len(p.isr) < len(p.replicas) {
			short++
		}
	}
	msg := fmt.Sprintf("%s: %d of %d partitions in metadata, %d without a leader, %d with a short ISR",
		topic, len(ps), partitions, leaderless, short)
	ok := len(ps) == partitions && leaderless == 0 && (!fullISR || short == 0)
	return ok, msg
}

// createTopic creates topic with one CreateTopics request and returns when
// the broker has answered it.
func (c *cluster) createTopic(ctx context.Context, topic string, partitions int, rf int16, configs map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 60_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = int32(partitions)
	rt.ReplicationFactor = rf
	for k, v := range configs {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.client)
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	if len(resp.Topics) != 1 {
		return fmt.Errorf("creating topic %s: %d topics in the response", topic, len(resp.Topics))
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		msg := ""
		if resp.Topics[0].ErrorMessage != nil {
			msg = ": " + *resp.Topics[0].ErrorMessage
		}
		return fmt.Errorf("creating topic %s: %w%s", topic, err, msg)
	}
	return nil
}

// poll calls check every interval until it reports true, timeout passes
// (an error carrying check's last message) or ctx ends.
func poll(ctx context.Context, timeout, interval time.Duration, check func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := check()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not reached after %v: %s", timeout, msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
