package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
	"github.com/kdr-io/kdr/internal/faultproxy"
)

// Topic names. The mirror copies srcTopic to the target (remote names it
// src.bench under prefix naming, bench under identity); the pipe copies it
// to pipeTopic; the sustained maximum writes liveTopic and the paced phase
// latTopic, which the mirror copies too.
const (
	srcTopic  = "bench"
	pipeTopic = "pipe.bench"
	latTopic  = "lat"
	liveTopic = "live"
	// pipeLatTopic is paced through the pipe for its latency, to
	// pipe.<pipeLatTopic> on the target; the mirror does not copy it.
	pipeLatTopic = "pipelat"
	// hopTopic is paced on the source and read back from the source: one
	// broker, no copy, the floor for the copies' latency.
	hopTopic = "onehop"
)

// remote is topic's name on the target under the run's --naming.
func remote(o options, topic string) string {
	if o.naming == "identity" {
		return topic
	}
	return "src." + topic
}

// results is everything the report prints.
type results struct {
	backlog  int64
	preload  benchkit.ProduceResult
	mirror   copyRun
	pipe     copyRun
	mem      memSamples
	latency  latencyRun
	pipeLat  latencyRun // the same rate through the pipe, or zero
	hopLat   latencyRun // the same rate into and out of the source alone, or zero
	latRate  float64
	sustain  sustainRun
	profile  string // go tool pprof -top of the mirror, or ""
	profSecs int
	notes    []string
}

func (r *results) notef(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.notes = append(r.notes, msg)
	logf("note: %s", msg)
}

// memSamples is the mirror's resident memory during the backlog copy.
type memSamples struct {
	firstRSS, firstLag int64 // the first sample, with nearly the whole backlog as lag
	peakRSS, peakLag   int64 // the largest sample and the lag at that moment
	hwm                int64 // VmHWM once the copy is done
	afterLatency       int64 // VmRSS after the paced phase
}

func bench(ctx context.Context, o options, args []string) error {
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "mirrorbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := checkFree(tmp, o.minFreeGB); err != nil {
		return err
	}

	src, err := startBroker(o.KdrBin, filepath.Join(tmp, "source"), filepath.Join(o.OutDir, "mirrorbench-source.log"), o.dropBehind, "127.0.0.1:0", "")
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer stop(src)
	listen, advertise := "127.0.0.1:0", ""
	if o.targetLatency > 0 {
		// The target advertises a proxy, so every client (the mirror, the
		// pipe, the bench's readers) reaches it through the delay.
		if listen, err = freeAddr(); err != nil {
			return err
		}
		proxy, err := faultproxy.New(listen)
		if err != nil {
			return fmt.Errorf("target proxy: %w", err)
		}
		defer proxy.Close()
		proxy.SetLatency(o.targetLatency)
		advertise = proxy.Addr()
		logf("target %s behind a proxy at %s adding %v each way", listen, advertise, o.targetLatency)
	}
	dst, err := startBroker(o.KdrBin, filepath.Join(tmp, "target"), filepath.Join(o.OutDir, "mirrorbench-target.log"), o.dropBehind, listen, advertise)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer stop(dst)
	logf("source %s, target %s", src.Addr, dst.Addr)

	srcAdm, closeSrc, err := admin(src.Addr)
	if err != nil {
		return err
	}
	defer closeSrc()
	dstAdm, closeDst, err := admin(dst.Addr)
	if err != nil {
		return err
	}
	defer closeDst()
	if err := createTopic(ctx, srcAdm, srcTopic, o.Partitions); err != nil {
		return err
	}
	if err := createTopic(ctx, dstAdm, pipeTopic, o.Partitions); err != nil {
		return err
	}

	var r results
	p := benchkit.NewProducer(o.Common)
	logf("preloading %d records of %d bytes into %s", o.records, o.RecordSize, srcTopic)
	r.backlog, r.preload, err = preload(ctx, p, srcAdm, []string{src.Addr}, srcTopic, o.records)
	if err != nil {
		return fmt.Errorf("preload: %w", err)
	}
	if r.preload.Failed > 0 {
		r.notef("preload: %d records refused (first: %v); the backlog is the %d the source holds", r.preload.Failed, r.preload.FirstErr, r.backlog)
	}
	logf("preloaded %d records in %v (%.1f MB/s)", r.backlog, r.preload.Elapsed.Round(time.Millisecond), r.preload.MBps())
	backlogBytes := r.backlog * int64(o.RecordSize)

	// The copies read the preload back from the page cache; flushing it to
	// disk first keeps writeback of the preload out of their figures.
	syscall.Sync()
	if err := mirrorPhase(ctx, o, &r, src, dst, dstAdm, srcAdm, p, backlogBytes); err != nil {
		return err
	}

	if o.pipeLatency && r.latRate >= 1 && r.latency.received > 0 {
		syscall.Sync()
		r.pipeLat, err = pipeLatency(ctx, o, src, dst, srcAdm, dstAdm, p, r.latRate)
		if err != nil {
			r.notef("pipe latency phase: %v", err)
		}
	}
	if o.hopLatency && r.latRate >= 1 && r.latency.received > 0 {
		syscall.Sync()
		r.hopLat, err = hopLatency(ctx, o, src, srcAdm, p, r.latRate)
		if err != nil {
			r.notef("one-hop latency phase: %v", err)
		}
	}

	syscall.Sync()
	logf("pipe: copying the backlog to %s", pipeTopic)
	r.pipe = copyRun{want: r.backlog, bytes: backlogBytes, copierName: "pipe", memmoveGBps: benchkit.MemmoveGBps()}
	src0, dst0 := cpuOf(src.Pid()), cpuOf(dst.Pid())
	self0 := benchkit.SelfCPU()
	start := time.Now()
	pctx, cancel := context.WithCancel(ctx)
	pipeDone := make(chan error, 1)
	go func() { pipeDone <- pipe(pctx, []string{src.Addr}, []string{dst.Addr}, srcTopic, pipeTopic) }()
	werr := awaitCopied(ctx, dstAdm, pipeTopic, start, o.copyTimeout, &r.pipe, nil)
	r.pipe.copierCPU = benchkit.SelfCPU() - self0
	r.pipe.sourceCPU, r.pipe.targetCPU = cpuOf(src.Pid())-src0, cpuOf(dst.Pid())-dst0
	cancel()
	if err := <-pipeDone; err != nil {
		r.notef("pipe: %v", err)
	}
	if werr != nil {
		return werr
	}
	if !r.pipe.finished {
		r.notef("pipe: copied %d of %d records within --copy-timeout %v", r.pipe.got, r.pipe.want, o.copyTimeout)
	}
	logf("pipe: %d records in %v (%.1f MB/s)", r.pipe.got, r.pipe.wall.Round(time.Millisecond), r.pipe.MBps())

	var b strings.Builder
	writeReport(&b, o, args, r)
	return benchkit.Publish(b.String(), o.Out, logf)
}

// mirrorPhase runs `kdr mirror run` over the backlog, samples its memory
// and CPU and takes its profile, then measures latency at half its rate
// while it still runs, and stops it.
func mirrorPhase(ctx context.Context, o options, r *results, src, dst *benchkit.Process, dstAdm, srcAdm *kadm.Client, p benchkit.Producer, backlogBytes int64) error {
	margs := []string{
		"--source-alias", "src", "--source-brokers", src.Addr,
		"--target-alias", "dst", "--target-brokers", dst.Addr,
		"--naming", o.naming, "--topics", srcTopic + "," + latTopic + "," + liveTopic,
		"--metrics-listen", "127.0.0.1:0", "--refresh-interval", "1s", "--log-level", "warn",
	}
	if o.batch > 0 {
		margs = append(margs, "--batch-records", fmt.Sprint(o.batch))
	}
	logf("mirror: copying the backlog to %s", remote(o, srcTopic))
	r.mirror = copyRun{want: r.backlog, bytes: backlogBytes, copierName: "mirror", memmoveGBps: benchkit.MemmoveGBps()}
	src0, dst0 := cpuOf(src.Pid()), cpuOf(dst.Pid())
	start := time.Now()
	m, err := startMirror(o.KdrBin, margs, filepath.Join(o.OutDir, "mirrorbench-mirror.log"))
	if err != nil {
		return err
	}
	defer stop(m)

	profDone := make(chan string, 1)
	r.profSecs = o.ProfileSecs
	if o.ProfileSecs > 0 && benchkit.PprofAvailable(ctx, m.Metrics) {
		go func() { profDone <- profileMirror(ctx, m.Metrics, o.ProfileSecs, o.OutDir) }()
	} else {
		if o.ProfileSecs > 0 {
			r.notef("the mirror serves no /debug/pprof on %s; no profile", m.Metrics)
		}
		profDone <- ""
	}

	tick := func(got int64) {
		mem, err := benchkit.ReadMemory(m.Pid())
		if err != nil {
			return
		}
		lag := r.backlog - got
		if r.mem.firstRSS == 0 {
			r.mem.firstRSS, r.mem.firstLag = mem.RSS, lag
		}
		if mem.RSS > r.mem.peakRSS {
			r.mem.peakRSS, r.mem.peakLag = mem.RSS, lag
		}
	}
	if err := awaitCopied(ctx, dstAdm, remote(o, srcTopic), start, o.copyTimeout, &r.mirror, tick); err != nil {
		return err
	}
	r.mirror.copierCPU = cpuOf(m.Pid())
	r.mirror.sourceCPU, r.mirror.targetCPU = cpuOf(src.Pid())-src0, cpuOf(dst.Pid())-dst0
	if mem, err := benchkit.ReadMemory(m.Pid()); err == nil {
		r.mem.hwm = mem.HWM
	}
	if m.Exited() {
		r.notef("the mirror exited during the backlog copy; its log:\n\n```\n%s\n```", benchkit.Tail(filepath.Join(o.OutDir, "mirrorbench-mirror.log"), 20))
		<-profDone
		return nil
	}
	if !r.mirror.finished {
		r.notef("mirror: copied %d of %d records within --copy-timeout %v", r.mirror.got, r.mirror.want, o.copyTimeout)
	}
	logf("mirror: %d records in %v (%.1f MB/s; first record after %v)", r.mirror.got,
		r.mirror.wall.Round(time.Millisecond), r.mirror.MBps(), r.mirror.firstAt.Round(time.Millisecond))
	if r.mirror.wall < time.Duration(o.ProfileSecs+1)*time.Second {
		r.notef("the copy took %v, less than the %d s profile (which started 1 s in): the profile's tail is the idle mirror", r.mirror.wall.Round(time.Second), o.ProfileSecs)
	}
	r.profile = <-profDone

	// LogAppendTime on the source: each record's time is counted from its
	// append there, without the paced producer's own batching and
	// queueing, which the source's produce latency shows separately. And
	// on the remote topic, made before the mirror sees the source topic
	// (it keeps an existing remote topic, and does not sync
	// message.timestamp.type, as MM2): the target's append time of each
	// copy ends the replication latency, source append → target ack in
	// the mirror issue's words, as the target's broker stamps it rather
	// than as the mirror reports it.
	if err := createTopic(ctx, dstAdm, remote(o, latTopic), o.Partitions, "message.timestamp.type", "LogAppendTime"); err != nil {
		return err
	}
	if err := createTopic(ctx, srcAdm, latTopic, o.Partitions, "message.timestamp.type", "LogAppendTime"); err != nil {
		return err
	}
	// Half of the maximum: of the highest rate the whole path sustains
	// with a producer on the source at the same time, not of the backlog
	// drain rate, which nothing else shared the CPUs with.
	drain := r.mirror.steadyMBps() * 1e6 / float64(o.RecordSize)
	r.latRate = drain / 2
	if o.latRate > 0 {
		r.latRate = o.latRate
	} else if drain >= 1 {
		// Bounded: its steps write 10–15 GB to each broker, and a whole
		// run without retention needed 41 GB of disk. 512 MiB a partition
		// is well above the mirror's lag during the steps (under 1.6 M
		// records over all eight), and the remote topic gets the same
		// settings through the mirror's config sync.
		if err := createTopic(ctx, srcAdm, liveTopic, o.Partitions, "retention.bytes", strconv.Itoa(512<<20), "segment.bytes", strconv.Itoa(128<<20)); err != nil {
			return err
		}
		// Each paced phase starts with nothing dirty in the page cache,
		// as the copies do: otherwise the kernel writes back what the
		// phase before it wrote (gigabytes by now) on the same two CPUs.
		syscall.Sync()
		logf("sustained maximum: pacing %s at falling fractions of %.0f records/s, %v each", liveTopic, drain, o.liveFor)
		r.sustain, err = measureSustained(ctx, p, []string{src.Addr}, []string{dst.Addr}, srcAdm, dstAdm, liveTopic, remote(o, liveTopic), drain, o.liveFor, o.sustainReader)
		if err != nil {
			r.notef("sustained maximum: %v", err)
		}
		if r.sustain.rate > 0 {
			r.latRate = r.sustain.rate / 2
		}
	}
	if r.latRate < 1 {
		r.notef("no latency phase: the mirror moved too little to pace at half its rate")
		return nil
	}
	syscall.Sync()
	logf("latency: %.0f records/s for %v through the mirror", r.latRate, o.Duration)
	r.latency, err = measureLatency(ctx, p, []string{src.Addr}, []string{dst.Addr}, latTopic, remote(o, latTopic), true, r.latRate, o.warmupAt(r.latRate), o.Duration,
		benchkit.Named{Name: "source broker", Pid: src.Pid()}, benchkit.Named{Name: "target broker", Pid: dst.Pid()},
		benchkit.Named{Name: "mirror", Pid: m.Pid()}, benchkit.Named{Name: "this bench process (paced producer, latency consumer)", Pid: os.Getpid()})
	if err != nil {
		r.notef("latency phase: %v", err)
	}
	if mem, err := benchkit.ReadMemory(m.Pid()); err == nil {
		r.mem.afterLatency = mem.RSS
	}
	return nil
}

// pipeLatency paces rate records/s through the pipe, in this process with
// the mirror stopped, and times them as the mirror's were: the baseline for
// the mirror's latency, on the same machine in the same run.
func pipeLatency(ctx context.Context, o options, src, dst *benchkit.Process, srcAdm, dstAdm *kadm.Client, p benchkit.Producer, rate float64) (latencyRun, error) {
	to := "pipe." + pipeLatTopic
	if err := createTopic(ctx, srcAdm, pipeLatTopic, o.Partitions, "message.timestamp.type", "LogAppendTime"); err != nil {
		return latencyRun{}, err
	}
	if err := createTopic(ctx, dstAdm, to, o.Partitions, "message.timestamp.type", "LogAppendTime"); err != nil {
		return latencyRun{}, err
	}
	pctx, cancel := context.WithCancel(ctx)
	piped := make(chan error, 1)
	go func() { piped <- pipe(pctx, []string{src.Addr}, []string{dst.Addr}, pipeLatTopic, to) }()
	logf("latency: %.0f records/s for %v through the pipe", rate, o.Duration)
	run, err := measureLatency(ctx, p, []string{src.Addr}, []string{dst.Addr}, pipeLatTopic, to, true, rate, o.warmupAt(rate), o.Duration,
		benchkit.Named{Name: "source broker", Pid: src.Pid()}, benchkit.Named{Name: "target broker", Pid: dst.Pid()},
		benchkit.Named{Name: "this bench process (pipe, paced producer, latency consumer)", Pid: os.Getpid()})
	cancel()
	if perr := <-piped; perr != nil && err == nil {
		err = perr
	}
	return run, err
}

// hopLatency paces rate records/s into the source and reads them back from
// the source, with nothing copying: what one broker, the paced producer and
// the latency consumer cost and take on this machine at that rate, without
// the second broker and the copier of the other phases.
func hopLatency(ctx context.Context, o options, src *benchkit.Process, srcAdm *kadm.Client, p benchkit.Producer, rate float64) (latencyRun, error) {
	if err := createTopic(ctx, srcAdm, hopTopic, o.Partitions, "message.timestamp.type", "LogAppendTime"); err != nil {
		return latencyRun{}, err
	}
	logf("latency: %.0f records/s for %v into and out of the source alone", rate, o.Duration)
	return measureLatency(ctx, p, []string{src.Addr}, []string{src.Addr}, hopTopic, hopTopic, false, rate, o.warmupAt(rate), o.Duration,
		benchkit.Named{Name: "source broker", Pid: src.Pid()},
		benchkit.Named{Name: "this bench process (paced producer, latency consumer)", Pid: os.Getpid()})
}

// profileMirror takes a CPU profile of the mirror from 1 s into the copy
// and returns its top functions, or "" (after logging why).
func profileMirror(ctx context.Context, metrics string, secs int, outDir string) string {
	select {
	case <-ctx.Done():
		return ""
	case <-time.After(time.Second):
	}
	path := filepath.Join(outDir, "mirrorbench-mirror-cpu.pprof")
	if err := benchkit.FetchCPUProfile(ctx, metrics, secs, path); err != nil {
		logf("mirror profile: %v", err)
		return ""
	}
	top, err := benchkit.PprofTop(ctx, path, 25)
	if err != nil {
		logf("mirror profile: %v", err)
		return ""
	}
	logf("mirror profile saved to %s", path)
	return top
}

// admin is an admin client of the cluster at addr, and its closer. Its
// metadata may be refreshed every 100 ms rather than every 5 s (kgo's
// default minimum age): ListEndOffsets routes by the client's cached
// metadata, and a target topic the copier has just created would read as
// empty until the next refresh.
func admin(addr string) (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// createTopic creates topic with partitions partitions, one replica and
// configs given as key, value pairs.
func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int, configs ...string) error {
	cfg := map[string]*string{}
	for i := 0; i+1 < len(configs); i += 2 {
		cfg[configs[i]] = kadm.StringPtr(configs[i+1])
	}
	res, err := adm.CreateTopic(ctx, int32(partitions), 1, cfg, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return fmt.Errorf("creating %s: %w", topic, err)
	}
	return nil
}

// checkFree refuses to start when dir's file system has less than minGB
// gigabytes free: a run that fills the disk stalls its brokers, and the
// bench waits out its timeouts before it reports anything.
func checkFree(dir string, minGB float64) error {
	if minGB <= 0 {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("checking free space under %s: %w", dir, err)
	}
	free := float64(int64(st.Bavail)*int64(st.Bsize)) / 1e9
	if free < minGB {
		return fmt.Errorf("%s has %.1f GB free, and a run needs about %.0f GB there for its brokers' data (--min-free-gb): "+
			"point TMPDIR at a larger disk, or pass --min-free-gb 0 to run anyway", dir, free, minGB)
	}
	return nil
}
