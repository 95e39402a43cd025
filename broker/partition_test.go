package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/internal/checker"
	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/internal/recordbatch"
)

// TestBrokerClusterPartitionedLeaderStopsAcking cuts the leader of a
// partition off from the other two brokers (raft and replication; clients
// still reach it) while an idempotent acks=all producer writes numbered
// records per key. The other two must elect new leaders and keep
// acknowledging; the cut-off leader must not acknowledge an acks=all
// write; after the partition heals every acknowledged record is there
// once, in order, and what the old leader appended while cut off is gone —
// also when it leads again.
func TestBrokerClusterPartitionedLeaderStopsAcking(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c, raftMesh, kafkaMesh := kdrtest.StartMeshCluster(t, kdrtest.Binary(t), 3)
	faults := kdrtest.MeshFaults{Raft: raftMesh, Kafka: kafkaMesh}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const topic = "partitioned"
	resp, err := c.Admin().CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	for p := int32(0); p < 3; p++ {
		c.WaitISREverywhere(topic, p, 3)
	}
	cfg := checker.DefaultConfig(c.Bootstrap(), topic)
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	run, err := checker.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	prod := run.Producer()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		n := prod.Stats().Acked
		return n >= 300, fmt.Sprintf("%d records acknowledged before the partition, want 300", n)
	})

	const target = int32(0) // the partition whose leader is cut off
	before := c.WaitISREverywhere(topic, target, 3)
	old := before.Leader
	led := map[int32]kdrtest.Partition{} // the partitions old leads, as before the cut
	for p := int32(0); p < 3; p++ {
		if pd, err := c.PartitionFrom(old, topic, p); err == nil && pd.Leader == old {
			led[p] = pd
		}
	}
	var majority []int32
	for id := int32(1); id <= 3; id++ {
		if id != old {
			majority = append(majority, id)
		}
	}
	t.Logf("isolating broker %d, leader of partitions %v", old, slices.Sorted(maps.Keys(led)))
	cut := time.Now()
	faults.IsolateBroker(old)

	// (b) The cut-off leader, which still believes it leads with a full
	// ISR, appends the write but must not acknowledge it.
	probe := func(name string) {
		t.Helper()
		code := produceDirect(t, c.Brokers[c.Index(old)].Addr(), topic, target, name)
		switch code {
		case kerr.NotEnoughReplicas.Code, kerr.NotEnoughReplicasAfterAppend.Code, kerr.RequestTimedOut.Code, kerr.NotLeaderForPartition.Code:
			t.Logf("produce %s to isolated broker %d: %v", name, old, kerr.ErrorForCode(code))
		default:
			t.Fatalf("produce %s to isolated broker %d with acks=all: %v, want it not acknowledged", name, old, kerr.ErrorForCode(code))
		}
	}
	probe("isolated-probe-1")

	// (a) The rest of the cluster moves every partition old led, as both
	// brokers of the majority report it.
	kdrtest.Eventually(t, 15*time.Second-time.Since(cut), func() (bool, string) {
		for _, id := range majority {
			for p := range led {
				pd, err := c.PartitionFrom(id, topic, p)
				if err != nil {
					return false, err.Error()
				}
				if pd.Leader < 0 || pd.Leader == old || pd.LeaderEpoch <= led[p].LeaderEpoch {
					return false, fmt.Sprintf("broker %d sees %s-%d led by %d at epoch %d (before the cut: %d at %d)",
						id, topic, p, pd.Leader, pd.LeaderEpoch, old, led[p].LeaderEpoch)
				}
			}
		}
		return true, ""
	})
	t.Logf("new leaders elected %s after the cut", time.Since(cut).Round(time.Millisecond))
	// Cut off, old keeps the metadata from before the cut (it may still
	// see itself as leader with a full ISR) and must still not acknowledge.
	if pd, err := c.PartitionFrom(old, topic, target); err == nil {
		t.Logf("isolated broker %d's view of %s-%d: leader %d epoch %d ISR %v", old, topic, target, pd.Leader, pd.LeaderEpoch, pd.ISR)
	}
	probe("isolated-probe-2")

	// (c) The majority keeps acknowledging, the target partition included.
	mark := len(prod.Acked())
	kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
		n := 0
		for _, r := range prod.Acked()[mark:] {
			if r.Partition == target {
				n++
			}
		}
		return n >= 100, fmt.Sprintf("%d records of partition %d acknowledged since the new leaders, want 100", n, target)
	})

	faults.HealAll()
	for p := int32(0); p < 3; p++ {
		c.WaitISREverywhere(topic, p, 3)
	}
	rep, err := run.Drain(ctx)
	if err != nil {
		t.Fatalf("drain: %v\n%s", err, rep)
	}
	t.Logf("partition of broker %d: %s", old, rep)
	if !rep.OK() || rep.Acked == 0 {
		t.Fatalf("checker: %s", rep)
	}
	pd := c.WaitISREverywhere(topic, target, 3)
	log0 := readToEnd(t, c, topic, target, 0)
	checkNoProbe(t, log0, fmt.Sprintf("leader %d", pd.Leader))

	// Old leads the target partition again (it was chosen first, so it is
	// the preferred replica): its log must be the majority's, without what
	// it appended while cut off.
	if before.Replicas[0] == old {
		electPreferred(t, ctx, c, topic, target, old)
		again := readToEnd(t, c, topic, target, int64(len(log0)))
		checkNoProbe(t, again, fmt.Sprintf("old leader %d", old))
		if len(again) < len(log0) || !slices.Equal(again[:len(log0)], log0) {
			t.Fatalf("old leader %d serves a log that differs from the majority's (%d records vs %d)", old, len(again), len(log0))
		}
	} else {
		t.Logf("broker %d is not %s-%d's preferred replica; not moving leadership back", old, topic, target)
	}

	// A broker of a mesh cluster restarts like any other.
	c.Kill(old)
	c.Restart(old)
	c.WaitISREverywhere(topic, target, 3)
}

// produceDirect sends one acks=all record for topic/p to the broker at addr
// itself (no client-side routing or retries), with a 2 s produce timeout,
// and returns the partition's error code.
func produceDirect(t *testing.T, addr, topic string, p int32, value string) int16 {
	t.Helper()
	batch, err := recordbatch.Build([]recordbatch.Record{{Key: []byte("probe"), Value: []byte(value)}},
		recordbatch.Options{TimestampMs: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 2000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = p, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kdrtest.BrokerRequest(ctx, addr, req)
	if err != nil {
		t.Fatalf("produce %s to %s: no answer within 10s (the produce timeout is 2s): %v", value, addr, err)
	}
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		t.Fatalf("produce %s to %s: malformed response %+v", value, addr, pr)
	}
	return pr.Topics[0].Partitions[0].ErrorCode
}

// readToEnd reads topic/p from offset 0 to its end offset (high
// watermark), once that is at least atLeast: a leader elected moments ago
// exposes only what it knows every ISR member has, and learns more at its
// followers' next fetches.
func readToEnd(t *testing.T, c *kdrtest.Cluster, topic string, p int32, atLeast int64) []string {
	t.Helper()
	var end int64
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		ends, err := c.Admin().ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return false, fmt.Sprintf("end offsets of %s: %v", topic, err)
		}
		o, _ := ends.Lookup(topic, p)
		end = o.Offset
		return end >= atLeast, fmt.Sprintf("%s-%d ends at %d, want at least %d", topic, p, end, atLeast)
	})
	return readPartition(t, c.Bootstrap(), topic, p, int(end))
}

// checkNoProbe fails if a record written to the cut-off leader is in log.
func checkNoProbe(t *testing.T, log []string, from string) {
	t.Helper()
	for i, v := range log {
		if strings.HasPrefix(v, "isolated-probe") {
			t.Fatalf("%s serves %q at offset %d: a write the cut-off leader appended survived the partition", from, v, i)
		}
	}
}

// electPreferred moves topic/p's leadership to its preferred replica want
// and waits until every broker sees it there with a full ISR.
func electPreferred(t *testing.T, ctx context.Context, c *kdrtest.Cluster, topic string, p, want int32) {
	t.Helper()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		res, err := c.Admin().ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{topic: {p: {}}})
		if err != nil {
			return false, err.Error()
		}
		if r, ok := res[topic][p]; ok && r.Err != nil && !errors.Is(r.Err, kerr.ElectionNotNeeded) {
			return false, fmt.Sprintf("electing %s-%d: %v", topic, p, r.Err)
		}
		pd, err := c.PartitionFrom(want, topic, p)
		if err != nil {
			return false, err.Error()
		}
		return pd.Leader == want, fmt.Sprintf("%s-%d leader %d, want %d", topic, p, pd.Leader, want)
	})
	if pd := c.WaitISREverywhere(topic, p, 3); pd.Leader != want {
		t.Fatalf("%s-%d leader %d, want %d", topic, p, pd.Leader, want)
	}
}

func TestBrokerClusterParsePeerAddresses(t *testing.T) {
	got, err := broker.ParsePeerAddresses(" 2=127.0.0.1:19093, 3=[::1]:19094 ,")
	if err != nil || len(got) != 2 || got[2] != "127.0.0.1:19093" || got[3] != "[::1]:19094" {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := broker.ParsePeerAddresses(""); err != nil || got != nil {
		t.Fatalf("empty: got %v, %v", got, err)
	}
	for _, bad := range []string{"2", "x=127.0.0.1:1", "-1=127.0.0.1:1", "2="} {
		if _, err := broker.ParsePeerAddresses(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	cc := broker.DefaultClusterConfig()
	cc.RaftListen, cc.Quorum = "127.0.0.1:9093", []broker.Voter{{ID: 1, Addr: "127.0.0.1:9093"}}
	cc.PeerRaftAddresses = map[int32]string{2: "127.0.0.1:0"}
	if err := cc.Validate(1); err == nil || !strings.Contains(err.Error(), "peer raft address of node 2") {
		t.Fatalf("invalid peer raft address: %v", err)
	}
}
