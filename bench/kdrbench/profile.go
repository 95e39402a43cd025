package main

import (
	"context"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// profiled runs work while a CPU profile of seconds is taken from metrics,
// starting the profile once work has had half a second to reach its steady
// state. work's context is canceled when the profile is complete; work may
// stop then, or run to its own end, which profiled waits for.
func profiled(ctx context.Context, metrics string, seconds int, path string, work func(context.Context)) error {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		work(wctx)
	}()
	select {
	case <-time.After(500 * time.Millisecond):
	case <-done:
	}
	err := benchkit.FetchCPUProfile(ctx, metrics, seconds, path)
	cancel()
	<-done
	return err
}
