package mirror

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestMirrorTranslatesAcrossTransactions: kdr's brokers refuse
// transactions, so the source here is franz-go's kfake, which keeps
// transaction markers and aborted records in the log as Kafka does; the
// target is a kdr cluster. The mirror reads committed: aborted records and
// the control records that close each transaction are offsets with no copy
// on the target. A group committed at any of them — a commit marker, the
// first and a middle aborted record, an abort marker, the last marker
// before the head — translates to the target offset of the first committed
// record after it, as does a group in the middle of a committed
// transaction, at the start and at the head; a consumer of each group on
// the target reads exactly the committed records it had not consumed. The
// worker's own position passes the last marker, so its lag ends at 0.
func TestMirrorTranslatesAcrossTransactions(t *testing.T) {
	// Forwarding, the worker fetches itself and knows how far it read; on
	// the record path franz-go hands over the markers.
	for _, forward := range []bool{true, false} {
		t.Run(fmt.Sprintf("forward=%v", forward), func(t *testing.T) { translatesAcrossTransactions(t, forward) })
	}
}

func translatesAcrossTransactions(t *testing.T, forward bool) {
	east := fakeCluster(t)
	west := startCluster(t)
	const topic, group = "payments", "settle"
	east.createTopic(topic, 2)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	txn, err := kgo.NewClient(kgo.SeedBrokers(east.addr), kgo.TransactionalID("payments-writer"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	plain, err := kgo.NewClient(kgo.SeedBrokers(east.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()

	// The source log, per partition: what each step writes, and whether it
	// survives a read-committed consumer.
	type step struct {
		n      int
		txn    bool
		commit bool
	}
	steps := []step{
		{3, false, false}, // plain records
		{4, true, true},   // a committed transaction, then its marker
		{3, true, false},  // an aborted transaction, then its marker
		{2, true, true},
		{2, false, false},
		{2, true, false},
		{3, true, true},
	}
	committed := map[int32][]*kgo.Record{} // what a read-committed consumer of the source sees
	aborted := map[int32][]int64{}         // offsets of aborted records
	for i, s := range steps {
		var recs []*kgo.Record
		for p := range int32(2) {
			for j := range s.n {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("k%d", j)),
					Value:   []byte(fmt.Sprintf("p%d-step%d-%d", p, i, j)),
					Headers: []kgo.RecordHeader{{Key: "step", Value: []byte(fmt.Sprint(i))}}})
			}
		}
		cl := plain
		if s.txn {
			cl = txn
			if err := txn.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if s.txn {
			if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(s.commit)); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range recs {
			if s.txn && !s.commit {
				aborted[r.Partition] = append(aborted[r.Partition], r.Offset)
			} else {
				committed[r.Partition] = append(committed[r.Partition], r)
			}
		}
	}
	ends := east.ends(topic)
	for p, rs := range committed {
		// Each transaction adds a marker: the log is longer than its
		// records, and its last offset is the last transaction's marker.
		if want := int64(len(rs) + len(aborted[p]) + 5); ends[p] != want {
			t.Fatalf("partition %d of the source ends at %d, want %d (%d committed, %d aborted records, 5 markers)",
				p, ends[p], want, len(rs), len(aborted[p]))
		}
	}
	// offsets of the source's records that are neither committed nor
	// aborted: the transaction markers.
	markers := map[int32][]int64{}
	for p := range int32(2) {
		have := map[int64]bool{}
		for _, r := range committed[p] {
			have[r.Offset] = true
		}
		for _, o := range aborted[p] {
			have[o] = true
		}
		for o := range ends[p] {
			if !have[o] {
				markers[p] = append(markers[p], o)
			}
		}
	}

	f := testFlow(east, west, "east", "west")
	f.CheckpointInterval = 200 * time.Millisecond
	f.ForwardBatches = forward
	w := startWorker(t, f)
	remote := "east." + topic
	checkTargetHolds(t, west, remote, committed)

	// The worker passes the last marker: its position is the source's end,
	// it commits that, and no lag remains.
	waitCommitted(t, east, f.Group(), topic, ends[0]+ends[1], 30*time.Second)
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		st := w.Status()
		for _, ps := range st.Partitions {
			if ps.Topic == topic && (ps.NextOffset != ends[ps.Partition] || ps.Lag != 0) {
				return false, fmt.Sprintf("partition %d: next offset %d, lag %d; the source ends at %d", ps.Partition, ps.NextOffset, ps.Lag, ends[ps.Partition])
			}
		}
		return len(st.Partitions) == 2, fmt.Sprintf("%d partitions owned", len(st.Partitions))
	})

	// Where each group stands on the source, per partition.
	positions := []map[int32]int64{
		{0: markers[0][0], 1: aborted[1][0]},                 // a commit marker; the first aborted record
		{0: aborted[0][1], 1: markers[1][1]},                 // a middle aborted record; an abort marker
		{0: committed[0][4].Offset, 1: markers[1][4]},        // inside a committed transaction; the last marker
		{0: 0, 1: ends[1]},                                   // the start; the head
		{0: aborted[0][len(aborted[0])-1], 1: markers[1][3]}, // the last aborted record; the marker after it
	}
	checkGroupsFollow(t, east, west, topic, remote, group, committed, positions)
}
