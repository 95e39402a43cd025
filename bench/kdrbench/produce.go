package main

import (
	"context"
	"fmt"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceFor produces as fast as w.producers clients accept records for d
// (see benchkit.Producer.ProduceFor). The warm-up record of each client is
// counted apart, for the end-offset check.
func produceFor(ctx context.Context, addr string, w workload, d time.Duration) (benchkit.ProduceResult, error) {
	clients := make([]*kgo.Client, w.producers)
	for i := range clients {
		cl, err := kgo.NewClient(w.producerOpts(addr)...)
		if err != nil {
			return benchkit.ProduceResult{}, err
		}
		defer cl.Close()
		clients[i] = cl
	}
	var warmup int64
	for _, cl := range clients {
		if err := w.WarmUp(ctx, cl); err != nil {
			return benchkit.ProduceResult{}, fmt.Errorf("warm-up record: %w", err)
		}
		warmup++
	}
	r := w.ProduceFor(ctx, clients, d)
	r.Warmup = warmup
	return r, ctx.Err()
}

// produceAtRate produces rate records/s with one client for d, measuring
// each record's latency (see benchkit.Producer.ProduceAtRate).
func produceAtRate(ctx context.Context, addr string, w workload, rate float64, d time.Duration) (benchkit.LatencyResult, error) {
	cl, err := kgo.NewClient(w.producerOpts(addr)...)
	if err != nil {
		return benchkit.LatencyResult{Rate: rate}, err
	}
	defer cl.Close()
	if err := w.WarmUp(ctx, cl); err != nil {
		return benchkit.LatencyResult{Rate: rate}, fmt.Errorf("warm-up record: %w", err)
	}
	res, err := w.ProduceAtRate(ctx, cl, rate, d)
	res.Produced.Warmup = 1
	return res, err
}
