package up

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/topology"
)

func TestUpDemoProducerWritesOrders(t *testing.T) {
	b := kdrtest.StartBroker(t)
	addr := b.ListenAddr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p := &demoProducer{cluster: topology.Cluster{Name: "test", Bootstrap: []string{addr}}, rf: 1, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	go func() { defer close(done); p.run(ctx) }()
	defer func() { cancel(); <-done }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(DemoTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[int64]bool{}
	last := map[int32]int64{} // per partition, ids increase
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer pcancel()
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			var o demoOrder
			if err := json.Unmarshal(r.Value, &o); err != nil {
				t.Fatalf("record %q: %v", r.Value, err)
			}
			if string(r.Key) != o.CustomerID || o.OrderID <= last[r.Partition] {
				t.Fatalf("record key %q, order %+v after id %d", r.Key, o, last[r.Partition])
			}
			last[r.Partition] = o.OrderID
			seen[o.OrderID] = true
		})
		return len(seen) >= 10, "fewer than 10 orders yet"
	})
	td, err := kadm.NewClient(cl).ListTopics(ctx, DemoTopic)
	if err != nil || len(td[DemoTopic].Partitions) != demoPartitions {
		t.Fatalf("topic %s: %v, %d partitions, want %d", DemoTopic, err, len(td[DemoTopic].Partitions), demoPartitions)
	}
}
