package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The throughput topics.
const (
	topicRF1 = "clusterbench-rf1"
	topicRF3 = "clusterbench-rf3"
)

// results is everything one run measured. A phase that could not run
// leaves its zero value and a note.
type results struct {
	binary     string // the kdr binary, as copied at the start
	rf1, rf3   benchkit.ProduceResult
	rf3Leaders map[int32]int // partitions of topicRF3 each broker led
	profiles   []profileResult
	latency    benchkit.LatencyResult
	cpu        map[string]cpuUsage // by phase: "rf1", "rf3", "latency"
	failover   failoverResult
	create     createResult
	memBefore  []nodeMemory // after the throughput and latency phases, before any kill
	memEnd     []nodeMemory // at the end
	stops      []stopResult
	notes      []string // misbehaviour and skipped phases, for the report
}

// nodeMemory is one broker's resident memory at a point of the run.
type nodeMemory struct {
	node   int32
	starts int // processes this node has had; >1 after a failover restart
	up     time.Duration
	mem    benchkit.Memory
	err    error
}

func (r *results) notef(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.notes = append(r.notes, msg)
	logf("WARNING: %s", msg)
}

// bench starts the cluster, runs every phase, stops the cluster and prints
// the report on stdout (and appends it to o.Out).
func bench(ctx context.Context, o options, args []string) error {
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return err
	}
	logf("starting %d brokers from %s", clusterSize, o.KdrBin)
	c, err := startCluster(ctx, o)
	if err != nil {
		return err
	}
	logf("cluster up: brokers at %s", strings.Join(c.bootstrap(), ", "))
	w := newWorkload(o, c.bootstrap())
	r := results{binary: c.binInfo}
	runPhases(ctx, c, w, o, &r)
	logf("stopping the brokers")
	r.stops = c.close()
	for _, s := range r.stops {
		logf("broker %d stopped %v after SIGTERM (killed: %v)", s.node, s.took.Round(time.Millisecond), s.forced)
	}

	var sb strings.Builder
	writeReport(&sb, o, args, &r)
	if err := benchkit.Publish(sb.String(), o.Out, logf); err != nil {
		return err
	}
	return ctx.Err()
}

// runPhases runs the phases in order. A failed phase is noted; the run
// ends early only when a broker died or the cluster lost one.
func runPhases(ctx context.Context, c *cluster, w workload, o options, r *results) {
	alive := func(phase string) bool {
		ok := true
		for _, n := range c.nodes {
			if !n.running() {
				r.notef("broker %d exited during %s; its log ends:\n\n```\n%s\n```", n.id, phase, benchkit.Tail(n.logPath, 20))
				ok = false
			}
		}
		return ok && ctx.Err() == nil
	}

	logf("creating %s (%d partitions, RF=1) and %s (%d partitions, RF=3, min.insync.replicas=2)",
		topicRF1, o.Partitions, topicRF3, o.Partitions)
	if err := c.createTopic(ctx, topicRF1, o.Partitions, 1, nil); err != nil {
		r.notef("%v", err)
		return
	}
	if err := c.createTopic(ctx, topicRF3, o.Partitions, clusterSize, map[string]string{"min.insync.replicas": "2"}); err != nil {
		r.notef("%v", err)
		return
	}
	for _, t := range []string{topicRF1, topicRF3} {
		if err := poll(ctx, time.Minute, 100*time.Millisecond, func() (bool, string) {
			return c.topicReady(ctx, t, o.Partitions, true)
		}); err != nil {
			r.notef("topic %s: %v", t, err)
			return
		}
	}

	// 1. Throughput. Each phase starts with a sync(2), so that the dirty
	// pages of the one before do not throttle it.
	syscall.Sync()
	logf("throughput: %s, acks=1, for %v", topicRF1, o.Duration)
	r.cpu = map[string]cpuUsage{}
	profs := profileAll(ctx, c, o, "acks-1", "the RF=1 acks=1 throughput run", leaderCounts(ctx, c, topicRF1))
	before := sampleCPU(c)
	p, err := produceFor(ctx, w, topicRF1, kgo.LeaderAck(), o.Duration)
	r.rf1, r.cpu["rf1"] = p, sampleCPU(c).usageSince(before)
	r.profiles = append(r.profiles, summarise(ctx, <-profs)...)
	logf("throughput: CPU cores used: %v", r.cpu["rf1"])
	logProduce("RF=1 acks=1", p)
	if err != nil {
		r.notef("RF=1 acks=1 produce: %v", err)
	}
	if p.Failed > 0 {
		r.notef("RF=1 acks=1 produce: %d records failed, first error: %v", p.Failed, p.FirstErr)
	}
	if !alive("the RF=1 produce") {
		return
	}

	syscall.Sync()
	r.rf3Leaders = leaderCounts(ctx, c, topicRF3)
	logf("throughput: %s, acks=all, for %v (leaders per broker: %v)", topicRF3, o.Duration, r.rf3Leaders)
	profs = profileAll(ctx, c, o, "acks-all", "the RF=3 acks=all throughput run", r.rf3Leaders)
	before = sampleCPU(c)
	p, err = produceFor(ctx, w, topicRF3, kgo.AllISRAcks(), o.Duration)
	r.rf3, r.cpu["rf3"] = p, sampleCPU(c).usageSince(before)
	r.profiles = append(r.profiles, summarise(ctx, <-profs)...)
	logf("throughput: CPU cores used: %v", r.cpu["rf3"])
	logProduce("RF=3 acks=all", p)
	if err != nil {
		r.notef("RF=3 acks=all produce: %v", err)
	}
	if p.Failed > 0 {
		r.notef("RF=3 acks=all produce: %d records failed, first error: %v", p.Failed, p.FirstErr)
	}
	if r.rf1.Records > 0 {
		logf("throughput: RF=3 acks=all is %.1f%% of RF=1 acks=1", 100*r.rf3.MBps()/r.rf1.MBps())
	}
	if !alive("the RF=3 produce") {
		return
	}

	// 2. Latency at a fraction (by default half) of the acks=all rate.
	if rate := r.rf3.RecordsPerSec() * o.latencyFraction; rate > 0 {
		syscall.Sync()
		logf("latency: %s, acks=all, %.0f records/s (%.0f%% of the measured rate) for %v", topicRF3, rate, 100*o.latencyFraction, o.Duration)
		profs = profileAll(ctx, c, o, "paced", "the paced acks=all latency run", r.rf3Leaders)
		before := sampleCPU(c)
		l, err := produceAtRate(ctx, w, topicRF3, kgo.AllISRAcks(), rate, o.Duration)
		r.latency, r.cpu["latency"] = l, sampleCPU(c).usageSince(before)
		r.profiles = append(r.profiles, summarise(ctx, <-profs)...)
		logf("latency: CPU cores used: %v", r.cpu["latency"])
		logf("latency: achieved %.0f records/s; p50 %v p99 %v p99.9 %v max %v", l.Produced.RecordsPerSec(),
			l.P50, l.P99, l.P999, l.Max)
		if err != nil {
			r.notef("paced produce: %v", err)
		}
		if l.Produced.Failed > 0 {
			r.notef("paced produce: %d records failed, first error: %v", l.Produced.Failed, l.Produced.FirstErr)
		}
		if got := l.Produced.RecordsPerSec(); got < 0.95*rate {
			r.notef("paced produce reached %.0f records/s of the %.0f asked", got, rate)
		}
	} else {
		r.notef("latency phase skipped: no acks=all throughput to pace from")
	}
	if !alive("the paced produce") {
		return
	}
	r.memBefore = readMemories(c)

	// 3. Failover.
	if o.failovers > 0 {
		syscall.Sync()
		logf("failover: %d leader kills, producer at %.0f records/s acks=all", o.failovers, o.failoverRate)
		f, err := measureFailovers(ctx, c, w, o)
		r.failover = f
		if err != nil {
			r.notef("failover: %v", err)
		}
		for i, run := range f.runs {
			if run.err != nil {
				r.notef("failover %d (broker %d killed): %v", i+1, run.killed, run.err)
			}
		}
		if f.failed > 0 {
			r.notef("failover producer: %d records failed, first error: %v", f.failed, f.firstErr)
		}
		if f.endOffset >= 0 && f.endOffset != f.acked {
			r.notef("failover producer: %d records acknowledged but the partition's end offset is %d", f.acked, f.endOffset)
		}
		if !alive("the failovers") {
			return
		}
	}

	// 4. Creating many partitions.
	if o.createPartitions > 0 {
		if err := c.waitBrokers(ctx, clusterSize, time.Minute); err != nil {
			r.notef("before creating %d partitions: %v", o.createPartitions, err)
		}
		logf("create: topic %s with %d partitions, RF=3", manyTopic, o.createPartitions)
		cr, err := measureCreate(ctx, c, o)
		r.create = cr
		if err != nil {
			r.notef("creating %d partitions: %v", o.createPartitions, err)
		}
		if !alive("the topic creation") {
			return
		}
	}

	// 5. Memory.
	r.memEnd = readMemories(c)
}

func logProduce(what string, p benchkit.ProduceResult) {
	logf("throughput: %s: %d records in %v: %.1f MB/s, %.0f records/s", what, p.Records,
		p.Elapsed.Round(time.Millisecond), p.MBps(), p.RecordsPerSec())
}

// leaderCounts is how many partitions of topic each broker leads, from
// fresh Metadata; nil if Metadata failed.
func leaderCounts(ctx context.Context, c *cluster, topic string) map[int32]int {
	ps, err := c.topicState(ctx, topic)
	if err != nil {
		return nil
	}
	out := map[int32]int{}
	for _, p := range ps {
		out[p.leader]++
	}
	return out
}

// readMemories reads every running broker's resident memory.
func readMemories(c *cluster) []nodeMemory {
	var out []nodeMemory
	for _, n := range c.nodes {
		nm := nodeMemory{node: n.id, starts: n.starts}
		if !n.running() {
			nm.err = fmt.Errorf("not running")
		} else {
			nm.up = time.Since(n.startedAt)
			nm.mem, nm.err = benchkit.ReadMemory(n.pid())
		}
		out = append(out, nm)
	}
	return out
}
