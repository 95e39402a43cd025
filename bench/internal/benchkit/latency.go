package benchkit

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pacerTick is how often the paced producer tops up to its schedule.
const pacerTick = time.Millisecond

// A slow window is a SlowWindow of a paced run in which a record took over
// SlowRecord: how many there were tells a steady tail from a few stalls.
const (
	SlowWindow = 250 * time.Millisecond
	SlowRecord = 50 * time.Millisecond
)

// LatencyResult is a paced produce run and its per-record latencies.
type LatencyResult struct {
	Rate           float64 // target records/s
	Produced       ProduceResult
	P50, P99, P999 time.Duration
	Max            time.Duration
	SlowWindows    int // SlowWindows of the run with a record over SlowRecord
}

// PacedRun is a paced produce run whose latencies are not summarised yet.
// Sorting millions of them takes a core for most of a second: a caller
// still timing what the records do next (the mirror bench waits for them
// on the target) summarises only once that is over.
type PacedRun struct {
	Rate     float64 // target records/s
	Produced ProduceResult
	lat      []time.Duration // per acknowledged record, in no order
	slow     int             // SlowWindows
}

// Summary sorts the run's latencies into its percentiles.
func (r PacedRun) Summary() LatencyResult {
	res := LatencyResult{Rate: r.Rate, Produced: r.Produced, SlowWindows: r.slow}
	slices.Sort(r.lat)
	res.P50 = Percentile(r.lat, 0.50)
	res.P99 = Percentile(r.lat, 0.99)
	res.P999 = Percentile(r.lat, 0.999)
	if len(r.lat) > 0 {
		res.Max = r.lat[len(r.lat)-1]
	}
	return res
}

// ProduceAtRate is ProducePaced, summarised.
func (p Producer) ProduceAtRate(ctx context.Context, cl *kgo.Client, rate float64, d time.Duration) (LatencyResult, error) {
	run, err := p.ProducePaced(ctx, cl, rate, d)
	return run.Summary(), err
}

// ProducePaced produces rate records/s with cl for d and measures each
// record's latency from the Produce call to its promise. Every tick it
// produces the records the schedule owes so far, so a slow tick is made up
// for rather than lost; if the client falls behind, the achieved rate shows
// it. cl should be warmed up (see WarmUp) and is left open.
func (p Producer) ProducePaced(ctx context.Context, cl *kgo.Client, rate float64, d time.Duration) (PacedRun, error) {
	run := PacedRun{Rate: rate}
	var (
		t  Tally
		mu sync.Mutex
		// Sized up front: growing it would copy tens of MB inside a
		// promise, stalling the client's acknowledgements.
		lat  = make([]time.Duration, 0, int(rate*d.Seconds())+1)
		slow = map[time.Duration]bool{}
	)
	ticker := time.NewTicker(pacerTick)
	defer ticker.Stop()
	start := time.Now()
	var sent int64
	for ctx.Err() == nil {
		elapsed := time.Since(start)
		if elapsed >= d {
			break
		}
		due := int64(rate * elapsed.Seconds())
		for ; sent < due && ctx.Err() == nil; sent++ {
			at := time.Now()
			cl.Produce(ctx, &kgo.Record{Value: p.Value}, func(r *kgo.Record, err error) {
				took := time.Since(at)
				t.Promise(r, err)
				if err == nil {
					mu.Lock()
					lat = append(lat, took)
					if took > SlowRecord {
						slow[at.Sub(start).Truncate(SlowWindow)] = true
					}
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
	run.Produced = t.Result(time.Since(start))
	mu.Lock()
	run.lat, run.slow = lat, len(slow)
	mu.Unlock()
	return run, ctx.Err()
}

// Percentile is the nearest-rank percentile p of sorted durations: always a
// latency that was measured, never an interpolation between two.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}
