package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// sustainSlack is how long after the producer stops the target may still be
// missing records for the rate to count as sustained.
const sustainSlack = 2 * time.Second

// sustainStep is one paced rate tried.
type sustainStep struct {
	rate     float64 // records/s asked
	achieved float64 // records/s the source acknowledged
	behind   int64   // records not on the target sustainSlack after producing stopped
}

// sustainRun is the sustained maximum: the highest paced rate the whole
// path (producer, source, mirror, target, all on this machine) keeps up
// with. The backlog drain overstates it, as nothing else shares the CPUs
// then.
type sustainRun struct {
	steps []sustainStep
	rate  float64 // records/s of the highest step kept up with; 0 if none
}

// measureSustained paces a producer on topic at falling fractions of
// drainRate, stepFor each, and stops at the first rate the mirror keeps up
// with: the source acknowledged ≥ 95 % of it and the target held every
// record within sustainSlack of the producer stopping. With withReader, a
// consumer in this process reads remote on the target all along, as the
// latency phase's consumer does, and the target's records count only once
// it has read them: the maximum is then that of the load the latency phase
// puts on this machine, so that half of it is half of what the machine
// carries. After a step it did not keep up with, it waits for the mirror
// to catch up.
func measureSustained(ctx context.Context, p benchkit.Producer, srcSeeds, dstSeeds []string, srcAdm, dstAdm *kadm.Client, topic, remote string, drainRate float64, stepFor time.Duration, withReader bool) (sustainRun, error) {
	var run sustainRun
	prod, err := kgo.NewClient(p.Opts(srcSeeds, topic, kgo.AllISRAcks())...)
	if err != nil {
		return run, err
	}
	defer prod.Close()
	var read atomic.Int64 // records the reader has polled; all of the target's with no reader
	if withReader {
		stop, err := readAll(ctx, dstSeeds, remote, &read)
		if err != nil {
			return run, err
		}
		defer stop()
	}
	if err := p.WarmUp(ctx, prod); err != nil {
		return run, fmt.Errorf("warm-up record: %w", err)
	}
	caughtUp := func(within time.Duration) (int64, error) {
		want, err := endOffsetSum(ctx, srcAdm, topic)
		if err != nil {
			return 0, err
		}
		deadline := time.Now().Add(within)
		for {
			got, err := endOffsetSum(ctx, dstAdm, remote)
			if withReader {
				// The remote topic is new and only the mirror writes it,
				// so its offsets count its records.
				got = min(got, read.Load())
			}
			if err == nil && got >= want {
				return 0, nil
			}
			if time.Now().After(deadline) {
				return want - got, nil
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(pollEvery):
			}
		}
	}
	if behind, err := caughtUp(60 * time.Second); err != nil || behind > 0 {
		return run, fmt.Errorf("the warm-up record did not reach %s within 60 s (%d behind, %v)", remote, behind, err)
	}
	// Fractions of drainRate, from the top.
	for _, f := range []float64{1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 0.1} {
		rate := drainRate * f
		// Not summarised: the sort would take CPU from the catch-up
		// being timed next.
		res, err := p.ProducePaced(ctx, prod, rate, stepFor)
		if err != nil {
			return run, err
		}
		step := sustainStep{rate: rate, achieved: float64(res.Produced.Records) / stepFor.Seconds()}
		if step.behind, err = caughtUp(sustainSlack); err != nil {
			return run, err
		}
		run.steps = append(run.steps, step)
		if step.behind == 0 && step.achieved >= 0.95*rate {
			run.rate = step.achieved
			return run, nil
		}
		if _, err := caughtUp(2 * time.Minute); err != nil {
			return run, err
		}
	}
	return run, nil
}

// readAll starts a consumer reading topic on the target from its start,
// adding each poll's records to n, until the returned stop is called.
func readAll(ctx context.Context, seeds []string, topic string, n *atomic.Int64) (stop func(), err error) {
	cons, err := targetReader(seeds, topic)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for cctx.Err() == nil {
			n.Add(int64(cons.PollFetches(cctx).NumRecords()))
		}
	}()
	return func() {
		cancel()
		<-done
		cons.Close()
	}, nil
}
