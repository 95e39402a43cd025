package client_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/failover/client"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/failover/store/filestore"
	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/topology"
)

// setState changes the stored state with compare-and-swap.
func setState(t *testing.T, st store.Store, change func(*store.State)) {
	t.Helper()
	ctx := context.Background()
	v, err := st.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := v.State
	s.Topology = "t"
	change(&s)
	if _, err := st.CompareAndSwap(ctx, s, v.Version); err != nil {
		t.Fatal(err)
	}
}

func produceSync(t *testing.T, p *client.Producer, value string) string {
	t.Helper()
	done := make(chan error, 1)
	cluster := p.Produce(context.Background(), &kgo.Record{Value: []byte(value)}, func(_ *kgo.Record, err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatalf("produce %s to %s: %v", value, cluster, err)
	}
	return cluster
}

// TestFailoverClientRepointsOnActiveChange: the producer follows Active at
// once; the consumer leaves the old cluster and joins the new one only
// when ConsumerOffsets names it.
func TestFailoverClientRepointsOnActiveChange(t *testing.T) {
	a, b := kdrtest.StartBroker(t), kdrtest.StartBroker(t)
	topo := &topology.Topology{Metadata: topology.Metadata{Name: "t"},
		Clusters:    []topology.Cluster{{Name: "a", Bootstrap: []string{a.Addr()}}, {Name: "b", Bootstrap: []string{b.Addr()}}},
		Replication: []topology.Pattern{{Type: topology.ActivePassive, Primary: "a", Standby: "b"}}}
	for _, addr := range []string{a.Addr(), b.Addr()} {
		k, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kadm.NewClient(k).CreateTopic(context.Background(), 1, 1, nil, "t1"); err != nil {
			t.Fatal(err)
		}
		k.Close()
	}
	st, err := filestore.New(filepath.Join(t.TempDir(), "t.json"), "t")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	repointed := make(chan client.Repoint, 4)
	cl, err := client.New(context.Background(), client.Config{Topology: topo, Store: st, OffsetsTimeout: 30 * time.Second,
		OnRepoint: func(r client.Repoint) { repointed <- r }})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if cl.Active() != "a" {
		t.Fatalf("active %q without a document, want the primary a", cl.Active())
	}
	changes := cl.Changes()
	p, err := cl.NewProducer(kgo.DefaultProduceTopic("t1"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := cl.NewConsumer(client.ConsumerConfig{Group: "g", Topics: []string{"t1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if got := produceSync(t, p, "on-a"); got != "a" {
		t.Fatalf("produced to %s, want a", got)
	}
	batch, err := c.Poll(ctx)
	if err != nil || batch.Cluster != "a" || len(batch.Records) != 1 || string(batch.Records[0].Value) != "on-a" {
		t.Fatalf("first poll: %v %+v", err, batch)
	}

	// Active moves to b during an operation; the offsets are not moved yet.
	setState(t, st, func(s *store.State) {
		s.Active, s.Epoch = "b", 1
		s.Operation = &store.Operation{ID: "op", Kind: "switchover", From: "a", To: "b"}
	})
	if got := <-changes; got != "b" {
		t.Fatalf("change to %q, want b", got)
	}
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) { return p.Cluster() == "b", "producer still on " + p.Cluster() })
	if got := produceSync(t, p, "on-b"); got != "b" {
		t.Fatalf("produced to %s, want b", got)
	}
	polled := make(chan client.Batch, 1)
	go func() {
		b, _ := c.Poll(ctx)
		polled <- b
	}()
	r := <-repointed
	if r.Role != "producer" || r.To != "b" {
		t.Fatalf("first repoint %+v, want the producer's", r)
	}
	select {
	case b := <-polled:
		t.Fatalf("the consumer read %+v from %s before ConsumerOffsets named b", b.Records, b.Cluster)
	case <-time.After(time.Second): // the consumer must still be waiting: a bounded observation, not a sync
	}
	setState(t, st, func(s *store.State) { s.ConsumerOffsets, s.Operation = "b", nil })
	batch = <-polled
	if batch.Cluster != "b" || len(batch.Records) != 1 || string(batch.Records[0].Value) != "on-b" {
		t.Fatalf("poll after the repoint: %+v", batch)
	}
	r = <-repointed
	if r.Role != "consumer" || r.From != "a" || r.To != "b" || r.OffsetsTimedOut {
		t.Fatalf("consumer repoint %+v", r)
	}
	if s := c.Stats(); s.Repoints != 1 || s.Cluster != "b" {
		t.Fatalf("consumer stats %+v", s)
	}
	if s := p.Stats(); s.Repoints != 1 || s.Cluster != "b" {
		t.Fatalf("producer stats %+v", s)
	}
}
