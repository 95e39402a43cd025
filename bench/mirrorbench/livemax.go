package main

import (
	"context"
	"fmt"
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
// record within sustainSlack of the producer stopping. After a step it
// did not keep up with, it waits for the mirror to catch up.
func measureSustained(ctx context.Context, p benchkit.Producer, srcSeeds []string, srcAdm, dstAdm *kadm.Client, topic, remote string, drainRate float64, stepFor time.Duration) (sustainRun, error) {
	var run sustainRun
	prod, err := kgo.NewClient(p.Opts(srcSeeds, topic, kgo.AllISRAcks())...)
	if err != nil {
		return run, err
	}
	defer prod.Close()
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
