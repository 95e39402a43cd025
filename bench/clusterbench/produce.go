package main

import (
	"context"
	"fmt"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
	"github.com/twmb/franz-go/pkg/kgo"
)

// workload is the client side of the throughput and latency phases.
type workload struct {
	benchkit.Producer
	seeds []string
}

func newWorkload(o options, seeds []string) workload {
	return workload{Producer: benchkit.NewProducer(o.Common), seeds: seeds}
}

// newWarmProducer returns a client of topic whose first record, produced
// synchronously, has loaded the topic's metadata and connected it before
// any clock starts.
func newWarmProducer(ctx context.Context, w workload, topic string, acks kgo.Acks) (*kgo.Client, error) {
	cl, err := kgo.NewClient(w.Opts(w.seeds, topic, acks)...)
	if err != nil {
		return nil, err
	}
	if err := w.WarmUp(ctx, cl); err != nil {
		cl.Close()
		return nil, fmt.Errorf("warm-up record to %s: %w", topic, err)
	}
	return cl, nil
}

// produceFor produces to topic as fast as one client accepts records for
// d (see benchkit.Producer.ProduceFor).
func produceFor(ctx context.Context, w workload, topic string, acks kgo.Acks, d time.Duration) (benchkit.ProduceResult, error) {
	cl, err := newWarmProducer(ctx, w, topic, acks)
	if err != nil {
		return benchkit.ProduceResult{}, err
	}
	defer cl.Close()
	return w.ProduceFor(ctx, []*kgo.Client{cl}, d), ctx.Err()
}

// produceAtRate produces rate records/s to topic with one client for d,
// measuring each record's latency (see benchkit.Producer.ProduceAtRate).
func produceAtRate(ctx context.Context, w workload, topic string, acks kgo.Acks, rate float64, d time.Duration) (benchkit.LatencyResult, error) {
	cl, err := newWarmProducer(ctx, w, topic, acks)
	if err != nil {
		return benchkit.LatencyResult{Rate: rate}, err
	}
	defer cl.Close()
	return w.ProduceAtRate(ctx, cl, rate, d)
}
