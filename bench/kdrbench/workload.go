package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// topic is the one topic every phase writes and reads.
const topic = "bench"

// workload is the client side of the benchmark, identical for every target.
type workload struct {
	partitions  int
	recordSize  int
	producers   int
	inflight    int
	linger      time.Duration
	maxBuffered int
	value       []byte // shared by every record; the client never writes it
}

func newWorkload(o options) workload {
	v := make([]byte, o.recordSize)
	rand.Read(v) // incompressible, although compression is off anyway
	return workload{
		partitions:  o.partitions,
		recordSize:  o.recordSize,
		producers:   o.producers,
		inflight:    o.inflight,
		linger:      o.linger,
		maxBuffered: o.maxBuffered,
		value:       v,
	}
}

// producerOpts configures a franz-go producer: acks=1, no idempotency, no
// compression, several requests in flight, a short linger, and the default
// uniform-bytes partitioner (64 KiB sticky batches across all partitions).
func (w workload) producerOpts(addr string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxProduceRequestsInflightPerBroker(w.inflight),
		kgo.ProducerLinger(w.linger),
		kgo.MaxBufferedRecords(w.maxBuffered),
		kgo.RecordRetries(0), // a failed record is counted, not hidden by a retry
	}
}

// consumerOpts configures a direct (group-less) franz-go consumer of the
// whole topic from offset 0.
func (w workload) consumerOpts(addr string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64 << 20),
		kgo.FetchMaxPartitionBytes(8 << 20),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}
}

// describe is the workload in one line, for the report.
func (w workload) describe() string {
	return fmt.Sprintf("franz-go kgo, %d B values (no key), %d partitions, acks=1, idempotency off, no compression, "+
		"%d producer client(s), %d requests in flight per broker, linger %v, %d buffered records per client",
		w.recordSize, w.partitions, w.producers, w.inflight, w.linger, w.maxBuffered)
}

// createTopic creates the bench topic (replication factor 1) and waits until
// metadata shows a leader for every partition.
func createTopic(ctx context.Context, addr string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err != nil {
		return fmt.Errorf("creating topic %q: %w", topic, err)
	}
	if resp.Err != nil {
		return fmt.Errorf("creating topic %q: %w", topic, resp.Err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		ready, err := topicReady(ctx, adm, partitions)
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %q has no leader on all %d partitions after 30 s (last error: %v)", topic, partitions, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func topicReady(ctx context.Context, adm *kadm.Client, partitions int) (bool, error) {
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return false, err
	}
	td, ok := tds[topic]
	if !ok || td.Err != nil {
		return false, td.Err
	}
	if len(td.Partitions) != partitions {
		return false, fmt.Errorf("metadata shows %d partitions", len(td.Partitions))
	}
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return false, p.Err
		}
	}
	return true, nil
}

// endOffsets sums the high watermarks of the bench topic's partitions: the
// number of records the broker says it holds.
func endOffsets(ctx context.Context, addr string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	if err := offs.Error(); err != nil {
		return 0, err
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, nil
}
