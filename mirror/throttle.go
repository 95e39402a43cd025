package mirror

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// throttle keeps a worker's fetches from the source under a byte rate
// (Flow.MaxBytesPerSecond), as a token bucket of one second's bytes that
// may go into debt: a fetch's answer is taken whole (its size is known only
// once it arrives), and the next fetch waits until the debt is paid. Over
// any long stretch the worker then reads at most the rate, plus one
// second's burst. A nil throttle does not limit.
type throttle struct {
	rate   float64 // bytes per second
	waited prometheus.Counter

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// newThrottle is a throttle of bytesPerSecond, or nil for 0 (no limit).
func newThrottle(bytesPerSecond int64, waited prometheus.Counter) *throttle {
	if bytesPerSecond <= 0 {
		return nil
	}
	r := float64(bytesPerSecond)
	return &throttle{rate: r, waited: waited, tokens: r, last: time.Now()}
}

// take counts n bytes read from the source and waits, until ctx ends, for
// as long as the bucket is in debt.
func (t *throttle) take(ctx context.Context, n int) {
	if t == nil || n <= 0 {
		return
	}
	t.mu.Lock()
	now := time.Now()
	t.tokens = min(t.rate, t.tokens+now.Sub(t.last).Seconds()*t.rate) - float64(n)
	t.last = now
	debt := -t.tokens
	t.mu.Unlock()
	if debt <= 0 {
		return
	}
	timer := time.NewTimer(time.Duration(debt / t.rate * float64(time.Second)))
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
	t.waited.Add(time.Since(now).Seconds())
}

// fetchCap is the most a single fetch may ask for under the throttle: a
// second's bytes (at least 16 KiB), so that one answer does not run far
// into debt. A broker still returns a first batch larger than that whole.
func (t *throttle) fetchCap(room int32) int32 {
	if t == nil {
		return room
	}
	second := int32(min(t.rate, float64(room))) // fits: at most room
	return min(room, max(second, 16<<10))
}
