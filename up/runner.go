package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

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
}

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
	workers []*child
	wg      sync.WaitGroup // supervision loops
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
	if err := r.plan(); err != nil {
		return err
	}
	if err := r.checkPorts(); err != nil {
		return err
	}
	for _, c := range r.topo.Clusters {
		if c.Security.TLS.Enabled || c.Security.TLS.CAFile != "" || c.Security.SASL.Mechanism != "" {
			r.logger.Warn("cluster has TLS or SASL settings, which kdr mirror run does not take yet: flows to or from it may not connect",
				"cluster", c.Name)
		}
	}
	r.logger.Info("kdr up starting", "topology", r.topo.Metadata.Name, "state_dir", r.layout.Dir,
		"brokers", len(r.brokers), "mirror_workers", len(r.workers))
	r.saveEndpoints()
	r.run(ctx)
	r.stop()
	return nil
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
	for fi, spec := range r.topo.Flows() {
		f := spec.Flow
		fe := FlowEndpoints{Name: f.Name(), Source: f.SourceAlias, Target: f.TargetAlias, Group: f.Group()}
		for n := range max(spec.Workers, 1) {
			instance := f.SourceAlias + "-" + f.TargetAlias + "-" + strconv.Itoa(n)
			port, err := freePort()
			if err != nil {
				return err
			}
			fe.Workers = append(fe.Workers, WorkerEndpoints{InstanceID: instance,
				MetricsURL: metricsURL(port), Log: r.layout.WorkerLog(f.SourceAlias, f.TargetAlias, n)})
			args := func() []string {
				// Restarts keep the port unless something else took it.
				if !portFree(port) {
					if p, err := freePort(); err == nil {
						port = p
						r.setPID(func(e *Endpoints) { e.Flows[fi].Workers[n].MetricsURL = metricsURL(port) })
					}
				}
				return WorkerArgs(f, instance, hostPort("127.0.0.1", port))
			}
			ch := newChild(fmt.Sprintf("%s worker %d", f.Name(), n), r.opts.Bin,
				r.layout.WorkerLog(f.SourceAlias, f.TargetAlias, n), args, r.logger,
				func(pid int) { r.setPID(func(e *Endpoints) { e.Flows[fi].Workers[n].PID = pid }) })
			ch.group = f.Name()
			r.workers = append(r.workers, ch)
		}
		e.Flows = append(e.Flows, fe)
	}
	r.endpoints = e
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
					return fmt.Errorf("up: cluster %s broker %d cannot listen for %s on %s (%v): another kdr up, Kafka or other program uses it; stop it or change local.basePort",
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
func (r *runner) run(ctx context.Context) {
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
	if r.opts.DemoProducer {
		if demo = r.demoProducer(); demo != nil {
			prodWG.Add(1)
			go func() { defer prodWG.Done(); demo.run(ctx) }()
		}
	}
	r.start(r.workers)
	if !h.wait(ctx, true) {
		return
	}
	// Ready means the flows carry data, not only that the processes answer:
	// with the demo, wait until its records reach every cluster the
	// producer's cluster replicates to.
	if demo != nil && !h.waitMirrored(ctx, demo.cluster, DemoTopic) {
		return
	}
	r.console.Done()
	r.mu.Lock()
	r.endpoints.Healthy = true
	r.writeLocked()
	e := *r.endpoints
	r.mu.Unlock()
	printEndpoints(r.opts.Out, &e, r.layout)
	r.logger.Info("kdr up healthy", "topology", r.topo.Metadata.Name)
	<-ctx.Done()
}

// stop stops the workers, then the brokers, and records that nothing runs.
func (r *runner) stop() {
	r.console.Done()
	r.logger.Info("stopping: mirror workers first, then brokers")
	stopAll(r.logger, "mirror workers", r.workers, WorkerStopGrace)
	stopAll(r.logger, "brokers", r.brokers, BrokerStopGrace)
	r.wg.Wait()
	r.mu.Lock()
	r.endpoints.Running = false
	r.writeLocked()
	r.mu.Unlock()
	r.logger.Info("kdr up stopped")
}

// demoProducer is the demo producer on the primary cluster: the first
// active-passive primary, else the first local cluster.
func (r *runner) demoProducer() *demoProducer {
	name := ""
	for _, p := range r.topo.Replication {
		if p.Type == topology.ActivePassive {
			name = p.Primary
			break
		}
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
	return &demoProducer{cluster: c.Name, brokers: c.BootstrapServers(), rf: rf, logger: r.logger.With("cluster", c.Name)}
}
