package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// latencyRun is the paced phase: what was produced on the source, and each
// record's time from its produce timestamp to its arrival on the target.
type latencyRun struct {
	produced benchkit.LatencyResult // also the source's own acks=all latency
	received int64
	p50, p99 time.Duration
	max      time.Duration
	// Per second of the phase (by source append time): the worst
	// replication latency, and the bench process's own worst stall (a 1 ms
	// sleep's overshoot). The producer and the consumer run in this
	// process, so a stall here shows up as latency there: the producer
	// sends a burst after it, and the consumer reads late.
	worstBySecond, stallBySecond []time.Duration
	// Per second of the phase, 0..1: the share during which some task of
	// the host waited for a CPU, and for the disk (Linux's pressure stall
	// information), and the hypervisor's steal. A slow second with tasks
	// queued for the CPUs or the disk, or the CPUs taken away, is the
	// machine's rather than the copy's.
	cpuWaitBySecond, ioWaitBySecond, stealBySecond []float64
	// warmBySlice is the worst latency of the records produced in each
	// warmSlice of the warm-up, which the percentiles leave out: a stream
	// starting from idle runs slow for its first seconds (on this VM's
	// disk, once the brokers' early writeback starts), and this shows
	// whether that reached the timed phase.
	warmBySlice []time.Duration
	// load is the host's and each process's CPU over the timed phase.
	load benchkit.Load
}

// warmSlice is the unit of latencyRun.warmBySlice.
const warmSlice = 500 * time.Millisecond

// measureLatency produces rate records/s to srcTopic on the source for d
// while the mirror runs, and reads dstTopic on the target from the start,
// timing every record from its timestamp (the source's append time, as
// srcTopic uses LogAppendTime; Kafka keeps milliseconds, so each figure may
// read up to 1 ms high) to the poll that returned it. One record is first sent and
// awaited, so that the remote topic exists and the mirror is assigned its
// partitions before the clock starts; then the producer runs at rate for
// warmup before the records it sends are timed, so that the percentiles are
// those of the steady stream rather than of its first seconds (every
// process's buffers and heap growing from idle; the warm-up's worst is
// reported on its own). The run also holds the host's CPU load and each of
// procs' over the timed phase.
func measureLatency(ctx context.Context, p benchkit.Producer, srcSeeds, dstSeeds []string, srcTopic, dstTopic string, rate float64, warmup, d time.Duration, procs ...benchkit.Named) (latencyRun, error) {
	var run latencyRun
	cons, err := targetReader(dstSeeds, dstTopic)
	if err != nil {
		return run, err
	}
	defer cons.Close()
	prod, err := kgo.NewClient(p.Opts(srcSeeds, srcTopic, kgo.AllISRAcks())...)
	if err != nil {
		return run, err
	}
	defer prod.Close()

	var (
		mu    sync.Mutex
		from  time.Time // records stamped before this are the warm-up record
		timed time.Time // records stamped before this (and from from) are the warm-up at the rate
		// lat holds every timed record's latency, sized up front: growing it
		// while consuming copied tens of MB under mu, on fresh pages, and
		// each copy stalled the consumer for up to 100 ms, which it then
		// reported as the path's latency (at 1.25× the size each time, so
		// at 13, 16, 20 and 25 s into the phase). The timed records can
		// outnumber rate×d by the few the producer sends between from and
		// its own start, so the capacity is everything it sends.
		lat      = make([]time.Duration, 0, int(rate*(warmup+d).Seconds())+1)
		received int64
		warm     = make(chan struct{})
		warmOnce sync.Once
		worst    = make([]time.Duration, int(d/time.Second)+1)
	)
	run.warmBySlice = make([]time.Duration, int((warmup+warmSlice-1)/warmSlice))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			now := time.Now()
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				if from.IsZero() || r.Timestamp.Before(from) {
					warmOnce.Do(func() { close(warm) })
					return
				}
				received++
				l := now.Sub(r.Timestamp)
				if r.Timestamp.Before(timed) {
					i := min(int(r.Timestamp.Sub(from)/warmSlice), len(run.warmBySlice)-1)
					run.warmBySlice[i] = max(run.warmBySlice[i], l)
					return
				}
				lat = append(lat, l)
				if sec := int(r.Timestamp.Sub(timed) / time.Second); sec >= 0 && sec < len(worst) {
					worst[sec] = max(worst[sec], l)
				}
			})
			mu.Unlock()
		}
	}()

	if err := p.WarmUp(ctx, prod); err != nil {
		return run, fmt.Errorf("warm-up record: %w", err)
	}
	select {
	case <-warm:
	case <-time.After(60 * time.Second):
		return run, fmt.Errorf("warm-up record did not reach %s on the target within 60 s", dstTopic)
	case <-ctx.Done():
		return run, ctx.Err()
	}
	mu.Lock()
	from = time.Now().Truncate(time.Millisecond)
	timed = from.Add(warmup)
	mu.Unlock()

	sctx, stopStalls := context.WithCancel(ctx)
	stalls := make(chan []second, 1)
	go func() { stalls <- ownStalls(sctx) }()
	// The CPU figures cover the timed phase only, like the percentiles.
	loadWindow := make(chan func() benchkit.Load, 1)
	lt := time.AfterFunc(warmup, func() { loadWindow <- benchkit.MeasureLoad(procs...) })
	// The producer's latencies are summarised after the consumer has
	// everything: sorting them takes a core for most of a second, which
	// would otherwise be charged to the last records' latency.
	paced, err := p.ProducePaced(ctx, prod, rate, warmup+d)
	if !lt.Stop() {
		run.load = (<-loadWindow)()
	}
	stopStalls()
	seconds := <-stalls
	if n := int(warmup / time.Second); n <= len(seconds) {
		seconds = seconds[n:]
	}
	for _, s := range seconds {
		run.stallBySecond = append(run.stallBySecond, s.stall)
		run.cpuWaitBySecond = append(run.cpuWaitBySecond, s.cpuWait)
		run.ioWaitBySecond = append(run.ioWaitBySecond, s.ioWait)
		run.stealBySecond = append(run.stealBySecond, s.steal)
	}
	if err != nil {
		return run, err
	}
	// Wait for the tail, but not for records the source refused.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		mu.Lock()
		n := received
		mu.Unlock()
		if n >= paced.Produced.Records {
			break
		}
		time.Sleep(pollEvery)
	}
	cancel()
	<-consumed
	run.produced = paced.Summary()

	slices.Sort(lat)
	run.received, run.worstBySecond = received, worst
	run.p50, run.p99 = benchkit.Percentile(lat, 0.50), benchkit.Percentile(lat, 0.99)
	if len(lat) > 0 {
		run.max = lat[len(lat)-1]
	}
	return run, nil
}

// second is one second of a latency phase, as ownStalls sees it.
type second struct {
	stall                  time.Duration
	cpuWait, ioWait, steal float64 // the host's shares, 0..1
}

// ownStalls samples until ctx ends, each second: this process's worst
// scheduling stall (the overshoot of a 1 ms sleep), and the host's CPU and
// disk pressure and steal (0 where /proc cannot tell).
func ownStalls(ctx context.Context) []second {
	var out []second
	var worst time.Duration
	start := time.Now()
	h0, _ := benchkit.ReadHostTimes()
	cpu0, _ := benchkit.Pressure("cpu")
	io0, _ := benchkit.Pressure("io")
	for ctx.Err() == nil {
		t0 := time.Now()
		time.Sleep(time.Millisecond)
		worst = max(worst, time.Since(t0)-time.Millisecond)
		if el := time.Since(start); el >= time.Second {
			s := second{stall: worst}
			if h, err := benchkit.ReadHostTimes(); err == nil {
				s.steal = h.StealShare(h0)
				h0 = h
			}
			if c, err := benchkit.Pressure("cpu"); err == nil {
				s.cpuWait, cpu0 = min(float64(c-cpu0)/float64(el), 1), c
			}
			if i, err := benchkit.Pressure("io"); err == nil {
				s.ioWait, io0 = min(float64(i-io0)/float64(el), 1), i
			}
			out = append(out, s)
			worst, start = 0, time.Now()
		}
	}
	return out
}

// targetReader is a consumer of topic from its start, with no group: the
// latency phase's, and the sustained maximum's when it reads the target,
// so that both put the same load on the machine.
func targetReader(seeds []string, topic string) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(250*time.Millisecond))
}
