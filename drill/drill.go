package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/failover/client"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/status"
	"github.com/kdr-io/kdr/topology"
	"github.com/kdr-io/kdr/up"
)

// Options configure Run.
type Options struct {
	// Scenario and the Topology it runs on (LoadScenario gives both).
	Scenario *Scenario
	Topology *topology.Topology
	// TopologyFile is the file kdr up runs ("" for the demo).
	TopologyFile string
	// StateDir is kdr up's state dir; "" makes a temporary one (kept, and
	// printed, so that logs can be read).
	StateDir string
	// ReportDir receives report.json and report.html (default
	// <StateDir>/report).
	ReportDir string
	// Bin is the kdr binary kdr up runs from (default os.Executable()).
	Bin string
	// Out receives the live progress lines (default: discard).
	Out io.Writer
	// Logger receives details (default: discard).
	Logger *slog.Logger
	// ProgressInterval is how often a load line is printed (default 5 s).
	ProgressInterval time.Duration
	// OffsetsTimeout bounds the consumer's wait for the orchestrator's
	// offset sync at a repoint (default 60 s).
	OffsetsTimeout time.Duration
}

// ErrVerifyFailed is wrapped by Run's error when the drill ran but a
// verify threshold or a step failed.
var ErrVerifyFailed = errors.New("drill: verification failed")

// runner is one drill run.
type runner struct {
	opts   Options
	sc     *Scenario
	topo   *topology.Topology
	out    io.Writer
	logger *slog.Logger
	start  time.Time

	env   *env
	store store.Store
	cl    *client.Client
	load  *loadGen

	mu           sync.Mutex
	outMu        sync.Mutex
	steps        []StepReport
	events       []Event
	samples      []Sample
	lag          int64 // last mirror lag sample, -1 unknown
	flowLag      map[string]int64
	failovers    []FailoverSummary
	repoints     []RepointReport
	seenSteps    map[string]bool // failover steps started, by name
	stepSeen     chan struct{}   // closed and replaced when seenSteps grows
	background   sync.WaitGroup
	bgErrs       []error
	promoted     *failover.Result // the last promote, for the unreplicated suffix
	unreplicated []string
	unreplSet    bool
}

// Run runs the scenario: kdr up, the workload, the steps, the checks. It
// writes the report and LastDrill, stops everything, and returns the
// report; the error wraps ErrVerifyFailed when the verdict is negative.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Scenario == nil || opts.Topology == nil {
		return nil, errors.New("drill: Options.Scenario and Options.Topology are required")
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 5 * time.Second
	}
	if opts.OffsetsTimeout <= 0 {
		opts.OffsetsTimeout = client.DefaultOffsetsTimeout
	}
	if opts.Bin == "" {
		bin, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("drill: finding the kdr binary: %w", err)
		}
		opts.Bin = bin
	}
	if opts.StateDir == "" {
		dir, err := os.MkdirTemp("", "kdr-drill-"+opts.Scenario.Name+"-")
		if err != nil {
			return nil, fmt.Errorf("drill: %w", err)
		}
		opts.StateDir = dir
	}
	if abs, err := filepath.Abs(opts.StateDir); err == nil {
		opts.StateDir = abs
	}
	if opts.TopologyFile != "" {
		if abs, err := filepath.Abs(opts.TopologyFile); err == nil {
			opts.TopologyFile = abs
		}
	}
	if opts.ReportDir == "" {
		opts.ReportDir = filepath.Join(opts.StateDir, "report")
	}
	topo := up.Normalize(opts.Topology)
	if err := checkFresh(ctx, topo, opts.StateDir); err != nil {
		return nil, err
	}
	r := &runner{opts: opts, sc: opts.Scenario, topo: topo, out: opts.Out, logger: opts.Logger,
		start: time.Now(), lag: -1, seenSteps: map[string]bool{}, stepSeen: make(chan struct{})}
	return r.run(ctx)
}

// checkFresh refuses a state dir, or a failover state, that a previous run
// left behind. A scenario's steps assume the topology as kdr up starts it
// fresh (its primary active, no failover yet, empty load topic): on a
// reused one a switchover finds the standby already active, or the audit
// meets the last run's records, and the drill fails only after its load
// has run for a while. The check runs before kdr up starts, so such a run
// fails at once.
//
// t is normalized (up.Normalize), as kdr up runs it.
func checkFresh(ctx context.Context, t *topology.Topology, dir string) error {
	fix := fmt.Sprintf("a drill needs a fresh state: use another --state-dir (or none, for a new temporary one) or delete %s", dir)
	if _, err := os.Stat(filepath.Join(dir, up.EndpointsFile)); err == nil {
		return fmt.Errorf("drill: state dir %s is not fresh: kdr up ran there before (%s); %s", dir, up.EndpointsFile, fix)
	}
	st, err := store.Open(t, dir)
	if err != nil {
		return nil // kdr up and the drill's own store.Open report it
	}
	defer st.Close()
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := st.Get(gctx)
	if err != nil || v.Version == 0 {
		return nil // an unreachable store fails the drill's first failover step, with its reason
	}
	return fmt.Errorf("drill: the failover state of topology %s is not fresh: %s is active at epoch %d, left by a previous run; %s",
		t.Metadata.Name, v.State.Active, v.State.Epoch, fix)
}

func (r *runner) printf(format string, args ...any) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(r.out, "[%7.1fs] ", time.Since(r.start).Seconds())
	fmt.Fprintf(r.out, format+"\n", args...)
}

func (r *runner) elapsed(t time.Time) float64 { return t.Sub(r.start).Seconds() }

func (r *runner) event(kind, label string) {
	r.mu.Lock()
	r.events = append(r.events, Event{T: r.elapsed(time.Now()), Kind: kind, Label: label})
	r.mu.Unlock()
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	r.printf("drill %s: %s", r.sc.Name, r.sc.Description)
	r.printf("state dir %s; starting kdr up %s", r.opts.StateDir, r.opts.TopologyFile)
	e, err := startEnv(ctx, r.opts.Bin, r.opts.StateDir, r.opts.TopologyFile, r.topo, r.logger)
	if err != nil {
		return nil, fmt.Errorf("drill: kdr up: %w", err)
	}
	r.env = e
	defer func() {
		r.printf("stopping kdr up")
		e.stop()
	}()
	r.printf("kdr up healthy")
	st, err := store.Open(r.topo, r.opts.StateDir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	r.store = st
	cl, err := client.New(ctx, client.Config{Topology: r.topo, Store: st, Logger: r.logger, ClientOpts: nil,
		OffsetsTimeout: r.opts.OffsetsTimeout, FlushTimeout: 5 * time.Second, CommitTimeout: 3 * time.Second,
		OnRepoint: r.onRepoint})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	r.cl = cl
	rf := int16(3)
	if c := r.topo.ClusterByName(cl.Active()); c != nil && c.Local != nil {
		rf = int16(min(3, c.Local.Brokers))
	}
	// The topic is created on the active cluster; the mirror copies it.
	// Without an active-passive pattern (active-active, hub-and-spoke)
	// clients may write to any cluster under the topic's own name, so it
	// is created everywhere.
	targets := []string{cl.Active()}
	if !hasActivePassive(r.topo) {
		targets = nil
		for _, c := range r.topo.Clusters {
			targets = append(targets, c.Name)
		}
	}
	for _, c := range targets {
		if err := createTopic(ctx, cl, c, r.sc.Load, rf); err != nil {
			return nil, err
		}
	}
	r.load = newLoadGen(r.sc.Load, cl, r.logger)
	sctx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Add(2)
	go func() { defer sampling.Done(); r.sample(sctx) }()
	go func() { defer sampling.Done(); r.sampleLag(sctx) }()

	failed := false
	var verify *Verify
	for i, s := range r.sc.Steps {
		if s.Action == ActVerify {
			v := s.Args.Verify
			verify = &v
		}
		if !r.runStep(ctx, i, s) {
			failed = true
			break
		}
	}
	rep := r.finish(ctx, verify, failed)
	stopSampling()
	sampling.Wait()
	rep.Timeline, rep.Events = r.samples, r.events
	if err := r.write(ctx, rep); err != nil {
		r.printf("writing the report: %v", err)
	}
	if !rep.Passed {
		return rep, fmt.Errorf("%w: %v", ErrVerifyFailed, rep.Failures)
	}
	return rep, nil
}

func (r *runner) onRepoint(p client.Repoint) {
	r.mu.Lock()
	r.repoints = append(r.repoints, RepointReport{Role: p.Role, From: p.From, To: p.To, At: r.elapsed(p.Started),
		Seconds: p.Duration.Seconds(), OffsetsTimedOut: p.OffsetsTimedOut})
	r.mu.Unlock()
	r.event("repoint", fmt.Sprintf("%s → %s (%s)", p.Role, p.To, p.Duration.Round(time.Millisecond)))
	r.printf("  %s repointed %s → %s in %s", p.Role, p.From, p.To, p.Duration.Round(time.Millisecond))
}

// sample records the timeline every second and prints a load line every
// ProgressInterval.
func (r *runner) sample(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastPrint := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c := r.load.counts()
			r.mu.Lock()
			s := Sample{T: r.elapsed(now), Produced: c.Produced, Acked: c.Acked, Failed: c.Failed, Consumed: c.Consumed,
				Errors: c.Errors, Lag: r.lag, Active: r.cl.Active()}
			r.samples = append(r.samples, s)
			r.mu.Unlock()
			if now.Sub(lastPrint) >= r.opts.ProgressInterval {
				lastPrint = now
				lag := "?"
				if s.Lag >= 0 {
					lag = fmt.Sprint(s.Lag)
				}
				r.printf("  produced=%d acked=%d failed=%d consumed=%d mirror_lag=%s active=%s", s.Produced, s.Acked, s.Failed, s.Consumed, lag, s.Active)
			}
		}
	}
}

// sampleLag measures the mirror lag of the load topic every 2 s.
func (r *runner) sampleLag(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		flows := r.flowLags(ctx, "")
		var total int64 = -1
		for _, l := range flows {
			if l >= 0 {
				total = max(total, 0) + l
			}
		}
		r.mu.Lock()
		r.lag, r.flowLag = total, flows
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// flowLags is the load topic's lag of every flow kdr up runs now (out of
// source only, unless ""), by flow name; -1 where it could not be read.
func (r *runner) flowLags(ctx context.Context, source string) map[string]int64 {
	out := map[string]int64{}
	ep, err := r.env.endpoints()
	if err != nil {
		return out
	}
	for _, f := range ep.Flows {
		if source != "" && f.Source != source {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		l, err := r.topicLag(lctx, f.Source, f.Group)
		cancel()
		if err != nil {
			r.logger.Debug("drill: flow lag", "flow", f.Name, "err", err)
			l = -1
		}
		out[f.Name] = l
	}
	return out
}

// topicLag is the load topic's end offsets minus the group's commits (or
// the log start) on cluster.
func (r *runner) topicLag(ctx context.Context, cluster, group string) (int64, error) {
	k, err := r.cl.KafkaClient(cluster, clientOpts()...)
	if err != nil {
		return -1, err
	}
	defer func() { go k.Close() }()
	adm := kadm.NewClient(k)
	lag, err := status.FlowLag(ctx, adm, group, []string{r.sc.Load.Topic})
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return 0, nil // nothing to copy from this source
	}
	if err != nil {
		return -1, err
	}
	return lag, nil
}

// catchUp is a lag-zero wait: it is met when every flow kdr up runs has
// committed past the load topic's end offsets on its source as they were
// when the flow was first seen by the wait, and the consumer has every
// record the active cluster acknowledged before the wait began. Under load
// that is "caught up with the wait's start"; after stop-load, lag zero.
type catchUp struct {
	r        *runner
	produced int // records produced when the wait began
	ends     map[string]map[int32]int64
}

func (r *runner) newCatchUp() *catchUp {
	return &catchUp{r: r, produced: int(r.load.counts().Produced), ends: map[string]map[int32]int64{}}
}

func (c *catchUp) check(ctx context.Context) (bool, string) {
	r := c.r
	if ok, why := r.load.caughtUpBefore(r.cl.Active(), c.produced); !ok {
		return false, why
	}
	ep, err := r.env.endpoints()
	if err != nil {
		return false, err.Error()
	}
	for _, f := range ep.Flows {
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ok, why := c.flowDone(lctx, f.Name, f.Source, f.Group)
		cancel()
		if !ok {
			return false, why
		}
	}
	return true, ""
}

func (c *catchUp) flowDone(ctx context.Context, name, source, group string) (bool, string) {
	k, err := c.r.cl.KafkaClient(source, clientOpts()...)
	if err != nil {
		return false, err.Error()
	}
	defer func() { go k.Close() }()
	adm := kadm.NewClient(k)
	topic := c.r.sc.Load.Topic
	if c.ends[name] == nil {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			c.ends[name] = map[int32]int64{}
		} else if err != nil {
			return false, fmt.Sprintf("flow %s: end offsets on %s: %v", name, source, err)
		} else {
			c.ends[name] = map[int32]int64{}
			ends.Each(func(o kadm.ListedOffset) { c.ends[name][o.Partition] = o.Offset })
		}
	}
	want := c.ends[name]
	if len(want) == 0 {
		return true, ""
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false, fmt.Sprintf("flow %s: offsets of %s on %s: %v", name, group, source, err)
	}
	var behind int64
	for p, end := range want {
		at := int64(0)
		if o, ok := committed.Lookup(topic, p); ok && o.Err == nil && o.At >= 0 {
			at = o.At
		}
		behind += max(0, end-at)
	}
	if behind > 0 {
		return false, fmt.Sprintf("flow %s is %d records behind", name, behind)
	}
	return true, ""
}

// writeJSON writes v to path atomically enough for a report.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func hasActivePassive(t *topology.Topology) bool {
	for _, p := range t.Replication {
		if p.Type == topology.ActivePassive {
			return true
		}
	}
	return false
}
