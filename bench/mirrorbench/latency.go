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
// record's time from its append on the source to its arrival on the target.
type latencyRun struct {
	produced benchkit.LatencyResult // also the source's own acks=all latency
	received int64
	// End to end: source append → the poll of the bench's consumer on the
	// target that returned the record.
	p50, p99 time.Duration
	max      time.Duration
	// Replication: source append → the target's append of the copy (its
	// LogAppendTime), which a one-broker target acknowledges next. This is
	// the mirror issue's replication latency (source append → target ack),
	// without the bench consumer's fetch of it. Set only where the target
	// topic stamps append times (replicated is false for one hop).
	replicated             bool
	repP50, repP99, repMax time.Duration
	// unmatched counts records read on the target whose offset had no
	// batch on the source: 0 unless the copy changed offsets.
	unmatched int64
	// Per second of the phase (by source append time): the worst
	// latency (end to end, and replication), and the bench process's own
	// worst stall (a 1 ms sleep's overshoot). The producer and the
	// consumer run in this process, so a stall here shows up as latency
	// there: the producer sends a burst after it, and the consumer reads
	// late.
	worstBySecond, repWorstBySecond, stallBySecond []time.Duration
	// Per second of the phase, 0..1: the share during which some task of
	// the host waited for a CPU, and for the disk (Linux's pressure stall
	// information), and the hypervisor's steal. A slow second with tasks
	// queued for the CPUs or the disk, or the CPUs taken away, is the
	// machine's rather than the copy's.
	cpuWaitBySecond, ioWaitBySecond, stealBySecond []float64
	// warmBySlice is the worst end-to-end latency of the records produced
	// in each warmSlice of the warm-up, which the percentiles leave out: a
	// stream starting from idle runs slow for its first seconds (on this
	// VM's disk, once the brokers' early writeback starts), and this shows
	// whether that reached the timed phase.
	warmBySlice []time.Duration
	// load is the host's and each process's CPU over the timed phase.
	load benchkit.Load
}

// arrival is one record the bench's consumer read on the target: where it
// is, when the poll returned it (µs after the phase's zero) and its
// timestamp there (ms after the zero): the target's append time where the
// target topic uses LogAppendTime, else the source's. 16 bytes, as a phase
// reads millions.
type arrival struct {
	offset uint32 // the bench's topics are fresh: offsets stay far below 2^32
	atUs   uint32
	tsMs   int32
	part   int32
}

// warmSlice is the unit of latencyRun.warmBySlice.
const warmSlice = 500 * time.Millisecond

// measureLatency produces rate records/s to srcTopic on the source for d
// while the mirror runs, and reads dstTopic on the target from the start.
// srcTopic uses LogAppendTime, so each record's time is counted from its
// append on the source (Kafka keeps milliseconds, so each figure may read
// up to 1 ms off). Where dstTopic uses LogAppendTime too (targetStamps),
// the target's append time gives the replication latency; the source's
// append times are then read back from the source's batch headers once
// the phase is over and joined by offset, as the copy keeps offsets (a
// fresh remote topic copied from the start). Otherwise (one hop: the
// source read back) the record's timestamp is the source's.
//
// One record is first sent and awaited, so that the remote topic exists and
// the mirror is assigned its partitions before the clock starts; then the
// producer runs at rate for warmup before the records it sends are timed,
// so that the percentiles are those of the steady stream rather than of its
// first seconds (every process's buffers and heap growing from idle; the
// warm-up's worst is reported on its own). The run also holds the host's
// CPU load and each of procs' over the timed phase.
func measureLatency(ctx context.Context, p benchkit.Producer, srcSeeds, dstSeeds []string, srcTopic, dstTopic string, targetStamps bool, rate float64, warmup, d time.Duration, procs ...benchkit.Named) (latencyRun, error) {
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
		mu   sync.Mutex
		zero = time.Now()
		from time.Time // records stamped before this are the warm-up record
		// arrs holds every record read after the warm-up record, sized up
		// front: growing it while consuming copied tens of MB under mu, on
		// fresh pages, and each copy stalled the consumer for up to 100 ms,
		// which it then reported as the path's latency. The records can
		// outnumber rate×(warmup+d) by the few the producer sends between
		// from and its own start.
		arrs     = make([]arrival, 0, int(rate*(warmup+d).Seconds()*1.01)+64)
		warm     = make(chan struct{})
		warmOnce sync.Once
	)
	zeroMs := zero.UnixMilli()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			atUs := uint32(time.Since(zero) / time.Microsecond)
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				// Either timestamp of a record sent after from is at or
				// after it; the warm-up record reached the target before
				// from was set.
				if from.IsZero() || r.Timestamp.Before(from) {
					warmOnce.Do(func() { close(warm) })
					return
				}
				arrs = append(arrs, arrival{offset: uint32(r.Offset), atUs: atUs,
					tsMs: int32(r.Timestamp.UnixMilli() - zeroMs), part: r.Partition})
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
	mu.Unlock()
	timed := from.Add(warmup) // records stamped before this are the warm-up at the rate

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
		n := int64(len(arrs))
		mu.Unlock()
		if n >= paced.Produced.Records {
			break
		}
		time.Sleep(pollEvery)
	}
	cancel()
	<-consumed
	run.produced = paced.Summary()
	run.received = int64(len(arrs))

	srcMs := func(a arrival) (int64, bool) { return zeroMs + int64(a.tsMs), true }
	if targetStamps {
		ends := map[int32]int64{}
		for _, a := range arrs {
			ends[a.part] = max(ends[a.part], int64(a.offset)+1)
		}
		times, err := readAppendTimes(ctx, srcSeeds, srcTopic, ends)
		if err != nil {
			// Without the source's times no figure can be computed: report
			// none rather than zeros.
			return latencyRun{produced: run.produced}, err
		}
		srcMs = func(a arrival) (int64, bool) { return times.of(a.part, int64(a.offset)) }
		run.replicated = true
	}
	run.summarise(arrs, srcMs, zero, from, timed, warmup, d)
	return run, nil
}

// summarise turns a phase's arrivals into its figures: each record's
// source append time (ms) comes from srcMs; records appended before from
// are the warm-up record's, before timed the warm-up at the rate's.
func (run *latencyRun) summarise(arrs []arrival, srcMs func(arrival) (int64, bool), zero, from, timed time.Time, warmup, d time.Duration) {
	zeroNs, zeroMs := zero.UnixNano(), zero.UnixMilli()
	fromMs, timedMs := from.UnixMilli(), timed.UnixMilli()
	run.warmBySlice = make([]time.Duration, int((warmup+warmSlice-1)/warmSlice))
	run.worstBySecond = make([]time.Duration, int(d/time.Second)+1)
	if run.replicated {
		run.repWorstBySecond = make([]time.Duration, len(run.worstBySecond))
	}
	lat := make([]time.Duration, 0, len(arrs))
	var rep []time.Duration
	if run.replicated {
		rep = make([]time.Duration, 0, len(arrs))
	}
	for _, a := range arrs {
		s, ok := srcMs(a)
		if !ok {
			run.unmatched++
			continue
		}
		if s < fromMs {
			continue
		}
		e2e := time.Duration(zeroNs + int64(a.atUs)*int64(time.Microsecond) - s*int64(time.Millisecond))
		if s < timedMs {
			i := min(int((s-fromMs)*int64(time.Millisecond)/int64(warmSlice)), len(run.warmBySlice)-1)
			run.warmBySlice[i] = max(run.warmBySlice[i], e2e)
			continue
		}
		lat = append(lat, e2e)
		sec := int((s - timedMs) / 1000)
		if sec < len(run.worstBySecond) {
			run.worstBySecond[sec] = max(run.worstBySecond[sec], e2e)
		}
		if run.replicated {
			r := time.Duration(zeroMs+int64(a.tsMs)-s) * time.Millisecond
			rep = append(rep, r)
			if sec < len(run.repWorstBySecond) {
				run.repWorstBySecond[sec] = max(run.repWorstBySecond[sec], r)
			}
		}
	}
	run.p50, run.p99, run.max = percentiles(lat)
	run.repP50, run.repP99, run.repMax = percentiles(rep)
}

// percentiles sorts ds and returns its p50, p99 and maximum.
func percentiles(ds []time.Duration) (p50, p99, most time.Duration) {
	slices.Sort(ds)
	if len(ds) > 0 {
		most = ds[len(ds)-1]
	}
	return benchkit.Percentile(ds, 0.50), benchkit.Percentile(ds, 0.99), most
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
