package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// Goals from the mirror issue, and MM2's figure it quotes.
const (
	goalPerCoreRatio = 2.0   // mirror MB/s per core over the pipe's
	goalPerCore      = 100.0 // MB/s per core
	mm2PerCore       = 17.0  // MB/s per core
	goalP99          = 50 * time.Millisecond
	goalRSS          = 256 << 20 // with 10 M records of lag
)

func writeReport(w io.Writer, o options, args []string, r results) {
	benchkit.WriteRunHeader(w, "Mirror run", "mirrorbench", args)
	fmt.Fprintf(w, "Backlog: %d records × %d B incompressible values (%.2f GB) in %d partitions on the source, "+
		"preloaded with acks=all at %.1f MB/s; two single-broker kdr clusters as processes (log.drop.behind.bytes=%d); mirror naming %s",
		r.backlog, o.RecordSize, float64(r.mirror.bytes)/1e9, o.Partitions, r.preload.MBps(), o.dropBehind, o.naming)
	if o.targetLatency > 0 {
		fmt.Fprintf(w, "; the target behind a proxy in the bench process adding %v each way (a round trip of %v, as between regions)", o.targetLatency, 2*o.targetLatency)
	}
	fmt.Fprint(w, "\n\n")

	m, p := r.mirror, r.pipe
	fmt.Fprintln(w, "| backlog copy | kdr mirror (process) | franz-go pipe (in bench) | mirror / pipe |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	row := func(name, unit string, a, b float64) {
		fmt.Fprintf(w, "| %s | %.1f %s | %.1f %s | %s |\n", name, a, unit, b, unit, ratio(a, b))
	}
	row("throughput, start to last record", "MB/s", m.MBps(), p.MBps())
	row("throughput, first to last record", "MB/s", m.steadyMBps(), p.steadyMBps())
	fmt.Fprintf(w, "| time to first record on the target | %v | %v | |\n", m.firstAt.Round(time.Millisecond), p.firstAt.Round(time.Millisecond))
	fmt.Fprintf(w, "| copy time | %v | %v | |\n", m.wall.Round(time.Millisecond), p.wall.Round(time.Millisecond))
	row("copier CPU per GB", "CPU-s", m.cpuPerGB(m.copierCPU), p.cpuPerGB(p.copierCPU))
	row("copier MB/s per core", "MB/s", m.mbpsPerCore(m.copierCPU), p.mbpsPerCore(p.copierCPU))
	row("copier cores used", "", m.copierCPU.Seconds()/m.wall.Seconds(), p.copierCPU.Seconds()/p.wall.Seconds())
	row("source broker CPU per GB", "CPU-s", m.cpuPerGB(m.sourceCPU), p.cpuPerGB(p.sourceCPU))
	row("target broker CPU per GB", "CPU-s", m.cpuPerGB(m.targetCPU), p.cpuPerGB(p.targetCPU))
	row("all three processes, MB/s per core", "MB/s", m.mbpsPerCore(m.copierCPU+m.sourceCPU+m.targetCPU),
		p.mbpsPerCore(p.copierCPU+p.sourceCPU+p.targetCPU))
	fmt.Fprintf(w, "| this machine's memory copy speed just before (64 MiB memmove) | %.1f GB/s | %.1f GB/s | %s |\n",
		m.memmoveGBps, p.memmoveGBps, ratio(m.memmoveGBps, p.memmoveGBps))
	fmt.Fprintln(w)

	mCore, pCore := m.mbpsPerCore(m.copierCPU), p.mbpsPerCore(p.copierCPU)
	fmt.Fprintf(w, "Goals: mirror ≥ %.0f× the pipe's MB/s per core — %s (%s); ≥ %.0f MB/s per core — %s (%.1f); "+
		"MM2's ≈ %.0f MB/s per core for scale: mirror %s.  \n",
		goalPerCoreRatio, metIf(pCore > 0 && mCore/pCore >= goalPerCoreRatio), ratio(mCore, pCore),
		goalPerCore, metIf(mCore >= goalPerCore), mCore, mm2PerCore, ratio(mCore, mm2PerCore))

	if s := r.sustain; len(s.steps) > 0 {
		var tried []string
		for _, st := range s.steps {
			tried = append(tried, fmt.Sprintf("%.1f MB/s asked, %.1f acknowledged by the source, %d records behind %v after",
				st.rate*float64(o.RecordSize)/1e6, st.achieved*float64(o.RecordSize)/1e6, st.behind, sustainSlack))
		}
		load := "a paced producer on the source while the mirror copies"
		if o.sustainReader {
			load += " and a consumer reads the target, as in the latency phase"
		}
		fmt.Fprintf(w, "Sustained maximum (%s, all on this machine; "+
			"the highest rate the source took and the target kept up with to within %v; %v a step): %s; tried: %s.  \n",
			load, sustainSlack, o.liveFor, mbpsOrNone(s.rate*float64(o.RecordSize)/1e6), strings.Join(tried, "; "))
	}
	l := r.latency
	basis := "half the backlog drain rate"
	switch {
	case o.latRate > 0:
		basis = "--latency-rate"
	case r.sustain.rate > 0:
		basis = "half the sustained maximum"
	}
	if l.received > 0 {
		fmt.Fprintf(w, "Latency at "+basis+" (%.0f records/s = %.1f MB/s paced on the source for %v after %v of "+
			"warm-up at that rate%s, %d produced, %d seen on the target; from each record's append on the source, its LogAppendTime).  \n",
			r.latRate, r.latRate*float64(o.RecordSize)/1e6, o.Duration, o.warmupAt(r.latRate), warmupParts(o, r.latRate), l.produced.Produced.Records, l.received)
		if l.replicated {
			fmt.Fprintf(w, "**Replication latency** (source append → the target's append of the copy, its LogAppendTime, "+
				"which the one-broker target acknowledges next): p50 %v, p99 %v, max %v — goal p99 < %v %s.  \n",
				ms(l.repP50), ms(l.repP99), ms(l.repMax), goalP99, metIf(l.repP99 < goalP99))
		}
		fmt.Fprintf(w, "End to end (source append → the poll of the bench's consumer on the target that returned it): "+
			"p50 %v, p99 %v, max %v. Source acks=all produce latency for comparison (warm-up included): p50 %v, p99 %v.%s  \n",
			ms(l.p50), ms(l.p99), ms(l.max), ms(l.produced.P50), ms(l.produced.P99), unmatchedNote(l))
		fmt.Fprintf(w, "Worst end-to-end latency per %v of the warm-up: %s. Worst per second of the timed phase, replication: %s; "+
			"end to end: %s; the bench process's own worst stall per second (its producer and consumer run in it): %s. "+
			"The host, per second: some task waiting for a CPU %s, for the disk %s (/proc/pressure), CPUs stolen by the hypervisor %s.  \n",
			warmSlice, msList(l.warmBySlice), msList(l.repWorstBySecond), msList(l.worstBySecond), msList(l.stallBySecond),
			pctList(l.cpuWaitBySecond), pctList(l.ioWaitBySecond), pctList(l.stealBySecond))
		fmt.Fprintf(w, "CPU during the timed phase: %s.  \n", l.load)
	}
	if pl := r.pipeLat; pl.received > 0 {
		fmt.Fprintf(w, "The same rate through the franz-go pipe (in this process, the mirror stopped), timed the same way: "+
			"%d produced, %d seen on the target; replication p50 %v, p99 %v, max %v (mirror / pipe p99: %s); "+
			"end to end p50 %v, p99 %v, max %v (mirror / pipe p99: %s); source produce p99 %v; "+
			"worst per second, replication %s, end to end %s; per second, some task waiting for a CPU %s, for the disk %s, stolen %s; CPU: %s.%s  \n",
			pl.produced.Produced.Records, pl.received, ms(pl.repP50), ms(pl.repP99), ms(pl.repMax), ratio(l.repP99.Seconds(), pl.repP99.Seconds()),
			ms(pl.p50), ms(pl.p99), ms(pl.max), ratio(l.p99.Seconds(), pl.p99.Seconds()), ms(pl.produced.P99),
			msList(pl.repWorstBySecond), msList(pl.worstBySecond),
			pctList(pl.cpuWaitBySecond), pctList(pl.ioWaitBySecond), pctList(pl.stealBySecond), pl.load, unmatchedNote(pl))
	}
	if hl := r.hopLat; hl.received > 0 {
		fmt.Fprintf(w, "The same rate into the source and read back from it (one broker, nothing copied: the floor), timed end to end: "+
			"%d produced, %d read, p50 %v, p99 %v, max %v (mirror end to end / one hop p99: %s); worst per second %s; CPU: %s.  \n",
			hl.produced.Produced.Records, hl.received, ms(hl.p50), ms(hl.p99), ms(hl.max),
			ratio(l.p99.Seconds(), hl.p99.Seconds()), msList(hl.worstBySecond), hl.load)
	}
	fmt.Fprintf(w, "Mirror memory during the copy: VmRSS %s with %d records (%.2f GB) of lag at the first sample, "+
		"peak sample %s (lag %d), VmHWM %s; after the paced phase %s. Goal < 256 MiB with 10 M records of lag — "+
		"%s at %d records of lag (10 M is --records 10000000).\n",
		mib(r.mem.firstRSS), r.mem.firstLag, float64(r.mem.firstLag*int64(o.RecordSize))/1e9, mib(r.mem.peakRSS), r.mem.peakLag,
		mib(r.mem.hwm), mib(r.mem.afterLatency), metIf(r.mem.hwm > 0 && r.mem.hwm < goalRSS), r.backlog)

	if r.profile != "" {
		fmt.Fprintf(w, "\nMirror CPU profile (%d s from 1 s into the copy, go tool pprof -top):\n\n```\n%s```\n",
			r.profSecs, trimTop(r.profile))
	}
	benchkit.WriteNotes(w, r.notes)
}

// unmatchedNote is a warning when records read on the target had no
// batch at their offset on the source: the copy did not keep offsets, and
// their latency is not counted.
func unmatchedNote(l latencyRun) string {
	if l.unmatched == 0 {
		return ""
	}
	return fmt.Sprintf(" **%d records read on the target had no source batch at their offset and are not counted.**", l.unmatched)
}

// warmupParts says what a warm-up at rate is made of, when it is more
// than --latency-warmup.
func warmupParts(o options, rate float64) string {
	fill := o.warmupAt(rate) - o.latWarmup
	if fill <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%v to write the brokers' %s drop-behind distance to each partition, then %v)", fill, mib(o.dropBehind), o.latWarmup)
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func metIf(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

func mbpsOrNone(v float64) string {
	if v <= 0 {
		return "none of the rates tried"
	}
	return fmt.Sprintf("**%.1f MB/s**", v)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// msList is durations as whole milliseconds, "12 / 3 / 140 ms".
func msList(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprint(d.Round(time.Millisecond).Milliseconds())
	}
	return strings.Join(parts, " / ") + " ms"
}

// pctList reads "0 / 12 / 3 %": shares 0..1 as whole percents.
func pctList(fs []float64) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("%.0f", f*100)
	}
	return strings.Join(parts, " / ") + " %"
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// trimTop drops pprof's header lines before "Showing nodes", keeping the
// totals line and the table.
func trimTop(top string) string {
	if i := strings.Index(top, "Showing nodes"); i >= 0 {
		return top[i:]
	}
	return top
}
