package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pacerTick is how often the paced producer tops up to its schedule.
const pacerTick = time.Millisecond

// latencyResult is a paced produce run and its per-record latencies.
type latencyResult struct {
	rate           float64 // target records/s
	produced       produceResult
	p50, p99, p999 time.Duration
	max            time.Duration
}

// produceAtRate produces rate records/s with one client for d and measures
// each record's latency from the Produce call to its promise. Every tick, it
// produces the records the schedule owes so far, so a slow tick is made up
// for rather than lost; if the client falls behind, the achieved rate shows
// it.
func produceAtRate(ctx context.Context, addr string, w workload, rate float64, d time.Duration) (latencyResult, error) {
	res := latencyResult{rate: rate}
	cl, err := kgo.NewClient(w.producerOpts(addr)...)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: w.value}).FirstErr(); err != nil {
		return res, fmt.Errorf("warm-up record: %w", err)
	}

	var (
		t   tally
		mu  sync.Mutex
		lat = make([]time.Duration, 0, int(rate*d.Seconds())+1)
	)
	ticker := time.NewTicker(pacerTick)
	defer ticker.Stop()
	start := time.Now()
	var sent int64
	for ctx.Err() == nil {
		now := time.Now()
		elapsed := now.Sub(start)
		if elapsed >= d {
			break
		}
		due := int64(rate * elapsed.Seconds())
		for ; sent < due && ctx.Err() == nil; sent++ {
			at := time.Now()
			cl.Produce(ctx, &kgo.Record{Value: w.value}, func(r *kgo.Record, err error) {
				took := time.Since(at)
				t.promise(r, err)
				if err == nil {
					mu.Lock()
					lat = append(lat, took)
					mu.Unlock()
				}
			})
		}
		select {
		case <-ctx.Done():
		case <-ticker.C:
		}
	}
	cl.Flush(ctx)
	res.produced = t.result(time.Since(start))
	res.produced.warmup = 1

	slices.Sort(lat)
	res.p50 = percentile(lat, 0.50)
	res.p99 = percentile(lat, 0.99)
	res.p999 = percentile(lat, 0.999)
	if len(lat) > 0 {
		res.max = lat[len(lat)-1]
	}
	return res, ctx.Err()
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}
