// Package consultest runs a real Consul agent (the binary scripts/consul.sh
// builds from tools/consul) for tests: a single server on 127.0.0.1 with
// free ports and its data in the test's temporary directory, which can be
// stopped, killed and restarted with its state intact.
//
// It is not started in -dev mode: a dev agent keeps its state in memory and
// forgets it on restart. Instead it runs `-server -bootstrap-expect 1` with
// a data dir and raft_multiplier 1, which elects itself leader in about a
// second and keeps KV, sessions and services across restarts.
//
// Tests that need Consul skip unless KDR_CONSUL_BIN names the binary;
// `make test` always sets it. The package depends on TB, not on testing.
package consultest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// EnvBin is the environment variable naming the Consul binary.
const EnvBin = "KDR_CONSUL_BIN"

// SkipMessage is what tests skip with when EnvBin is unset.
const SkipMessage = "set KDR_CONSUL_BIN (make test builds it: scripts/consul.sh)"

// Timeouts of the harness.
const (
	// StartTimeout bounds an agent's start until it is ready.
	StartTimeout = 60 * time.Second
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout = 15 * time.Second
)

// TB is the part of testing.TB the harness uses.
type TB interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
	Skip(args ...any)
}

// Agent is a Consul server agent running as a child process.
type Agent struct {
	t       TB
	bin     string
	dataDir string
	logPath string
	ports   ports

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

type ports struct{ http, serfLAN, serfWAN, server int }

// Start runs an agent and waits until it is ready: leader elected, own node
// registered. It skips the test if KDR_CONSUL_BIN is unset and fails it if
// the agent does not come up within StartTimeout. The agent is killed at
// cleanup; its log is printed if the test failed.
func Start(t TB) *Agent {
	t.Helper()
	bin := os.Getenv(EnvBin)
	if bin == "" {
		t.Skip(SkipMessage)
		return nil
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("consultest: %s=%s: %v (run scripts/consul.sh to build it)", EnvBin, bin, err)
	}
	dir := t.TempDir()
	a := &Agent{t: t, bin: bin, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "consul.log")}
	t.Cleanup(func() {
		a.Kill()
		if t.Failed() {
			t.Logf("consultest: log of the consul agent at %s:\n%s", a.Addr(), a.Logs())
		}
	})
	// Free ports can be taken between picking and binding (other test
	// binaries run in parallel); pick again when that happens.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if a.ports, err = pickPorts(); err != nil {
			t.Fatalf("consultest: %v", err)
		}
		if err = a.start(); err == nil {
			return a
		}
		if !strings.Contains(a.Logs(), "address already in use") {
			break
		}
		// The next attempt has other ports, hence another node name.
		if err := os.RemoveAll(a.dataDir); err != nil {
			t.Fatalf("consultest: %v", err)
		}
	}
	t.Fatalf("consultest: %v (the agent's log follows)", err)
	return nil
}

// Addr is the agent's HTTP API address, host:port.
func (a *Agent) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.ports.http)) }

// DataDir is the agent's data directory; it survives Stop, Kill and Restart.
func (a *Agent) DataDir() string { return a.dataDir }

// Logs returns everything the agent has logged, over all its runs.
func (a *Agent) Logs() string {
	b, _ := os.ReadFile(a.logPath)
	return string(b)
}

// Running reports whether the agent process is alive.
func (a *Agent) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return false
	}
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// Stop shuts the agent down with SIGTERM (without leaving the cluster, so
// that a restart finds itself the only server again) and waits for it to
// exit, killing it after StopTimeout.
func (a *Agent) Stop() { a.halt(syscall.SIGTERM, StopTimeout) }

// Kill kills the agent with SIGKILL and waits for it to exit.
func (a *Agent) Kill() { a.halt(syscall.SIGKILL, 0) }

// Restart stops the agent if it runs and starts it again on the same ports
// and data dir, then waits until it is ready again.
func (a *Agent) Restart() {
	a.t.Helper()
	a.Stop()
	if err := a.start(); err != nil {
		a.t.Fatalf("consultest: restart: %v (the agent's log follows)", err)
	}
}

func (a *Agent) halt(sig syscall.Signal, grace time.Duration) {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-done
}

func (a *Agent) node() string { return "kdr-test-" + strconv.Itoa(a.ports.http) }

func (a *Agent) args() []string {
	return []string{"agent",
		"-server", "-bootstrap-expect=1",
		"-node=" + a.node(),
		"-data-dir=" + a.dataDir,
		"-bind=127.0.0.1", "-advertise=127.0.0.1", "-client=127.0.0.1",
		"-http-port=" + strconv.Itoa(a.ports.http),
		"-serf-lan-port=" + strconv.Itoa(a.ports.serfLAN),
		"-serf-wan-port=" + strconv.Itoa(a.ports.serfWAN),
		"-server-port=" + strconv.Itoa(a.ports.server),
		"-grpc-port=-1", "-grpc-tls-port=-1", "-dns-port=-1",
		"-log-level=debug",
		// Raft timings of a dev agent: elect a leader in about a second.
		"-hcl=performance { raft_multiplier = 1 }",
		"-hcl=leave_on_terminate = false",
	}
}

// start runs the agent and waits until it is ready.
func (a *Agent) start() error {
	logs, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logs.Close() // the child has its own descriptor
	fmt.Fprintf(logs, "==> consultest: %s %s\n", a.bin, strings.Join(a.args(), " "))
	cmd := exec.Command(a.bin, a.args()...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", a.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	a.mu.Lock()
	a.cmd, a.done = cmd, done
	a.mu.Unlock()

	if err := waitForReady(a.Addr(), a.node(), done, StartTimeout); err != nil {
		a.Kill()
		return err
	}
	return nil
}

// waitForReady polls until the agent is usable: /v1/status/leader names a
// leader and the agent's own node is registered with a passing serfHealth
// check (before that, creating a session fails with "Missing node
// registration"). It gives up when the process exits or timeout passes.
func waitForReady(addr, node string, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	last := "no answer yet"
	for {
		var leader string
		var checks []struct{ CheckID, Status string }
		err := getJSON(ctx, client, addr, "/v1/status/leader", &leader)
		if err == nil && leader != "" {
			err = getJSON(ctx, client, addr, "/v1/health/node/"+node, &checks)
		}
		switch {
		case err != nil:
			last = err.Error()
		case leader == "":
			last = "no leader yet"
		default:
			last = "node " + node + " not registered with a passing serfHealth check yet"
			for _, c := range checks {
				if c.CheckID == "serfHealth" && c.Status == "passing" {
					return nil
				}
			}
		}
		select {
		case <-exited:
			return errors.New("consul agent exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("consul agent at %s not ready within %s: %s", addr, timeout, last)
		case <-ticker.C:
		}
	}
}

func getJSON(ctx context.Context, client *http.Client, addr, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	return json.Unmarshal(body, v)
}

// pickPorts finds four distinct free loopback ports; the serf ports are
// free for both TCP and UDP.
//
// They are drawn at random from below the kernel's ephemeral range: a port
// the kernel hands out for ":0" or as a connection's source port could be
// taken by another process while the agent is down for a Restart, and the
// agent must come back on the same ports.
func pickPorts() (ports, error) {
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	lo, hi := portRange()
	try := func(port int, udp bool) (int, bool) {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return 0, false
		}
		held = append(held, l)
		port = l.Addr().(*net.TCPAddr).Port
		if udp {
			u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				return 0, false
			}
			held = append(held, u)
		}
		return port, true
	}
	pick := func(udp bool) (int, error) {
		for range 100 {
			if port, ok := try(lo+rand.IntN(hi-lo), udp); ok {
				return port, nil
			}
		}
		for range 20 { // the range is crowded: let the kernel choose
			if port, ok := try(0, udp); ok {
				return port, nil
			}
		}
		return 0, errors.New("no free loopback port (with UDP for serf)")
	}
	var p ports
	var err error
	for _, dst := range []struct {
		port *int
		udp  bool
	}{{&p.http, false}, {&p.serfLAN, true}, {&p.serfWAN, true}, {&p.server, false}} {
		if *dst.port, err = pick(dst.udp); err != nil {
			return p, err
		}
	}
	return p, nil
}

// portRange is where pickPorts draws from: [20000, start of the ephemeral
// range), or [20000, 32768) if the range cannot be read or leaves too little.
func portRange() (lo, hi int) {
	lo, hi = 20000, 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	if f := strings.Fields(string(b)); len(f) == 2 {
		if start, err := strconv.Atoi(f[0]); err == nil && start-lo >= 2000 {
			hi = start
		}
	}
	return lo, hi
}
