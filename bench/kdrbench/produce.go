package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceResult counts what a produce run got acknowledged.
type produceResult struct {
	records  int64 // acknowledged, in the timed window
	warmup   int64 // acknowledged before the clock started
	bytes    int64 // acknowledged value bytes
	failed   int64 // records whose promise had an error
	firstErr error
	elapsed  time.Duration // first Produce call to the last acknowledgement
}

// mbps is acknowledged value bytes per second, in MB (10^6 bytes).
func (r produceResult) mbps() float64 { return float64(r.bytes) / r.elapsed.Seconds() / 1e6 }

// recordsPerSec is acknowledged records per second.
func (r produceResult) recordsPerSec() float64 { return float64(r.records) / r.elapsed.Seconds() }

// tally is the promise-side counter shared by a run's clients.
type tally struct {
	records, bytes, failed atomic.Int64
	errOnce                sync.Once
	firstErr               error
}

func (t *tally) promise(r *kgo.Record, err error) {
	if err != nil {
		t.failed.Add(1)
		t.errOnce.Do(func() { t.firstErr = err })
		return
	}
	t.records.Add(1)
	t.bytes.Add(int64(len(r.Value)))
}

func (t *tally) result(elapsed time.Duration) produceResult {
	return produceResult{
		records:  t.records.Load(),
		bytes:    t.bytes.Load(),
		failed:   t.failed.Load(),
		firstErr: t.firstErr,
		elapsed:  elapsed,
	}
}

// produceFor produces as fast as the clients accept records for d, then
// flushes: the elapsed time includes waiting for the last acknowledgement.
// Each of w.producers clients runs in its own goroutine; Produce blocks once
// a client holds w.maxBuffered unacknowledged records.
func produceFor(ctx context.Context, addr string, w workload, d time.Duration) (produceResult, error) {
	clients := make([]*kgo.Client, w.producers)
	for i := range clients {
		cl, err := kgo.NewClient(w.producerOpts(addr)...)
		if err != nil {
			return produceResult{}, err
		}
		defer cl.Close()
		clients[i] = cl
	}
	// One synchronous record per client connects it and loads the topic's
	// metadata before the clock starts.
	var warmup int64
	for _, cl := range clients {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: w.value}).FirstErr(); err != nil {
			return produceResult{}, fmt.Errorf("warm-up record: %w", err)
		}
		warmup++
	}

	var t tally
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				// Reading the clock every record would cost more than it tells.
				if i%128 == 0 && time.Now().After(deadline) {
					break
				}
				cl.Produce(ctx, &kgo.Record{Value: w.value}, t.promise)
			}
			cl.Flush(ctx)
		}()
	}
	wg.Wait()
	r := t.result(time.Since(start))
	r.warmup = warmup
	return r, ctx.Err()
}
