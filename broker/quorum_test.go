package broker

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestGiveUpWhenLeaderless: a controlled shutdown stops waiting once the
// cluster has had no metadata leader for the patience without a break, and
// only then.
func TestGiveUpWhenLeaderless(t *testing.T) {
	const patience = 20 * time.Millisecond
	run := func(hasLeader func(call int64) bool) (context.Context, *atomic.Int64) {
		ctx, cancel := context.WithCancelCause(context.Background())
		t.Cleanup(func() { cancel(nil) })
		var calls atomic.Int64
		go giveUpWhenLeaderless(ctx, cancel, func() bool { return hasLeader(calls.Add(1)) }, patience)
		return ctx, &calls
	}
	// ticks waits until hasLeader has been asked n times.
	ticks := func(calls *atomic.Int64, n int64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); calls.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("asked for the leader %d times in 10 s, want %d", calls.Load(), n)
			}
		}
	}

	// No leader at any time: it gives up, saying why.
	ctx, _ := run(func(int64) bool { return false })
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting after 10 s without a leader")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, errLeaderless) {
		t.Fatalf("cause %v, want errLeaderless", cause)
	}

	// A leader throughout, or one back within the patience each time (an
	// election): it keeps waiting. 60 checks are six times the patience.
	for name, hasLeader := range map[string]func(int64) bool{
		"leader":    func(int64) bool { return true },
		"elections": func(call int64) bool { return call%(leaderlessChecks+1) == 0 },
	} {
		ctx, calls := run(hasLeader)
		ticks(calls, 60)
		if err := ctx.Err(); err != nil {
			t.Fatalf("%s: gave up (%v) after %d checks", name, context.Cause(ctx), calls.Load())
		}
	}
}
