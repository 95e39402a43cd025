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
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the parsed command-line flags.
type options struct {
	kdrBin     string
	kdrAddr    string // an already-running broker; no process is started
	kdrMetrics string // its metrics address, for pprof
	kdrPID     int    // its pid, for RSS
	kfakeBin   string
	kfakeDisk  bool
	only       string // "", "kdr" or "kfake"

	duration     time.Duration
	recordSize   int
	partitions   int
	producers    int
	inflight     int
	linger       time.Duration
	maxBuffered  int
	profileSecs  int
	loopbackSize int64

	out    string // markdown file the report is appended to
	outDir string // profiles and broker logs
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("kdrbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.kdrBin, "kdr-bin", "bin/kdr", "kdr binary to start as the broker under test")
	fs.StringVar(&o.kdrAddr, "kdr-addr", "", "benchmark an already-running kdr (host:port) instead of starting --kdr-bin")
	fs.StringVar(&o.kdrMetrics, "kdr-metrics", "", "with --kdr-addr: its metrics host:port, for pprof")
	fs.IntVar(&o.kdrPID, "kdr-pid", 0, "with --kdr-addr: its pid, for RSS")
	fs.StringVar(&o.kfakeBin, "kfake-bin", "", "prebuilt bench/kfakeserver binary (default: go build it into a temp dir)")
	fs.BoolVar(&o.kfakeDisk, "kfake-disk", false, "run kfake with a data dir (page-cache writes) instead of in memory")
	fs.StringVar(&o.only, "only", "", "run one target only: kdr or kfake")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "length of each produce and latency phase")
	fs.IntVar(&o.recordSize, "records-size", 1024, "record value size in bytes")
	fs.IntVar(&o.partitions, "partitions", 8, "partitions of the bench topic")
	fs.IntVar(&o.producers, "producers", 1, "producer clients in the throughput phase")
	fs.IntVar(&o.inflight, "inflight", 10, "produce requests in flight per broker connection")
	fs.DurationVar(&o.linger, "linger", time.Millisecond, "producer linger")
	fs.IntVar(&o.maxBuffered, "max-buffered", 100000, "records a producer client buffers before Produce blocks")
	fs.IntVar(&o.profileSecs, "profile-seconds", 10, "length of each kdr CPU profile; 0 skips profiling")
	fs.Int64Var(&o.loopbackSize, "loopback-bytes", 1<<30, "bytes copied by the raw loopback baseline")
	fs.StringVar(&o.out, "out", "", "markdown file to append the report to")
	fs.StringVar(&o.outDir, "out-dir", "bench/out", "directory for profiles and broker logs")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	switch {
	case o.only != "" && o.only != "kdr" && o.only != "kfake":
		return o, fmt.Errorf("--only %q: want kdr or kfake", o.only)
	case o.duration <= 0:
		return o, fmt.Errorf("--duration %v: must be positive", o.duration)
	case o.recordSize <= 0:
		return o, fmt.Errorf("--records-size %d: must be positive", o.recordSize)
	case o.partitions <= 0:
		return o, fmt.Errorf("--partitions %d: must be positive", o.partitions)
	case o.producers <= 0:
		return o, fmt.Errorf("--producers %d: must be positive", o.producers)
	case o.inflight <= 0:
		return o, fmt.Errorf("--inflight %d: must be positive", o.inflight)
	case o.maxBuffered <= 0:
		return o, fmt.Errorf("--max-buffered %d: must be positive", o.maxBuffered)
	}
	return o, nil
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	opts, err := parseFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kdrbench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, opts, args); err != nil {
		fmt.Fprintf(os.Stderr, "kdrbench: %v\n", err)
		return 1
	}
	return 0
}
