package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// pollEvery is how often the target's end offsets are read while a copy
// runs: the resolution of every copy time.
const pollEvery = 50 * time.Millisecond

// preload produces n records to topic on the source with acks=all and
// returns how many the source holds afterwards, the sum of its end offsets:
// the backlog, whatever the producer reported.
func preload(ctx context.Context, p benchkit.Producer, adm *kadm.Client, seeds []string, topic string, n int64) (int64, benchkit.ProduceResult, error) {
	cl, err := kgo.NewClient(p.Opts(seeds, topic, kgo.AllISRAcks())...)
	if err != nil {
		return 0, benchkit.ProduceResult{}, err
	}
	defer cl.Close()
	var t benchkit.Tally
	start := time.Now()
	for i := int64(0); i < n && ctx.Err() == nil; i++ {
		cl.Produce(ctx, &kgo.Record{Value: p.Value}, t.Promise)
	}
	cl.Flush(ctx)
	res := t.Result(time.Since(start))
	held, err := endOffsetSum(ctx, adm, topic)
	return held, res, err
}

// endOffsetSum is the sum of topic's end offsets: the records it holds.
// A topic that does not exist yet holds none.
func endOffsetSum(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var sum int64
	var firstErr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			firstErr = o.Err
			return
		}
		sum += o.Offset
	})
	if firstErr != nil && sum == 0 {
		return 0, nil // not created (or not led) yet
	}
	return sum, firstErr
}

// copyRun is one copier moving the backlog to the target: the times, the
// CPU each process spent, and what the target held at the end.
type copyRun struct {
	want, got  int64         // records
	bytes      int64         // value bytes of want
	wall       time.Duration // copier start to got == want (or the timeout)
	firstAt    time.Duration // copier start to the first record on the target
	finished   bool
	copierCPU  time.Duration
	sourceCPU  time.Duration
	targetCPU  time.Duration
	copierName string
	// memmoveGBps is the machine's memory copy speed just before the copy
	// (benchkit.MemmoveGBps).
	memmoveGBps float64
}

// MBps is the backlog's value bytes over the wall time, in MB/s; for an
// unfinished copy, the bytes it moved.
func (c copyRun) MBps() float64 {
	if c.wall <= 0 {
		return 0
	}
	return float64(c.movedBytes()) / c.wall.Seconds() / 1e6
}

// steadyMBps leaves out the start-up: bytes over the time from the first
// record on the target to the last.
func (c copyRun) steadyMBps() float64 {
	d := c.wall - c.firstAt
	if d <= 0 {
		return 0
	}
	return float64(c.movedBytes()) / d.Seconds() / 1e6
}

func (c copyRun) movedBytes() int64 {
	if c.want == 0 {
		return 0
	}
	return c.bytes * c.got / c.want
}

// cpuPerGB is CPU seconds per GB (10^9 bytes) moved.
func (c copyRun) cpuPerGB(d time.Duration) float64 {
	if c.movedBytes() == 0 {
		return 0
	}
	return d.Seconds() / (float64(c.movedBytes()) / 1e9)
}

// mbpsPerCore is MB moved per CPU second of d: the rate one fully busy
// core would sustain.
func (c copyRun) mbpsPerCore(d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(c.movedBytes()) / 1e6 / d.Seconds()
}

// awaitCopied polls topic's end offsets on the target until they sum to
// want, ctx ends or timeout passes, calling tick after every poll (for
// memory samples). It fills the times and counts of run, measured from
// start.
func awaitCopied(ctx context.Context, adm *kadm.Client, topic string, start time.Time, timeout time.Duration, run *copyRun, tick func(got int64)) error {
	deadline := start.Add(timeout)
	for {
		got, err := endOffsetSum(ctx, adm, topic)
		now := time.Now()
		if err != nil && ctx.Err() == nil {
			logf("end offsets of %s: %v (retrying)", topic, err)
		}
		if got > 0 && run.firstAt == 0 {
			run.firstAt = now.Sub(start)
		}
		run.got, run.wall = got, now.Sub(start)
		if tick != nil {
			tick(got)
		}
		if got >= run.want {
			run.finished = true
			return nil
		}
		if now.After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// pipe is the naive copier: a consumer reading the source topic from the
// start (no group) and an idempotent acks=all producer writing each polled
// batch to the same partition of dstTopic, flushed before the next poll.
// It runs until ctx ends.
func pipe(ctx context.Context, srcSeeds, dstSeeds []string, srcTopic, dstTopic string) error {
	cons, err := kgo.NewClient(kgo.SeedBrokers(srcSeeds...), kgo.ConsumeTopics(srcTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cons.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(dstSeeds...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	defer prod.Close()
	var (
		mu     sync.Mutex // promises run on the client's goroutine
		failed error
	)
	for ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		if errs := fs.Errors(); len(errs) > 0 && ctx.Err() == nil {
			return fmt.Errorf("pipe fetch: %v", errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			prod.Produce(ctx, &kgo.Record{Topic: dstTopic, Partition: r.Partition, Key: r.Key, Value: r.Value,
				Headers: r.Headers, Timestamp: r.Timestamp}, func(_ *kgo.Record, err error) {
				if err != nil && !errors.Is(err, context.Canceled) {
					mu.Lock()
					failed = cmp.Or(failed, err)
					mu.Unlock()
				}
			})
		})
		if err := prod.Flush(ctx); err != nil {
			break
		}
		mu.Lock()
		err := failed
		mu.Unlock()
		if err != nil {
			return fmt.Errorf("pipe produce: %w", err)
		}
	}
	return nil
}

// logf logs progress on stderr, stamped with the time of day.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}
