package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// Goals from the replication issue, reported next to the figures.
const (
	goalRatio    = 0.30            // RF=3 acks=all throughput over RF=1 acks=1
	goalFailover = 3 * time.Second // client-observed failover
)

// writeReport renders a run as markdown: the command, the machine and
// settings, one table per phase, goals met or missed, notes and profiles.
func writeReport(w io.Writer, o options, args []string, r *results) {
	benchkit.WriteRunHeader(w, "Cluster run", "clusterbench", args)
	fmt.Fprintf(w, "kdr binary: %s  \n", r.binary)
	fmt.Fprintf(w, "Cluster: %d `kdr broker` processes on loopback, all quorum voters; broker.session.timeout.ms %d, "+
		"broker.heartbeat.interval.ms %d, replica.lag.time.max.ms %d, no automatic preferred-leader elections  \n",
		clusterSize, o.sessionTimeoutMS, o.heartbeatIntervalMS, o.replicaLagMaxMS)
	fmt.Fprintf(w, "Workload: franz-go kgo, %d B incompressible values, no compression, no idempotency, %d partitions, "+
		"one producer client, %d requests in flight per broker, linger %v\n\n",
		o.RecordSize, o.Partitions, o.Inflight, o.Linger)

	ms := func(d time.Duration) string {
		switch {
		case d <= 0:
			return "—"
		case d < time.Second:
			return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
		}
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	mbps := func(p benchkit.ProduceResult) string {
		if p.Elapsed <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f MB/s (%.0f records/s)", p.MBps(), p.RecordsPerSec())
	}

	fmt.Fprintln(w, "| measure | figure |")
	fmt.Fprintln(w, "|---|---:|")
	fmt.Fprintf(w, "| produce, RF=1, acks=1 | %s |\n", mbps(r.rf1))
	fmt.Fprintf(w, "| produce, RF=3, acks=all, min.insync.replicas=2 | %s |\n", mbps(r.rf3))
	ratio := 0.0
	if r.rf1.MBps() > 0 {
		ratio = r.rf3.MBps() / r.rf1.MBps()
		fmt.Fprintf(w, "| RF=3 acks=all / RF=1 acks=1 | %.1f %% |\n", 100*ratio)
	}
	if r.latency.Produced.Elapsed > 0 {
		fmt.Fprintf(w, "| paced acks=all rate (%.0f %% of max) | %.0f records/s asked, %.0f achieved |\n",
			100*o.latencyFraction, r.latency.Rate, r.latency.Produced.RecordsPerSec())
		fmt.Fprintf(w, "| acks=all latency p50 / p99 / p99.9 / max | %s / %s / %s / %s |\n",
			ms(r.latency.P50), ms(r.latency.P99), ms(r.latency.P999), ms(r.latency.Max))
	}
	times := r.failover.times()
	if len(times) > 0 {
		fmt.Fprintf(w, "| leader failover, kill to next ack: min / median / max of %d | %s / %s / %s |\n",
			len(times), ms(times[0]), ms(times[len(times)/2]), ms(times[len(times)-1]))
	}
	if r.create.response > 0 {
		fmt.Fprintf(w, "| create %d partitions RF=3: CreateTopics answered | %s |\n", r.create.partitions, ms(r.create.response))
		fmt.Fprintf(w, "| … fresh Metadata shows a leader for every partition | %s |\n", ms(r.create.leaders))
		fmt.Fprintf(w, "| … every leader answers ListOffsets for its partitions | %s |\n", ms(r.create.served))
		fmt.Fprintf(w, "| … fresh Metadata first shows every ISR full | %s |\n", ms(r.create.firstFull))
		settled := ms(r.create.settled)
		if r.create.maxShort > 0 {
			settled += fmt.Sprintf(" (up to %d ISRs shrank in between)", r.create.maxShort)
		}
		fmt.Fprintf(w, "| … every ISR full for good (full again after the last shrink, then for replica.lag.time.max.ms + 1 s) | %s |\n", settled)
	}

	if len(r.cpu) > 0 {
		fmt.Fprintf(w, "\nCPU use in cores (of %d) during each phase, from /proc:\n\n", runtime.NumCPU())
		for _, ph := range []struct{ key, label string }{
			{"rf1", "RF=1 acks=1"}, {"rf3", "RF=3 acks=all"}, {"latency", "paced acks=all"},
		} {
			if u, ok := r.cpu[ph.key]; ok {
				fmt.Fprintf(w, "- %s: %v\n", ph.label, u)
			}
		}
	}

	fmt.Fprintln(w)
	if ratio > 0 {
		fmt.Fprintf(w, "Goal RF=3 acks=all ≥ %.0f %% of RF=1 acks=1: %s (%.1f %%).  \n", 100*goalRatio, metOrNot(ratio >= goalRatio), 100*ratio)
	}
	if len(times) > 0 {
		fmt.Fprintf(w, "Goal failover < %v: %s (worst %s of %d).\n", goalFailover,
			metOrNot(times[len(times)-1] < goalFailover), ms(times[len(times)-1]), len(times))
	}

	if len(r.failover.runs) > 0 {
		fmt.Fprintf(w, "\nFailover runs (one RF=3 partition, min.insync.replicas=2, idempotent acks=all producer at %.0f records/s, "+
			"metadata min age 100 ms; the killed broker is restarted and the ISR refilled before the next run):\n\n", r.failover.rate)
		fmt.Fprintln(w, "| run | killed leader | kill → fresh Metadata names a live leader | kill → first produce sent to another broker | kill → first ack | acked by | restart → ISR full |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|")
		for i, run := range r.failover.runs {
			ack, by := "—", "—"
			if run.ackedBy > 0 {
				ack, by = ms(run.ackAfter), fmt.Sprint(run.ackedBy)
			}
			fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %s | %s |\n", i+1, run.killed, ms(run.metaAfter), ms(run.sentAfter), ack, by, ms(run.rejoin))
		}
		fmt.Fprintf(w, "\nThe failover producer had %d records acknowledged and %d failed; the partition's end offset is %d.\n",
			r.failover.acked, r.failover.failed, r.failover.endOffset)
	}

	writeMemory(w, r)
	if len(r.stops) > 0 {
		var parts []string
		for _, s := range r.stops {
			p := fmt.Sprintf("broker %d %s", s.node, ms(s.took))
			if s.forced {
				p += fmt.Sprintf(" (still running %v after SIGTERM: SIGQUIT stack dump in its log, then killed)", stopTimeout)
			}
			parts = append(parts, p)
		}
		fmt.Fprintf(w, "\nStopping the cluster (SIGTERM to all three at once) took: %s.\n", strings.Join(parts, "; "))
	}

	benchkit.WriteNotes(w, r.notes)
	for _, p := range r.profiles {
		switch {
		case p.err != nil:
			fmt.Fprintf(w, "\nBroker %d: no CPU profile of %s: %v\n", p.node, p.phase, p.err)
		case p.top != "":
			fmt.Fprintf(w, "\nBroker %d (leader of %d of the topic's %d partitions) CPU profile, %d s of %s, top functions:\n\n```\n%s\n```\n",
				p.node, p.leads, o.Partitions, p.seconds, p.phase, p.top)
		}
	}
}

// writeMemory renders the brokers' resident memory before the failovers
// and at the end.
func writeMemory(w io.Writer, r *results) {
	if len(r.memBefore) == 0 && len(r.memEnd) == 0 {
		return
	}
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	cell := func(ms []nodeMemory, i int) string {
		if i >= len(ms) {
			return "—"
		}
		m := ms[i]
		if m.err != nil {
			return m.err.Error()
		}
		s := fmt.Sprintf("%s (peak %s)", mib(m.mem.RSS), mib(m.mem.HWM))
		if m.starts > 1 {
			s += fmt.Sprintf(", restarted, up %v", m.up.Round(time.Second))
		}
		return s
	}
	fmt.Fprintln(w, "\n| broker | RSS after throughput and latency | RSS at the end |")
	fmt.Fprintln(w, "|---:|---:|---:|")
	for i := range clusterSize {
		fmt.Fprintf(w, "| %d | %s | %s |\n", i+1, cell(r.memBefore, i), cell(r.memEnd, i))
	}
}

func metOrNot(met bool) string {
	if met {
		return "**met**"
	}
	return "**not met**"
}
