// Command mirrorbench measures `kdr mirror run` against the simplest thing
// that does the same job: a franz-go consume→produce pipe. Two single-broker
// kdr clusters run as separate processes, a source and a target; the source
// is preloaded with --records records of --records-size incompressible bytes
// in --partitions partitions, and then, one after the other so they never
// share the CPUs, on fresh target topics:
//
//   - the mirror, as a process (source alias src, target alias dst, prefix
//     naming), copies the backlog: MB/s until the target's end offsets sum to
//     the preload, and CPU-seconds per GB of the mirror process and of each
//     broker; its resident memory is sampled throughout, with the whole
//     preload as lag at the start; a CPU profile is taken from its
//     /debug/pprof endpoint;
//   - the sustained maximum: the highest of falling rates that a paced
//     producer on the source can hold while the mirror copies it and a
//     consumer reads the target (--sustain-reader), so that its half is
//     half of what this machine carries under the latency phase's load;
//   - replication latency while the mirror runs: a producer on the source
//     paced at half the sustained maximum (or --latency-rate), first
//     untimed until every partition is past the brokers' drop-behind
//     distance and then for --latency-warmup, and a consumer on the target
//     timing each record from its source append time to its arrival;
//   - the pipe, in this process (consume from the start, produce each polled
//     batch to the same partition with acks=all and idempotency, flush per
//     poll), measured the same way, with this process's CPU: first its
//     latency at the mirror's paced rate (the mirror stopped), then its
//     backlog copy;
//   - between the two, the floor: the same rate produced to the source and
//     read back from it, nothing copied (--hop-latency).
//
// Each latency phase also reports how busy the machine's CPUs were and the
// cores each process used: every process shares this machine, so a tail
// latency is only meaningful next to the load it was measured under.
//
// It prints figures only: no run fails because a figure is low. `make bench`
// runs it through scripts/bench.sh.
//
//	go run ./bench/mirrorbench --kdr-bin bin/kdr --records 2000000 --out docs/bench-run.md
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// options are the parsed command-line flags.
type options struct {
	benchkit.Common

	records       int64         // preloaded on the source
	copyTimeout   time.Duration // longest a backlog copy may take before it is reported unfinished
	batch         int           // the mirror's --batch-records
	latRate       float64       // records/s of the paced phase; 0: half the sustained maximum
	latWarmup     time.Duration // paced, untimed, before the paced phase's clock starts
	liveFor       time.Duration // each step of the sustained maximum
	sustainReader bool          // read the target during the sustained maximum's steps
	minFreeGB     float64       // refuse to start with less free disk under TMPDIR
	naming        string        // the mirror's --naming
	pipeLatency   bool          // also pace the latency phase's rate through the pipe
	hopLatency    bool          // also pace it into and out of the source alone
	dropBehind    int64         // the brokers' --log-drop-behind-bytes
	targetLatency time.Duration // each way, between everyone and the target broker
}

// parseFlags defines mirrorbench's flags on fs and parses args with it.
func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	o.Register(fs, benchkit.CommonUsage{
		KdrBin:      "kdr binary to start as the brokers and the mirror",
		Duration:    "length of the paced latency phase",
		Partitions:  "partitions of the source topics (and so of the target topics)",
		MaxBuffered: "records the preload and paced producers buffer before Produce blocks",
		ProfileSecs: "length of the mirror's CPU profile during the backlog copy; 0 skips profiling",
	})
	fs.Int64Var(&o.records, "records", 2_000_000, "records preloaded on the source: the backlog both copiers move, and the mirror's lag when it starts")
	fs.DurationVar(&o.copyTimeout, "copy-timeout", 10*time.Minute, "longest a backlog copy may take; an unfinished copy is reported with what it moved")
	fs.IntVar(&o.batch, "batch-records", 0, "the mirror's --batch-records (0: its default)")
	fs.Float64Var(&o.latRate, "latency-rate", 0, "records/s of the paced latency phase (0: half the sustained maximum)")
	fs.DurationVar(&o.latWarmup, "latency-warmup", 10*time.Second, "how long the paced producer runs at the rate before its records are timed, after the time it takes to write each partition's first --broker-drop-behind-bytes (their worst is reported apart, per half second)")
	fs.StringVar(&o.naming, "naming", "prefix", "the mirror's --naming: prefix or identity (identity rewrites each forwarded batch with the provenance hop)")
	fs.BoolVar(&o.pipeLatency, "pipe-latency", true, "also pace the latency phase's rate through the franz-go pipe (mirror stopped) and time it the same way")
	fs.BoolVar(&o.hopLatency, "hop-latency", true, "also pace the latency phase's rate into the source and read it back from the source (one broker, nothing copied) and time it the same way: the floor for the copies")
	fs.Int64Var(&o.dropBehind, "broker-drop-behind-bytes", 64<<20, "the brokers' --log-drop-behind-bytes (0: keep written data cached, the broker's default). On a VM whose host reclaims the guest's unused memory, filling fresh page-cache pages made the brokers' appends several times dearer 15-30 s into a stream, for the mirror and the pipe alike (docs/benchmarks.md)")
	fs.DurationVar(&o.targetLatency, "target-latency", 0, "delay each way between every client and the target broker (a fault proxy in this process that the target advertises), as between regions: the mirror waits a round trip of twice this for each answer. The proxy's CPU counts as this process's, so the pipe's CPU figures include it; 0: direct")
	fs.DurationVar(&o.liveFor, "sustain-step", 15*time.Second, "how long each rate is tried for the sustained maximum (as long as the latency phase: a shorter step passes rates the machine holds only until the kernel starts writing back what they wrote)")
	fs.BoolVar(&o.sustainReader, "sustain-reader", true, "read the target topic during the sustained maximum's steps, as the latency phase does, so that its half is half of the load that phase puts on this machine (false: a producer only, as runs before the ninth session of docs/benchmarks.md measured it)")
	fs.Float64Var(&o.minFreeGB, "min-free-gb", 30, "refuse to start with less than this many GB free under TMPDIR, where the brokers keep their data (a default run peaked at ~27 GB on the bench VM); 0 skips the check")
	if err := benchkit.Parse(fs, args); err != nil {
		return o, err
	}
	switch {
	case o.records <= 0:
		return o, fmt.Errorf("--records %d: must be positive", o.records)
	case o.Duration <= 0:
		return o, fmt.Errorf("--duration %v: must be positive", o.Duration)
	case o.copyTimeout <= 0:
		return o, fmt.Errorf("--copy-timeout %v: must be positive", o.copyTimeout)
	case o.latWarmup < 0:
		return o, fmt.Errorf("--latency-warmup %v: must not be negative", o.latWarmup)
	case o.Duration+o.latWarmup > maxLatencyPhase:
		return o, fmt.Errorf("--duration %v with --latency-warmup %v: at most %v together (a latency phase keeps each record's arrival in 32 bits of microseconds, 71 minutes)", o.Duration, o.latWarmup, maxLatencyPhase)
	case o.latRate < 0:
		return o, fmt.Errorf("--latency-rate %v: must not be negative", o.latRate)
	case o.liveFor < 2*time.Second:
		return o, fmt.Errorf("--sustain-step %v: want at least 2s", o.liveFor)
	case o.naming != "prefix" && o.naming != "identity":
		return o, fmt.Errorf("--naming %q: want prefix or identity", o.naming)
	case o.batch < 0:
		return o, fmt.Errorf("--batch-records %d: must not be negative", o.batch)
	case o.minFreeGB < 0:
		return o, fmt.Errorf("--min-free-gb %v: must not be negative", o.minFreeGB)
	case o.dropBehind < 0:
		return o, fmt.Errorf("--broker-drop-behind-bytes %d: must not be negative", o.dropBehind)
	case o.targetLatency < 0:
		return o, fmt.Errorf("--target-latency %v: must not be negative", o.targetLatency)
	}
	return o, o.Check()
}

// maxLatencyPhase bounds a latency phase's --duration and --latency-warmup
// together, leaving room below the 71 minutes an arrival's 32-bit
// microsecond clock holds for the drop-behind fill and the tail's wait.
const maxLatencyPhase = time.Hour

// warmupAt is how long a latency phase at rate records/s runs untimed:
// the time the paced producer takes to write --broker-drop-behind-bytes to
// every partition, then --latency-warmup. Until a partition's log passes
// the drop-behind distance, each append fills fresh page-cache pages
// rather than recycling dropped ones: on the bench VM that first fill of a
// new topic (1 GiB on the two brokers at 64 MiB × 8 partitions) cost up to
// a core and held latencies at 0.3–2.4 s for as long, where the stream
// after it ran at 20–60 ms (docs/benchmarks.md).
func (o options) warmupAt(rate float64) time.Duration {
	if o.dropBehind <= 0 || rate <= 0 {
		return o.latWarmup
	}
	fill := float64(o.dropBehind) * float64(o.Partitions) / (rate * float64(o.RecordSize))
	return o.latWarmup + time.Duration(fill*float64(time.Second)).Round(100*time.Millisecond)
}

func main() {
	os.Exit(benchkit.Main("mirrorbench", os.Args[1:], parseFlags, bench))
}
