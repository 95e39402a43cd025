package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kdr-io/kdr/status"
	"github.com/kdr-io/kdr/topology"
	"github.com/kdr-io/kdr/up"
)

// Timeouts of the environment.
const (
	upHealthyTimeout = 3 * time.Minute
	upStopGrace      = 60 * time.Second
	holdInterval     = 50 * time.Millisecond
	// restartTimeout bounds waiting for a killed cluster or worker to be
	// back: kdr up's supervisor backs off up to 30 s between restarts.
	restartTimeout = 2 * time.Minute
)

// ErrNotSupported is wrapped when an action cannot be done on the topology.
var ErrNotSupported = errors.New("drill: not supported for this topology")

// env is the running estate: a `kdr up` child process on the state dir,
// and the faults the drill holds on its children. Faults are signals to
// the pids endpoints.json lists; a fault that must last (a killed or
// isolated cluster, a cut link) is held: a loop re-applies it to every
// process kdr up's supervisor starts in place of one it hit.
type env struct {
	bin, stateDir, file string
	topo                *topology.Topology
	logger              *slog.Logger

	cmd    *exec.Cmd
	exited chan struct{}
	logf   *os.File

	mu       sync.Mutex
	holds    map[string]*hold
	stopped  map[int]bool // pids we sent SIGSTOP and not SIGCONT
	holdStop chan struct{}
	holdDone chan struct{}
}

// hold is a fault re-applied to matching pids.
type hold struct {
	sig  syscall.Signal
	pids func(*up.Endpoints) []int
	hit  map[int]bool
}

// startEnv runs `kdr up [file] --state-dir dir` and waits until it reports
// healthy.
func startEnv(ctx context.Context, bin, dir, file string, t *topology.Topology, logger *slog.Logger) (*env, error) {
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("drill: state dir: %w", err)
	}
	// A stale endpoints file must not read as ours.
	os.Remove(filepath.Join(dir, up.EndpointsFile))
	logPath := filepath.Join(dir, "logs", "drill-kdr-up.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("drill: %w", err)
	}
	args := []string{"up", "--state-dir", dir}
	if file != "" {
		args = append(args, file)
	} else {
		args = append(args, "--no-demo-producer")
	}
	e := &env{bin: bin, stateDir: dir, file: file, topo: up.Normalize(t), logger: logger, logf: logf,
		exited: make(chan struct{}), holds: map[string]*hold{}, stopped: map[int]bool{},
		holdStop: make(chan struct{}), holdDone: make(chan struct{})}
	e.cmd = exec.Command(bin, args...)
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	e.cmd.SysProcAttr = childAttr()
	if err := e.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("drill: starting %s %s: %w", bin, strings.Join(args, " "), err)
	}
	logger.Info("drill: kdr up started", "pid", e.cmd.Process.Pid, "state_dir", dir, "log", logPath)
	go func() { e.cmd.Wait(); close(e.exited) }()
	go e.holdLoop()
	if err := e.waitHealthy(ctx); err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

// endpoints reads endpoints.json if it is our kdr up's.
func (e *env) endpoints() (*up.Endpoints, error) {
	ep, err := up.ReadEndpoints(filepath.Join(e.stateDir, up.EndpointsFile))
	if err != nil {
		return nil, err
	}
	if ep.PID != e.cmd.Process.Pid {
		return nil, fmt.Errorf("drill: %s belongs to pid %d, not our kdr up (%d)", up.EndpointsFile, ep.PID, e.cmd.Process.Pid)
	}
	return ep, nil
}

func (e *env) waitHealthy(ctx context.Context) error {
	return pollUntil(ctx, upHealthyTimeout, 100*time.Millisecond, func() (bool, string) {
		select {
		case <-e.exited:
			return false, "kdr up exited; see " + e.logf.Name()
		default:
		}
		ep, err := e.endpoints()
		if err != nil {
			return false, err.Error()
		}
		return ep.Healthy, "kdr up is not healthy yet"
	}, e.exited)
}

// pollUntil checks cond every interval until it holds, timeout passes, ctx
// ends or abort closes.
func pollUntil(ctx context.Context, timeout, interval time.Duration, cond func() (bool, string), abort <-chan struct{}) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", why, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("not within %s: %s", timeout, why)
		case <-abort:
			ok, why = cond()
			if ok {
				return nil
			}
			return errors.New(why)
		case <-tick.C:
		}
	}
}

// signal sends sig to pid, remembering stopped processes.
func (e *env) signal(pid int, sig syscall.Signal) {
	if pid <= 0 {
		return
	}
	if err := syscall.Kill(pid, sig); err != nil {
		e.logger.Debug("drill: signal", "pid", pid, "signal", sig, "err", err)
		return
	}
	if sig == syscall.SIGSTOP {
		e.stopped[pid] = true
	}
	if sig == syscall.SIGCONT || sig == syscall.SIGKILL {
		delete(e.stopped, pid)
	}
}

func (e *env) holdLoop() {
	defer close(e.holdDone)
	t := time.NewTicker(holdInterval)
	defer t.Stop()
	for {
		select {
		case <-e.holdStop:
			return
		case <-t.C:
		}
		e.mu.Lock()
		if len(e.holds) > 0 {
			if ep, err := e.endpoints(); err == nil {
				e.applyLocked(ep)
			}
		}
		e.mu.Unlock()
	}
}

func (e *env) applyLocked(ep *up.Endpoints) {
	for _, h := range e.holds {
		for _, pid := range h.pids(ep) {
			if !h.hit[pid] {
				h.hit[pid] = true
				e.signal(pid, h.sig)
			}
		}
	}
}

// setHold starts holding a fault (applied at once) under key.
func (e *env) setHold(key string, sig syscall.Signal, pids func(*up.Endpoints) []int) error {
	ep, err := e.endpoints()
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.holds[key] = &hold{sig: sig, pids: pids, hit: map[int]bool{}}
	e.applyLocked(ep)
	return nil
}

// releaseHold stops holding key's fault; stopped processes are continued.
func (e *env) releaseHold(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	h, ok := e.holds[key]
	if !ok {
		return false
	}
	delete(e.holds, key)
	if h.sig == syscall.SIGSTOP {
		for pid := range h.hit {
			if e.stopped[pid] {
				e.signal(pid, syscall.SIGCONT)
			}
		}
	}
	return true
}

func brokerPIDs(cluster string, id int) func(*up.Endpoints) []int {
	return func(ep *up.Endpoints) []int {
		var out []int
		for _, c := range ep.Clusters {
			if c.Name != cluster {
				continue
			}
			for _, b := range c.Brokers {
				if (id == 0 || b.ID == id) && b.PID > 0 {
					out = append(out, b.PID)
				}
			}
		}
		return out
	}
}

func flowPIDs(match func(up.FlowEndpoints) bool) func(*up.Endpoints) []int {
	return func(ep *up.Endpoints) []int {
		var out []int
		for _, f := range ep.Flows {
			if !match(f) {
				continue
			}
			for _, w := range f.Workers {
				if w.PID > 0 {
					out = append(out, w.PID)
				}
			}
		}
		return out
	}
}

func flowNamed(name string) func(up.FlowEndpoints) bool {
	return func(f up.FlowEndpoints) bool { return name == "" || f.Name == name }
}

func flowBetween(a, b string) func(up.FlowEndpoints) bool {
	return func(f up.FlowEndpoints) bool {
		return (f.Source == a && f.Target == b) || (f.Source == b && f.Target == a)
	}
}

// killBroker SIGKILLs one broker; kdr up restarts it.
func (e *env) killBroker(cluster string, id int) error {
	ep, err := e.endpoints()
	if err != nil {
		return err
	}
	pids := brokerPIDs(cluster, id)(ep)
	if len(pids) == 0 {
		return fmt.Errorf("cluster %s broker %d is not running", cluster, id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, pid := range pids {
		e.signal(pid, syscall.SIGKILL)
	}
	return nil
}

// killMirror SIGKILLs a flow's workers (every flow's when flow is "").
func (e *env) killMirror(flow string) error {
	ep, err := e.endpoints()
	if err != nil {
		return err
	}
	pids := flowPIDs(flowNamed(flow))(ep)
	if len(pids) == 0 {
		return fmt.Errorf("no running mirror worker of flow %q", flow)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, pid := range pids {
		e.signal(pid, syscall.SIGKILL)
	}
	return nil
}

// waitMirror waits until every worker of the flow (of every flow when "")
// runs and answers /healthz.
func (e *env) waitMirror(ctx context.Context, flow string) error {
	hc := &http.Client{Timeout: time.Second}
	return pollUntil(ctx, restartTimeout, 200*time.Millisecond, func() (bool, string) {
		ep, err := e.endpoints()
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, f := range ep.Flows {
			if !flowNamed(flow)(f) {
				continue
			}
			for _, w := range f.Workers {
				n++
				if w.PID == 0 {
					return false, fmt.Sprintf("worker %s is not running", w.InstanceID)
				}
				resp, err := hc.Get(strings.TrimSuffix(w.MetricsURL, "/metrics") + "/healthz")
				if err != nil {
					return false, fmt.Sprintf("worker %s: %v", w.InstanceID, err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return false, fmt.Sprintf("worker %s: /healthz %s", w.InstanceID, resp.Status)
				}
			}
		}
		return n > 0, fmt.Sprintf("no worker of flow %q", flow)
	}, e.exited)
}

// waitHealthyCluster waits until status reports the cluster healthy (every
// broker in metadata, a controller, no offline partition).
func (e *env) waitHealthyCluster(ctx context.Context, names ...string) error {
	return pollUntil(ctx, restartTimeout, 250*time.Millisecond, func() (bool, string) {
		r := status.Gather(ctx, e.topo, status.Options{Timeout: 2 * time.Second})
		for _, c := range r.Clusters {
			if len(names) > 0 && !slices.Contains(names, c.Name) {
				continue
			}
			if !c.Healthy {
				why := fmt.Sprintf("cluster %s: %d/%d brokers", c.Name, c.BrokersUp(), c.BrokersExpected)
				if c.Error != "" {
					why += ": " + c.Error
				}
				return false, why
			}
		}
		return true, ""
	}, e.exited)
}

// stop continues every process the drill stopped, releases the holds and
// stops kdr up (SIGTERM, then SIGKILL after upStopGrace).
func (e *env) stop() {
	close(e.holdStop)
	<-e.holdDone
	e.mu.Lock()
	e.holds = map[string]*hold{}
	for pid := range e.stopped {
		e.signal(pid, syscall.SIGCONT)
	}
	e.mu.Unlock()
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(upStopGrace):
		e.logger.Warn("drill: kdr up did not stop in time; killing it", "grace", upStopGrace)
		e.cmd.Process.Kill()
		<-e.exited
	}
	e.logf.Close()
}
