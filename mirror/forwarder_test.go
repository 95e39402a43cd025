package mirror

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestForwarderSequences drives the forwarder's producer against a kdr
// broker: a retry of an appended batch with its sequence is answered as a
// duplicate with the original offsets (nothing appended twice); a sequence
// the broker does not expect fails the batch, the ones after it in the
// partition are not sent, and the next send starts a new producer ID whose
// batches are taken.
func TestForwarderSequences(t *testing.T) {
	c := startCluster(t)
	c.createTopic("t", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f := newForwarder(cl, 10*time.Second)
	ps := &partState{topic: "t", partition: 0, remote: "t"}
	tp := topicPartition{"t", 0}
	batch := func(base int64, n int) *rawBatch {
		return oneView(t, makeBatch(base, 0, 1_700_000_000_000, plainRecords(n), nil)).toRaw()
	}
	send := func(bs ...*rawBatch) []*job {
		t.Helper()
		jobs := make([]*job, len(bs))
		for i, b := range bs {
			jobs[i] = &job{raw: b, base: -1}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		f.send(ctx, map[*partState][]*job{ps: jobs})
		return jobs
	}

	// Two batches in rounds, in order.
	jobs := send(batch(0, 3), batch(3, 4))
	for i, want := range []int64{0, 3} {
		if jobs[i].err != nil || jobs[i].base != want {
			t.Fatalf("batch %d: base %d, %v; want base %d", i, jobs[i].base, jobs[i].err, want)
		}
	}
	pid := f.producerID
	if f.seqs[tp] != 7 {
		t.Fatalf("next sequence %d, want 7", f.seqs[tp])
	}

	// The second batch again with its sequence (a retry after a lost
	// answer): the broker recognises it.
	f.seqs[tp] = 3
	if j := send(batch(3, 4))[0]; j.err != nil || j.base != 3 {
		t.Fatalf("retried batch: base %d, %v; want the original offset 3", j.base, j.err)
	}
	if got := c.ends("t")[0]; got != 7 {
		t.Fatalf("log end offset %d after the retry, want 7 (nothing appended twice)", got)
	}

	// A gap in the sequence: refused, the batch after it not sent, and the
	// producer starts over with a new ID.
	f.seqs[tp] = 50
	jobs = send(batch(7, 2), batch(9, 2))
	if !errors.Is(jobs[0].err, kerr.OutOfOrderSequenceNumber) || !errors.Is(jobs[1].err, errNotSent) {
		t.Fatalf("errors %v and %v; want out of order, then not sent", jobs[0].err, jobs[1].err)
	}
	if f.producerID != -1 {
		t.Fatalf("producer ID %d kept after an out of order sequence", f.producerID)
	}
	jobs = send(batch(7, 2), batch(9, 2))
	for i, want := range []int64{7, 9} {
		if jobs[i].err != nil || jobs[i].base != want {
			t.Fatalf("after the reset, batch %d: base %d, %v; want base %d", i, jobs[i].base, jobs[i].err, want)
		}
	}
	if f.producerID == pid || f.seqs[tp] != 4 {
		t.Fatalf("producer ID %d (was %d), next sequence %d; want a new ID and 4", f.producerID, pid, f.seqs[tp])
	}
	if got := c.ends("t")[0]; got != 11 {
		t.Fatalf("log end offset %d, want 11", got)
	}

	// A partition the target does not have: the leader lookup fails the
	// batch without sending it.
	ghost := &partState{topic: "t", partition: 0, remote: "missing"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	j := &job{raw: batch(0, 1), base: -1}
	f.send(ctx, map[*partState][]*job{ghost: {j}})
	if !errors.Is(j.err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("a batch for a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", j.err)
	}
}
