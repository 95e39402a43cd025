// Command kdrbench measures a kdr broker side by side with franz-go's kfake,
// both run as separate processes on this machine and both driven by the same
// franz-go workload from this process: 1 KiB uncompressed records into one
// topic of 8 partitions, acks=1, idempotency off.
//
// For each target, one after the other so they never share the CPUs, it
// measures:
//
//   - produce throughput: as fast as the clients take records, for --duration;
//   - consume throughput: everything produced, read back from offset 0
//     (page cache for kdr, memory for kfake), with a count and offset check;
//   - produce latency at half the measured produce rate: p50, p99, p99.9;
//   - the broker's resident memory (VmRSS, VmHWM) after those phases;
//   - for kdr, CPU profiles of a produce run and of a consume run, taken from
//     the broker's /debug/pprof endpoint and summarised with go tool pprof.
//
// It also measures one TCP stream over loopback in-process, as the ceiling of
// what any broker could move on this machine. It prints figures only: no run
// fails because a figure is low. `make bench` runs it through scripts/bench.sh.
//
//	go run ./bench/kdrbench --kdr-bin bin/kdr --duration 15s --out docs/bench-run.md
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// options are the parsed command-line flags.
type options struct {
	benchkit.Common

	kdrAddr    string // an already-running broker; no process is started
	kdrMetrics string // its metrics address, for pprof
	kdrPID     int    // its pid, for RSS
	kfakeBin   string
	kfakeDisk  bool
	only       string // "", "kdr" or "kfake"

	producers    int
	loopbackSize int64
}

// parseFlags defines kdrbench's flags on fs and parses args with it.
func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	o.Register(fs, benchkit.CommonUsage{
		KdrBin:      "kdr binary to start as the broker under test",
		Duration:    "length of each produce and latency phase",
		Partitions:  "partitions of the bench topic",
		MaxBuffered: "records a producer client buffers before Produce blocks",
		ProfileSecs: "length of each kdr CPU profile; 0 skips profiling",
	})
	fs.StringVar(&o.kdrAddr, "kdr-addr", "", "benchmark an already-running kdr (host:port) instead of starting --kdr-bin")
	fs.StringVar(&o.kdrMetrics, "kdr-metrics", "", "with --kdr-addr: its metrics host:port, for pprof")
	fs.IntVar(&o.kdrPID, "kdr-pid", 0, "with --kdr-addr: its pid, for RSS")
	fs.StringVar(&o.kfakeBin, "kfake-bin", "", "prebuilt bench/kfakeserver binary (default: go build it into a temp dir)")
	fs.BoolVar(&o.kfakeDisk, "kfake-disk", false, "run kfake with a data dir (page-cache writes) instead of in memory")
	fs.StringVar(&o.only, "only", "", "run one target only: kdr or kfake")
	fs.IntVar(&o.producers, "producers", 1, "producer clients in the throughput phase")
	fs.Int64Var(&o.loopbackSize, "loopback-bytes", 1<<30, "bytes copied by the raw loopback baseline")
	if err := benchkit.Parse(fs, args); err != nil {
		return o, err
	}
	switch {
	case o.only != "" && o.only != "kdr" && o.only != "kfake":
		return o, fmt.Errorf("--only %q: want kdr or kfake", o.only)
	case o.Duration <= 0:
		return o, fmt.Errorf("--duration %v: must be positive", o.Duration)
	case o.RecordSize > 0 && o.Partitions > 0 && o.producers <= 0:
		// Between Check's --partitions and --inflight: of several bad
		// flags, kdrbench has always named the first in this order.
		return o, fmt.Errorf("--producers %d: must be positive", o.producers)
	}
	return o, o.Check()
}

func main() {
	os.Exit(benchkit.Main("kdrbench", os.Args[1:], parseFlags, bench))
}
