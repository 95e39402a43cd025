package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/internal/obs"
	"github.com/kdr-io/kdr/topology"
)

// Grace periods of a stop: mirror workers first, then brokers; whatever is
// still running afterwards is SIGKILLed.
const (
	WorkerStopGrace = 15 * time.Second
	BrokerStopGrace = 20 * time.Second
)

// Options configure Run.
type Options struct {
	// Topology to run (validated). Its local clusters' defaults are filled
	// in by Run.
	Topology *topology.Topology
	// StateDir holds everything kdr up keeps (see Layout). Required.
	StateDir string
	// Bin is the kdr binary the children run (default os.Executable()).
	Bin string
	// DemoProducer writes demo orders to the primary cluster once
	// everything is healthy.
	DemoProducer bool
	// Logger for kdr up's own messages (default: discard).
	Logger *slog.Logger
	// Out receives the endpoints once everything is healthy (default:
	// discard).
	Out io.Writer
	// Console shows progress while waiting (default: log lines only).
	Console *Console
	// PollInterval is how often health is checked while waiting (default
	// 250 ms).
	PollInterval time.Duration
	// Store is the failover coordination store the flow direction follows
	// (nil: store.Open(Topology, StateDir)).
	Store store.Store
	// MetricsListen is where /metrics (the failover state and the last
	// drill) and /healthz are served ("" serves none; the CLI's default
	// is DefaultMetricsListen).
	MetricsListen string
	// OnHealthy, when set, is called once everything is healthy (and
	// endpoints.json says so), before the endpoints are printed; ctx ends
	// on Ctrl-C. The endpoints it returns are printed with the others, and
	// stop, if not nil, is called first when kdr up stops, before the
	// mirror workers and brokers. kdr up --prometheus starts its
	// Prometheus here.
	OnHealthy func(ctx context.Context, e Endpoints) (extra []ExtraEndpoint, stop func())
}

// ExtraEndpoint is one more line of the endpoints kdr up prints: what
// (e.g. "prometheus") and where.
type ExtraEndpoint struct{ Name, URL string }

// DefaultMetricsListen is kdr up's --metrics-listen default.
const DefaultMetricsListen = "127.0.0.1:9600"

// runner is one kdr up run.
type runner struct {
	opts    Options
	topo    *topology.Topology
	layout  Layout
	logger  *slog.Logger
	console *Console

	mu        sync.Mutex // guards endpoints and its file
	endpoints *Endpoints

	brokers []*child
	slots   []*flowSlot    // the flows; their workers change with the failover state
	wg      sync.WaitGroup // supervision loops

	store      store.Store // nil when it cannot be opened
	view       failoverView
	version    uint64           // of the state read at start
	pattern    failover.Pattern // the failover pattern (if hasPattern)
	hasPattern bool
	metrics    *obs.HTTPServer
	stopExtra  func() // OnHealthy's stop, if any (set before ctx can end r.run)
}

// Run runs the topology's local clusters and flows until ctx ends, then
// stops everything (workers, then brokers) and returns nil. It returns an
// error only when it cannot start: bad options, a state dir it cannot
// create, or one locked by another kdr up (ErrLocked).
func Run(ctx context.Context, opts Options) error {
	if opts.Topology == nil {
		return errors.New("up: no topology")
	}
	if opts.StateDir == "" {
		return errors.New("up: no state dir")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Console == nil {
		opts.Console = NewConsole(io.Discard, false)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	if opts.Bin == "" {
		bin, err := os.Executable()
		if err != nil {
			return fmt.Errorf("up: finding the kdr binary (use --bin): %w", err)
		}
		opts.Bin = bin
	}
	r := &runner{opts: opts, topo: Normalize(opts.Topology), layout: Layout{Dir: opts.StateDir},
		logger: opts.Logger, console: opts.Console}
	r.console.setLogger(r.logger)
	if err := os.MkdirAll(r.layout.Logs(), 0o755); err != nil {
		return fmt.Errorf("up: state dir: %w", err)
	}
	lock, err := AcquireLock(r.layout.Lock())
	if err != nil {
		return err
	}
	defer lock.Release()
	r.openStore()
	if r.store != nil && opts.Store == nil {
		defer r.store.Close()
	}
	r.initialState(ctx)
	if err := r.plan(); err != nil {
		return err
	}
	if err := r.checkPorts(); err != nil {
		return err
	}
	r.logger.Info("kdr up starting", "topology", r.topo.Metadata.Name, "state_dir", r.layout.Dir,
		"brokers", len(r.brokers), "mirror_workers", len(r.workersNow()))
	r.serveMetrics()
	if r.metrics != nil {
		defer r.metrics.Close()
	}
	r.saveEndpoints()
	var follow sync.WaitGroup
	fctx, stopFollow := context.WithCancel(ctx)
	r.run(ctx, func() {
		follow.Add(1)
		go func() { defer follow.Done(); r.follow(fctx) }()
	})
	stopFollow()
	follow.Wait()
	r.stop()
	return nil
}

// openStore opens the coordination store, or logs why it cannot.
func (r *runner) openStore() {
	if p, err := failover.ActivePassive(r.topo, "", ""); err == nil {
		r.pattern, r.hasPattern = p, true
	}
	if r.opts.Store != nil {
		r.store = r.opts.Store
		return
	}
	if !r.hasPattern {
		return
	}
	s, err := store.Open(r.topo, r.layout.Dir)
	if err != nil {
		r.logger.Warn("no coordination store: the flow runs from the primary and failover state is not followed", "err", err)
		return
	}
	r.store = s
}

// plan builds the children and the endpoints they are recorded in.
func (r *runner) plan() error {
	e := &Endpoints{Topology: r.topo.Metadata.Name, File: r.topo.File, StateDir: r.layout.Dir,
		PID: os.Getpid(), Started: time.Now().UTC(), Running: true}
	for ci, c := range r.topo.Clusters {
		ce := ClusterEndpoints{Name: c.Name, Local: c.Local != nil, Bootstrap: c.BootstrapServers()}
		if c.Local != nil {
			for i := range c.Local.Brokers {
				id := i + 1
				kafka, _, metrics := c.Local.LocalPorts(i)
				data := r.layout.BrokerData(c, id)
				if err := os.MkdirAll(data, 0o755); err != nil {
					return fmt.Errorf("up: %w", err)
				}
				ce.Brokers = append(ce.Brokers, BrokerEndpoints{ID: id, Addr: hostPort(c.Local.Host, kafka),
					MetricsURL: "http://" + hostPort(c.Local.Host, metrics) + "/metrics", DataDir: data,
					Log: r.layout.BrokerLog(c.Name, id)})
				args := BrokerArgs(c, i, data)
				bi := len(ce.Brokers) - 1
				ch := newChild(fmt.Sprintf("%s broker %d", c.Name, id), r.opts.Bin,
					r.layout.BrokerLog(c.Name, id), func() []string { return args }, r.logger,
					func(pid int) { r.setPID(func(e *Endpoints) { e.Clusters[ci].Brokers[bi].PID = pid }) })
				ch.group = c.Name
				r.brokers = append(r.brokers, ch)
			}
		}
		e.Clusters = append(e.Clusters, ce)
	}
	r.endpoints = e
	st, _ := r.view.get()
	for fi, cf := range failover.CurrentFlows(r.topo, st) {
		slot := &flowSlot{fi: fi, spec: cf.Spec, running: cf.Running, dynamic: cf.Follows}
		e.Flows = append(e.Flows, FlowEndpoints{Name: slot.spec.Name(), Source: slot.spec.Flow.SourceAlias,
			Target: slot.spec.Flow.TargetAlias, Group: slot.spec.Flow.Group()})
		if slot.running {
			if err := r.newWorkersLocked(slot); err != nil {
				return err
			}
		}
		r.slots = append(r.slots, slot)
	}
	return nil
}

// checkPorts fails fast, naming the port, when something already listens
// where a local broker must.
func (r *runner) checkPorts() error {
	for _, c := range r.topo.Clusters {
		if c.Local == nil {
			continue
		}
		for i := range c.Local.Brokers {
			kafka, raft, metrics := c.Local.LocalPorts(i)
			for _, p := range []struct {
				what string
				port int
			}{{"Kafka", kafka}, {"raft", raft}, {"metrics", metrics}} {
				addr := hostPort(c.Local.Host, p.port)
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					return fmt.Errorf("up: cluster %s broker %d cannot listen for %s on %s (%v): another kdr up, Kafka or other program uses it; stop it, or run a topology file whose local clusters set another local.basePort (see topology/examples; the built-in demo has none to change)",
						c.Name, i+1, p.what, addr, err)
				}
				ln.Close()
			}
		}
	}
	return nil
}

func metricsURL(port int) string { return "http://" + hostPort("127.0.0.1", port) + "/metrics" }

// freePort is a loopback port nothing listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("up: no free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", hostPort("127.0.0.1", port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// setPID applies change to the endpoints and rewrites the file.
func (r *runner) setPID(change func(*Endpoints)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	change(r.endpoints)
	r.writeLocked()
}

func (r *runner) saveEndpoints() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writeLocked()
}

func (r *runner) writeLocked() {
	if err := r.endpoints.write(r.layout.Endpoints()); err != nil {
		r.logger.Warn("cannot write endpoints file", "path", r.layout.Endpoints(), "err", err)
	}
}

// start begins supervising children.
func (r *runner) start(children []*child) {
	for _, c := range children {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); c.run() }()
	}
}

// run starts brokers, waits for the clusters, starts the mirror workers,
// waits for them, starts the demo producer, prints the endpoints, and
// waits for ctx to end.
func (r *runner) run(ctx context.Context, workersStarted func()) {
	h := newHealth(r)
	defer h.close()
	r.start(r.brokers)
	if !h.wait(ctx, false) {
		return
	}
	// The demo producer starts before the workers so that its topic exists
	// when they look for topics to mirror.
	var prodWG sync.WaitGroup
	defer prodWG.Wait()
	var demo *demoProducer
	demoCluster := ""
	if r.opts.DemoProducer {
		if demo = r.demoProducer(); demo != nil {
			demoCluster = demo.cluster.Name
			prodWG.Add(1)
			go func() { defer prodWG.Done(); demo.run(ctx) }()
		}
	}
	r.start(r.workersNow())
	workersStarted()
	if !h.wait(ctx, true) {
		return
	}
	// Ready means the flows carry data, not only that the processes answer:
	// with the demo, wait until records it wrote in this run reach every
	// cluster the producer's cluster replicates to.
	if demo != nil && !h.waitMirrored(ctx, demoCluster, DemoTopic, demo.first) {
		return
	}
	r.console.Done()
	r.mu.Lock()
	r.endpoints.Healthy = true
	r.writeLocked()
	e := *r.endpoints
	r.mu.Unlock()
	var extra []ExtraEndpoint
	if r.opts.OnHealthy != nil {
		extra, r.stopExtra = r.opts.OnHealthy(ctx, e)
	}
	printEndpoints(r.opts.Out, &e, extra, r.layout)
	r.logger.Info("kdr up healthy", "topology", r.topo.Metadata.Name)
	<-ctx.Done()
}

// stop stops what OnHealthy started, the workers, then the brokers, and
// records that nothing runs.
func (r *runner) stop() {
	r.console.Done()
	if r.stopExtra != nil {
		r.stopExtra()
	}
	r.logger.Info("stopping: mirror workers first, then brokers (interrupt again to end at once)")
	stopAll(r.logger, "mirror workers", r.workersNow(), WorkerStopGrace)
	stopBrokers(r.logger, r.brokers, BrokerStopGrace)
	r.wg.Wait()
	r.mu.Lock()
	r.endpoints.Running = false
	r.writeLocked()
	r.mu.Unlock()
	r.logger.Info("kdr up stopped")
}

// demoProducer is the demo producer on the active cluster: the failover
// pattern's (following the state), else the first active-passive primary,
// else the first local cluster.
func (r *runner) demoProducer() *demoProducer {
	name := ""
	for _, p := range r.topo.Replication {
		if p.Type == topology.ActivePassive {
			name = p.Primary
			break
		}
	}
	if r.hasPattern {
		st, _ := r.view.get()
		name = failover.ActiveOf(r.pattern, st)
	}
	c := r.topo.ClusterByName(name)
	if c == nil {
		for i := range r.topo.Clusters {
			if r.topo.Clusters[i].Local != nil {
				c = &r.topo.Clusters[i]
				break
			}
		}
	}
	if c == nil {
		return nil
	}
	rf := 3
	if c.Local != nil {
		rf = min(3, c.Local.Brokers)
	}
	p := &demoProducer{cluster: *c, rf: rf, logger: r.logger, first: make(chan int64, 1)}
	if r.hasPattern && (c.Name == r.pattern.Primary || c.Name == r.pattern.Standby) {
		p.active = func() topology.Cluster {
			st, _ := r.view.get()
			if ac := r.topo.ClusterByName(failover.ActiveOf(r.pattern, st)); ac != nil {
				return *ac
			}
			return *c
		}
	}
	return p
}
