package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// broker is one target under measurement.
type broker struct {
	name    string
	addr    string
	metrics string // host:port serving /debug/pprof; "" if none
	pid     int    // 0 if unknown (an external broker without --kdr-pid)
	proc    *child // nil for an external broker
	profile bool   // take CPU profiles of it
}

// targetResult is everything measured against one broker.
type targetResult struct {
	name        string
	produce     benchkit.ProduceResult
	consume     consumeResult
	consumeWant int64
	latency     benchkit.LatencyResult
	mem         *benchkit.Memory
	profiles    []profileResult
	notes       []string // misbehaviour and skipped steps, for the report
}

// profileResult is one CPU profile taken during a workload.
type profileResult struct {
	phase  string // "produce" or "consume"
	path   string
	during string // the workload's throughput while profiled
	top    string // go tool pprof -top output
}

func (r *targetResult) notef(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.notes = append(r.notes, msg)
	logf("%s: WARNING: %s", r.name, msg)
}

// logf prints progress on stderr, so stdout carries only the report.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// measure runs every phase against b, in order: produce, consume, paced
// latency, memory, then (if b.profile) the two profiled runs. A phase that
// fails ends the target: its error is returned with what was measured.
func measure(ctx context.Context, b broker, w workload, o options) (targetResult, error) {
	r := targetResult{name: b.name}
	alive := func(phase string) error {
		if b.proc != nil && b.proc.Exited() {
			return fmt.Errorf("%s exited during %s; its log:\n%s", b.name, phase, benchkit.Tail(b.proc.logPath, 30))
		}
		return nil
	}

	logf("%s: creating topic %q with %d partitions on %s", b.name, topic, w.partitions, b.addr)
	if err := createTopic(ctx, b.addr, w.partitions); err != nil {
		return r, err
	}

	// (a) produce throughput.
	logf("%s: producing for %v", b.name, o.Duration)
	p, err := produceFor(ctx, b.addr, w, o.Duration)
	if err != nil {
		return r, err
	}
	r.produce = p
	acked := p.Records + p.Warmup
	logf("%s: produced %d records in %v: %.1f MB/s, %.0f records/s", b.name, p.Records, p.Elapsed.Round(time.Millisecond), p.MBps(), p.RecordsPerSec())
	if p.Failed > 0 {
		r.notef("produce: %d records failed, first error: %v", p.Failed, p.FirstErr)
	}
	if err := alive("produce"); err != nil {
		return r, err
	}
	if hw, err := endOffsets(ctx, b.addr); err != nil {
		r.notef("listing end offsets after produce: %v", err)
	} else if hw != acked {
		r.notef("after produce, end offsets sum to %d but %d records were acknowledged", hw, acked)
	}

	// (b) consume throughput.
	logf("%s: consuming %d records from offset 0", b.name, acked)
	c, err := consumeAll(ctx, b.addr, w, acked)
	if err != nil {
		return r, err
	}
	if c.canceled {
		return r, ctx.Err()
	}
	r.consume, r.consumeWant = c, acked
	logf("%s: consumed %d of %d records in %v: %.1f MB/s", b.name, c.records, acked, c.elapsed.Round(time.Millisecond), c.mbps())
	if msg := c.check(acked); msg != "" {
		r.notef("consume: %s", msg)
	}
	if err := alive("consume"); err != nil {
		return r, err
	}

	// (c) latency at half the measured rate. The produce phase left
	// gigabytes of dirty pages; without a sync first, the kernel's dirty
	// page throttling (not the broker) would set the latency of a
	// disk-backed broker. Both targets get the same treatment.
	logf("%s: syncing dirty pages before the paced run", b.name)
	syscall.Sync()
	rate := p.RecordsPerSec() / 2
	logf("%s: producing %.0f records/s (half of the measured rate) for %v", b.name, rate, o.Duration)
	l, err := produceAtRate(ctx, b.addr, w, rate, o.Duration)
	if err != nil {
		return r, err
	}
	r.latency = l
	acked += l.Produced.Records + l.Produced.Warmup
	logf("%s: achieved %.0f records/s; latency p50 %v p99 %v p99.9 %v max %v", b.name,
		l.Produced.RecordsPerSec(), l.P50, l.P99, l.P999, l.Max)
	if l.Produced.Failed > 0 {
		r.notef("paced produce: %d records failed, first error: %v", l.Produced.Failed, l.Produced.FirstErr)
	}
	if got := l.Produced.RecordsPerSec(); got < 0.95*rate {
		r.notef("paced produce reached %.0f records/s of the %.0f asked", got, rate)
	}
	if err := alive("paced produce"); err != nil {
		return r, err
	}

	// (d) resident memory.
	if b.pid > 0 {
		m, err := benchkit.ReadMemory(b.pid)
		if err != nil {
			r.notef("reading memory: %v", err)
		} else {
			r.mem = &m
		}
	}

	// (e) where the time goes.
	if b.profile {
		r.profiles, acked = profileBroker(ctx, b, w, o, &r, acked)
		if err := alive("profiling"); err != nil {
			return r, err
		}
	}
	if hw, err := endOffsets(ctx, b.addr); err == nil && hw != acked {
		r.notef("at the end, end offsets sum to %d but %d records were acknowledged", hw, acked)
	}
	return r, ctx.Err()
}

// profileBroker takes a CPU profile of b during a produce run and during
// repeated reads of the whole topic, and returns them with the updated count
// of acknowledged records. Problems are notes, not errors: the figures
// measured so far stand without profiles.
func profileBroker(ctx context.Context, b broker, w workload, o options, r *targetResult, acked int64) ([]profileResult, int64) {
	if o.ProfileSecs <= 0 {
		return nil, acked
	}
	if b.metrics == "" || !benchkit.PprofAvailable(ctx, b.metrics) {
		r.notef("no /debug/pprof on the metrics address %q: profiling skipped", b.metrics)
		return nil, acked
	}
	var out []profileResult
	secs := o.ProfileSecs

	path := filepath.Join(o.OutDir, b.name+"-produce.pprof")
	logf("%s: producing for %ds with a %ds CPU profile", b.name, secs+1, secs)
	var p benchkit.ProduceResult
	var perr error
	err := profiled(ctx, b.metrics, secs, path, func(context.Context) {
		// A fixed length, not canceled, so every record is acknowledged
		// or failed before the count is used.
		p, perr = produceFor(ctx, b.addr, w, time.Duration(secs)*time.Second+time.Second)
	})
	acked += p.Records + p.Warmup
	switch {
	case perr != nil:
		r.notef("profiled produce: %v", perr)
	case err != nil:
		r.notef("produce profile: %v", err)
	default:
		if p.Failed > 0 {
			r.notef("profiled produce: %d records failed, first error: %v", p.Failed, p.FirstErr)
		}
		out = append(out, profileResult{phase: "produce", path: path,
			during: fmt.Sprintf("%.1f MB/s produce", p.MBps())})
	}

	path = filepath.Join(o.OutDir, b.name+"-consume.pprof")
	logf("%s: reading all %d records repeatedly with a %ds CPU profile", b.name, acked, secs)
	var reads []consumeResult
	err = profiled(ctx, b.metrics, secs, path, func(wctx context.Context) {
		for wctx.Err() == nil {
			c, err := consumeAll(wctx, b.addr, w, acked)
			if err != nil || c.canceled {
				return
			}
			reads = append(reads, c)
			if msg := c.check(acked); msg != "" {
				r.notef("profiled consume: %s", msg)
				return
			}
		}
	})
	if err != nil {
		r.notef("consume profile: %v", err)
	} else {
		var bytes int64
		var took time.Duration
		for _, c := range reads {
			bytes += c.bytes
			took += c.elapsed
		}
		during := fmt.Sprintf("%d full reads", len(reads))
		if took > 0 {
			during += fmt.Sprintf(", %.1f MB/s consume", float64(bytes)/took.Seconds()/1e6)
		}
		out = append(out, profileResult{phase: "consume", path: path, during: during})
	}

	for i := range out {
		top, err := benchkit.PprofTop(ctx, out[i].path, 25)
		if err != nil {
			r.notef("%v", err)
			continue
		}
		out[i].top = strings.TrimSpace(top)
		fmt.Fprintf(os.Stderr, "\n%s CPU profile during %s (%s), saved to %s:\n%s\n\n", b.name, out[i].phase, out[i].during, out[i].path, out[i].top)
	}
	return out, acked
}
