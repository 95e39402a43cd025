package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestBrokerClusterReplicatesAndFailsOver runs three broker processes:
// an RF=3 topic is created and described, acks=all records reach every
// replica, and after the leader is SIGKILLed a new leader from the ISR
// serves every acknowledged record while producing continues.
func TestBrokerClusterReplicatesAndFailsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := kdrtest.StartCluster(t, kdrBinary(t), 3, "--log-level", "debug")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	resp, err := c.Admin().CreateTopic(ctx, 2, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "rep")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	for p := int32(0); p < 2; p++ {
		c.WaitISR("rep", p, 3)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.DefaultProduceTopic("rep"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			r := &kgo.Record{Value: []byte(fmt.Sprintf("v%04d", i)), Partition: 0}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
		}
	}
	produce(0, 100)
	leader := c.Leader("rep", 0)
	c.Kill(leader)
	produce(100, 200)
	newLeader := c.Leader("rep", 0)
	if newLeader == leader {
		t.Fatalf("leader still %d after kill", leader)
	}
	got := readPartition(t, c.Bootstrap(), "rep", 0, 200)
	for i, v := range got {
		if want := fmt.Sprintf("v%04d", i); v != want {
			t.Fatalf("offset %d: %q, want %q", i, v, want)
		}
	}
	c.Restart(leader)
	c.WaitISR("rep", 0, 3)
}

// readPartition reads exactly n records from offset 0 of one partition.
func readPartition(t *testing.T, seeds []string, topic string, p int32, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []string
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if int(r.Offset) != len(out) {
				t.Fatalf("offset %d after %d records", r.Offset, len(out))
			}
			out = append(out, string(r.Value))
		})
	}
	return out
}
