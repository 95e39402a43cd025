package mirror

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// partitionsOf lists the source partitions a worker owns, as "topic/p".
func partitionsOf(w *running) []string {
	var out []string
	for _, p := range w.Status().Partitions {
		out = append(out, fmt.Sprintf("%s/%d", p.Topic, p.Partition))
	}
	return out
}

// groupAssignment is the coordinator's view of who owns what: member →
// partitions of topic.
func groupAssignment(t *testing.T, c *cluster, group, topic string) map[string][]int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dg, err := c.adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]int32{}
	for _, m := range dg[group].Members {
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range ca.Topics {
				if tp.Topic == topic {
					out[m.MemberID] = append(out[m.MemberID], tp.Partitions...)
				}
			}
		}
	}
	return out
}

func seqRecords(topic string, partitions, from, n int) []*kgo.Record {
	var out []*kgo.Record
	for i := from; i < from+n; i++ {
		out = append(out, &kgo.Record{Topic: topic, Partition: int32(i % partitions),
			Value: []byte(fmt.Sprintf("r-%06d", i)), Headers: []kgo.RecordHeader{{Key: "id", Value: []byte(fmt.Sprintf("r-%06d", i))}}})
	}
	return out
}

func TestMirrorWorkersSharePartitions(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	const parts = 6
	east.createTopic("orders", parts)
	f := testFlow(east, west, "east", "west")
	a := startWorker(t, f)
	b := startWorker(t, f)
	const n1, n2 = 1200, 1200
	east.produce(seqRecords("orders", parts, 0, n1)...)
	waitCount(t, west, "east.orders", n1, 30*time.Second)

	// Both workers own partitions; the coordinator gives each partition to
	// exactly one of them.
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		pa, pb := partitionsOf(a), partitionsOf(b)
		all := append(slices.Clone(pa), pb...)
		slices.Sort(all)
		if len(pa) == 0 || len(pb) == 0 || len(slices.Compact(all)) != parts || len(all) != parts {
			return false, fmt.Sprintf("worker a owns %v, b owns %v", pa, pb)
		}
		seen := map[int32]int{}
		for _, ps := range groupAssignment(t, east, f.Group(), "orders") {
			for _, p := range ps {
				seen[p]++
			}
		}
		for p := int32(0); p < parts; p++ {
			if seen[p] != 1 {
				return false, fmt.Sprintf("coordinator assigns partition %d to %d members", p, seen[p])
			}
		}
		return true, ""
	})

	// Stop a while records are produced: b takes everything over, from a's
	// commits, without losing or repeating a record.
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < n2; i += 100 {
			if err := east.tryProduce(seqRecords("orders", parts, n1+i, 100)...); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	a.stop()
	<-produced
	waitCount(t, west, "east.orders", n1+n2, 30*time.Second)
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		return len(partitionsOf(b)) == parts, fmt.Sprintf("b owns %v", partitionsOf(b))
	})
	got := ids(west.readAll("east.orders"))
	var want []string
	for _, r := range seqRecords("orders", parts, 0, n1+n2) {
		want = append(want, string(r.Value))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("target holds %d records, want the %d produced, each once; %s", len(got), len(want), diffIDs(got, want))
	}
	ta, _ := a.Status().Topic("orders")
	tb, _ := b.Status().Topic("orders")
	if ta.Records+tb.Records != n1+n2 {
		t.Errorf("workers copied %d + %d records, want %d in all", ta.Records, tb.Records, n1+n2)
	}
}

// diffIDs describes how got differs from want (both sorted).
func diffIDs(got, want []string) string {
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	var dup, missing []string
	for _, w := range want {
		switch count[w] {
		case 0:
			missing = append(missing, w)
		case 1:
		default:
			dup = append(dup, w)
		}
		delete(count, w)
	}
	var extra []string
	for g := range count {
		extra = append(extra, g)
	}
	clip := func(s []string) []string { return s[:min(len(s), 10)] }
	return fmt.Sprintf("%d duplicated %v, %d missing %v, %d unexpected %v", len(dup), clip(dup), len(missing), clip(missing), len(extra), clip(extra))
}
