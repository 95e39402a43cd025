package main

import (
	"context"
	"fmt"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// topic is the one topic every phase writes and reads.
const topic = "bench"

// workload is the client side of the benchmark, identical for every target.
type workload struct {
	benchkit.Producer
	partitions int
	recordSize int
	producers  int
}

func newWorkload(o options) workload {
	return workload{
		Producer:   benchkit.NewProducer(o.Common),
		partitions: o.Partitions,
		recordSize: o.RecordSize,
		producers:  o.producers,
	}
}

// producerOpts configures a producer of the bench topic with acks=1 (see
// benchkit.Producer.Opts).
func (w workload) producerOpts(addr string) []kgo.Opt {
	return w.Opts([]string{addr}, topic, kgo.LeaderAck())
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
		w.recordSize, w.partitions, w.producers, w.Inflight, w.Linger, w.MaxBuffered)
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
