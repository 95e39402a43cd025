package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// bench starts each target in turn, measures it and prints the report on
// stdout (and appends it to o.Out). A target that cannot be measured is
// reported as such; the other still runs.
func bench(ctx context.Context, o options, args []string) error {
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return err
	}
	w := newWorkload(o)

	logf("loopback: copying %d MiB through one TCP connection", o.loopbackSize>>20)
	loop, err := loopbackGBps(ctx, o.loopbackSize)
	if err != nil {
		logf("loopback: %v", err)
	}

	var results []targetResult
	var failures []string
	for _, name := range []string{"kdr", "kfake"} {
		if o.only != "" && o.only != name {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b, cleanup, err := startTarget(ctx, name, o)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: not started: %v", name, err))
			logf("%s: %v", name, err)
			continue
		}
		r, err := measure(ctx, b, w, o)
		cleanup()
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", name, err))
			logf("%s: %v", name, err)
		}
		results = append(results, r)
	}

	var sb strings.Builder
	writeReport(&sb, w, args, loop, results, failures)
	if err := benchkit.Publish(sb.String(), o.Out, logf); err != nil {
		return err
	}
	return ctx.Err()
}

// startTarget starts (or, for --kdr-addr, adopts) the named broker and
// returns it with the function that stops it.
func startTarget(ctx context.Context, name string, o options) (broker, func(), error) {
	switch name {
	case "kdr":
		if o.kdrAddr != "" {
			return broker{name: "kdr", addr: o.kdrAddr, metrics: o.kdrMetrics, pid: o.kdrPID, profile: true}, func() {}, nil
		}
		dir, err := os.MkdirTemp("", "kdrbench-kdr-")
		if err != nil {
			return broker{}, nil, err
		}
		c, err := startChild("kdr", filepath.Join(o.OutDir, "kdr.log"), o.KdrBin, "broker",
			"--data-dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--node-id", "1",
			"--log-level", "warn")
		if err != nil {
			os.RemoveAll(dir)
			return broker{}, nil, err
		}
		b := broker{name: "kdr", addr: c.Addr, metrics: c.Metrics, pid: c.Pid(), proc: c, profile: true}
		return b, func() { c.stop(); os.RemoveAll(dir) }, nil
	case "kfake":
		bin := o.kfakeBin
		var tmp string
		if bin == "" {
			var err error
			tmp, err = os.MkdirTemp("", "kdrbench-kfake-")
			if err != nil {
				return broker{}, nil, err
			}
			bin = filepath.Join(tmp, "kfakeserver")
			logf("kfake: building ./bench/kfakeserver")
			cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./bench/kfakeserver")
			if out, err := cmd.CombinedOutput(); err != nil {
				os.RemoveAll(tmp)
				return broker{}, nil, fmt.Errorf("building kfakeserver: %v\n%s", err, out)
			}
		}
		args := []string{"--port", "0"}
		if o.kfakeDisk {
			if tmp == "" {
				var err error
				if tmp, err = os.MkdirTemp("", "kdrbench-kfake-"); err != nil {
					return broker{}, nil, err
				}
			}
			args = append(args, "--data-dir", filepath.Join(tmp, "data"))
		}
		c, err := startChild("kfake", filepath.Join(o.OutDir, "kfake.log"), bin, args...)
		if err != nil {
			if tmp != "" {
				os.RemoveAll(tmp)
			}
			return broker{}, nil, err
		}
		b := broker{name: "kfake", addr: c.Addr, pid: c.Pid(), proc: c}
		return b, func() {
			c.stop()
			if tmp != "" {
				os.RemoveAll(tmp)
			}
		}, nil
	}
	return broker{}, nil, fmt.Errorf("unknown target %q", name)
}

// writeReport renders the results as markdown: the command, the machine,
// a side-by-side table with kdr/kfake ratios, notes, and the profiles.
func writeReport(w io.Writer, wl workload, args []string, loop float64, rs []targetResult, failures []string) {
	benchkit.WriteRunHeader(w, "Run", "kdrbench", args)
	fmt.Fprintf(w, "Workload: %s  \n", wl.describe())
	if loop > 0 {
		fmt.Fprintf(w, "Raw loopback baseline (one TCP connection, in process): %.2f GB/s\n", loop)
	}
	fmt.Fprintln(w)

	byName := map[string]*targetResult{}
	for i := range rs {
		byName[rs[i].name] = &rs[i]
	}
	kdr, kfake := byName["kdr"], byName["kfake"]
	type row struct {
		label string
		value func(r *targetResult) (float64, bool)
		unit  string
	}
	dur := func(d time.Duration) (float64, bool) { return float64(d) / float64(time.Millisecond), d > 0 }
	rows := []row{
		{"produce throughput (acks=1)", func(r *targetResult) (float64, bool) { return r.produce.MBps(), r.produce.Elapsed > 0 }, "MB/s"},
		{"consume throughput (from offset 0)", func(r *targetResult) (float64, bool) { return r.consume.mbps(), r.consume.elapsed > 0 }, "MB/s"},
		{"paced produce rate (half of max)", func(r *targetResult) (float64, bool) {
			return r.latency.Produced.RecordsPerSec(), r.latency.Produced.Elapsed > 0
		}, "records/s"},
		{"produce latency p50", func(r *targetResult) (float64, bool) { return dur(r.latency.P50) }, "ms"},
		{"produce latency p99", func(r *targetResult) (float64, bool) { return dur(r.latency.P99) }, "ms"},
		{"produce latency p99.9", func(r *targetResult) (float64, bool) { return dur(r.latency.P999) }, "ms"},
		{"broker RSS after the runs", func(r *targetResult) (float64, bool) {
			if r.mem == nil {
				return 0, false
			}
			return float64(r.mem.RSS) / (1 << 20), true
		}, "MiB"},
		{"broker peak RSS", func(r *targetResult) (float64, bool) {
			if r.mem == nil {
				return 0, false
			}
			return float64(r.mem.HWM) / (1 << 20), true
		}, "MiB"},
	}
	cell := func(r *targetResult, rw row) string {
		if r == nil {
			return "—"
		}
		v, ok := rw.value(r)
		if !ok {
			return "—"
		}
		return fmt.Sprintf("%.1f %s", v, rw.unit)
	}
	fmt.Fprintln(w, "| measure | kdr | kfake | kdr / kfake |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	for _, rw := range rows {
		ratio := "—"
		if kdr != nil && kfake != nil {
			a, okA := rw.value(kdr)
			b, okB := rw.value(kfake)
			if okA && okB && b > 0 {
				ratio = fmt.Sprintf("%.2f×", a/b)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", rw.label, cell(kdr, rw), cell(kfake, rw), ratio)
	}
	if kdr != nil && loop > 0 && kdr.consume.elapsed > 0 {
		fmt.Fprintf(w, "\nkdr consume is %.0f%% of the raw loopback baseline.\n", 100*kdr.consume.mbps()/(loop*1000))
	}

	var notes []string
	notes = append(notes, failures...)
	for _, r := range rs {
		for _, n := range r.notes {
			notes = append(notes, r.name+": "+n)
		}
	}
	benchkit.WriteNotes(w, notes)
	for _, r := range rs {
		for _, p := range r.profiles {
			if p.top == "" {
				continue
			}
			fmt.Fprintf(w, "\n%s CPU profile during %s (%s), top functions:\n\n```\n%s\n```\n", r.name, p.phase, p.during, p.top)
		}
	}
}
