// Command rollbench measures what segment rolls and retention deletions cost
// a producer: acks=all produce latency into one partition of a kdr broker
// process, paced at --rate, first into a topic whose segments neither roll
// nor age out during the phase (the baseline), then into one that rolls a
// --segment-bytes segment every second or so and deletes one as often
// (--retention-bytes). Same broker, same rate, one phase after the other.
//
// It prints p50, p99, p99.9 and the maximum of each phase, how many quarter
// seconds had a record slower than 50 ms, and the rolling phase's p99 over
// the baseline's. Figures only; no run fails because a figure is high.
//
//	go run ./bench/rollbench --kdr-bin bin/kdr --rate 60000 --duration 20s
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// steadySegment is the baseline topic's segment.bytes, the largest Kafka
// takes, so that it does not roll during a phase.
const steadySegment = math.MaxInt32

type options struct {
	kdrBin     string
	rate       int
	duration   time.Duration
	warmup     time.Duration
	recordSize int
	segment    int64
	retention  int64
	dropBehind int64
	out        string
	outDir     string
}

func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	fs.StringVar(&o.kdrBin, "kdr-bin", "bin/kdr", "kdr binary to start as the broker")
	fs.IntVar(&o.rate, "rate", 60000, "records per second, paced, in both phases")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "length of each phase's timed part")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "untimed start of each phase: a new topic's first page-cache fill is dear on some VMs (docs/benchmarks.md)")
	fs.IntVar(&o.recordSize, "record-size", 1024, "record value size in bytes (random, uncompressed)")
	fs.Int64Var(&o.segment, "segment-bytes", 64<<20, "segment.bytes of the rolling phase's topic")
	fs.Int64Var(&o.retention, "retention-bytes", 256<<20, "retention.bytes of the rolling phase's topic (the broker checks every second)")
	fs.Int64Var(&o.dropBehind, "drop-behind-bytes", 64<<20, "the broker's --log-drop-behind-bytes, as the mirror bench runs it")
	fs.StringVar(&o.out, "out", "", "markdown file to append the report to")
	fs.StringVar(&o.outDir, "out-dir", "bench/out", "directory for the broker's log")
	if err := benchkit.Parse(fs, args); err != nil {
		return o, err
	}
	switch {
	case o.rate <= 0:
		return o, fmt.Errorf("--rate %d: must be positive", o.rate)
	case o.duration < time.Second:
		return o, fmt.Errorf("--duration %v: want at least 1s", o.duration)
	case o.warmup < 0:
		return o, fmt.Errorf("--warmup %v: must not be negative", o.warmup)
	case o.segment < 1<<20 || o.segment > 1<<30:
		return o, fmt.Errorf("--segment-bytes %d: want 1 MiB to 1 GiB", o.segment)
	case o.retention < o.segment:
		return o, fmt.Errorf("--retention-bytes %d: want at least --segment-bytes (%d)", o.retention, o.segment)
	case o.recordSize <= 0:
		return o, fmt.Errorf("--record-size %d: must be positive", o.recordSize)
	}
	if bytes := float64(o.rate) * float64(o.recordSize+70) * (o.warmup + o.duration).Seconds(); bytes >= steadySegment {
		return o, fmt.Errorf("--rate × --record-size × --duration writes %.0f bytes: the baseline topic's segment (%d bytes, the most segment.bytes takes) would roll; lower one of them (--warmup counts)", bytes, steadySegment)
	}
	return o, nil
}

func main() { os.Exit(benchkit.Main("rollbench", os.Args[1:], parseFlags, run)) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// phase is one paced run, summarised.
type phase struct {
	name string
	benchkit.LatencyResult
}

func run(ctx context.Context, o options, args []string) error {
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	dataDir, err := os.MkdirTemp("", "rollbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	logPath := filepath.Join(o.outDir, "rollbench-broker.log")
	logs, err := os.Create(logPath)
	if err != nil {
		return err
	}
	b, err := benchkit.Start(o.kdrBin, []string{"broker",
		"--data-dir", dataDir, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--node-id", "1", "--log-level", "warn", "--log-retention-check-interval-ms", "1000",
		"--log-drop-behind-bytes", strconv.FormatInt(o.dropBehind, 10)}, logs)
	if err != nil {
		return fmt.Errorf("starting broker: %w", err)
	}
	defer func() {
		if !b.Terminate(15 * time.Second) {
			b.Kill()
		}
	}()
	if err := b.AwaitAddress(30 * time.Second); err != nil {
		return fmt.Errorf("broker printed %v; its log:\n%s", err, benchkit.Tail(logPath, 20))
	}
	logf("broker %s", b.Addr)

	steady, err := pace(ctx, o, b.Addr, "steady", map[string]string{"segment.bytes": strconv.Itoa(steadySegment)})
	if err != nil {
		return err
	}
	rolling, err := pace(ctx, o, b.Addr, "rolling", map[string]string{
		"segment.bytes": strconv.FormatInt(o.segment, 10), "retention.bytes": strconv.FormatInt(o.retention, 10)})
	if err != nil {
		return err
	}

	var r strings.Builder
	benchkit.WriteRunHeader(&r, "Segment roll run", "rollbench", args)
	mbps := float64(o.rate) * float64(o.recordSize) / 1e6
	fmt.Fprintf(&r, "One partition, acks=all, linger 0, uncompressed %d B records at %d records/s (%.1f MB/s) for %v a phase after %v untimed; broker drop-behind %d MiB, retention checked every second. "+
		"The rolling topic rolls a %d MiB segment about every %.1f s and, once it holds %d MiB, deletes one as often.\n\n",
		o.recordSize, o.rate, mbps, o.duration, o.warmup, o.dropBehind>>20, o.segment>>20, float64(o.segment)/(mbps*1e6), o.retention>>20)
	fmt.Fprintf(&r, "| phase | records | p50 | p99 | p99.9 | max | quarter seconds with a record over %v |\n", benchkit.SlowRecord)
	fmt.Fprintln(&r, "|---|---:|---:|---:|---:|---:|---:|")
	var notes []string
	for _, p := range []phase{steady, rolling} {
		fmt.Fprintf(&r, "| %s | %d | %s | %s | %s | %s | %d |\n", p.name, p.Produced.Records, ms(p.P50), ms(p.P99), ms(p.P999), ms(p.Max), p.SlowWindows)
		if p.Produced.Failed > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d records failed (not timed)", p.name, p.Produced.Failed))
		}
	}
	if steady.P99 > 0 {
		fmt.Fprintf(&r, "\nRolling / steady p99: %.2f×\n", float64(rolling.P99)/float64(steady.P99))
	}
	benchkit.WriteNotes(&r, notes)
	return benchkit.Publish(r.String(), o.out, logf)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

// pace creates topic with configs and produces o.rate records/s into it,
// untimed for o.warmup and then timed for o.duration, each record from its
// send to its acknowledgement.
func pace(ctx context.Context, o options, addr, topic string, configs map[string]string) (phase, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		return phase{}, err
	}
	defer cl.Close()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = kadm.StringPtr(v)
	}
	res, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, cfg, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return phase{}, fmt.Errorf("creating %s: %w", topic, err)
	}
	logf("%s: %d records/s for %v, timed after %v", topic, o.rate, o.warmup+o.duration, o.warmup)
	val := make([]byte, o.recordSize)
	rand.Read(val)
	p := benchkit.Producer{Value: val}
	if err := p.WarmUp(ctx, cl); err != nil {
		return phase{}, fmt.Errorf("%s: first record: %w", topic, err)
	}
	if o.warmup > 0 {
		if _, err := p.ProducePaced(ctx, cl, float64(o.rate), o.warmup); err != nil {
			return phase{}, err
		}
	}
	lat, err := p.ProduceAtRate(ctx, cl, float64(o.rate), o.duration)
	if err != nil {
		return phase{}, err
	}
	if lat.Produced.Records == 0 {
		return phase{}, fmt.Errorf("%s: no record acknowledged (%d failed)", topic, lat.Produced.Failed)
	}
	return phase{name: topic, LatencyResult: lat}, nil
}
