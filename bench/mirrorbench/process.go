package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// startTimeout bounds how long a broker or the mirror may take to print
// its first line.
const startTimeout = 30 * time.Second

// startBroker runs a single-broker kdr cluster on a fresh data dir, its
// stderr in logPath. Group rebalances start at once: the mirror joins a
// group and the pipe does not, and the broker's default 3 s wait for more
// members would be charged to the mirror alone. Retention runs every 5 s,
// so that the sustained maximum's topic stays within its retention.bytes.
// dropBehind is the broker's --log-drop-behind-bytes; it listens on listen
// and advertises advertise ("": the listen address).
func startBroker(bin, dataDir, logPath string, dropBehind int64, listen, advertise string) (*benchkit.Process, error) {
	logs, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := []string{"broker",
		"--data-dir", dataDir, "--listen", listen, "--metrics-listen", "127.0.0.1:0",
		"--node-id", "1", "--group-initial-rebalance-delay-ms", "0", "--log-level", "warn",
		"--log-retention-check-interval-ms", "5000",
		"--log-drop-behind-bytes", strconv.FormatInt(dropBehind, 10)}
	if advertise != "" {
		args = append(args, "--advertised-listen", advertise)
	}
	p, err := benchkit.Start(bin, args, logs)
	if err != nil {
		return nil, fmt.Errorf("starting broker: %w", err)
	}
	if err := p.AwaitAddress(startTimeout); err != nil {
		stop(p)
		return nil, fmt.Errorf("broker printed %v; its log:\n%s", err, benchkit.Tail(logPath, 20))
	}
	return p, nil
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// stop sends SIGTERM, waits up to 15 s for a clean exit, then SIGKILLs.
func stop(p *benchkit.Process) {
	if !p.Terminate(15 * time.Second) {
		p.Kill()
	}
}

// startMirror runs `bin mirror run args...` with its stderr in logPath and
// waits for the line that says it is running, "kdr mirror src->dst running
// (metrics on http://HOST:PORT/metrics)".
func startMirror(bin string, args []string, logPath string) (*benchkit.Process, error) {
	logs, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	m, err := benchkit.Start(bin, append([]string{"mirror", "run"}, args...), logs)
	if err != nil {
		return nil, fmt.Errorf("starting mirror: %w", err)
	}
	if err := m.AwaitAddress(startTimeout); err != nil || m.Metrics == "" {
		m.Kill()
		if err == nil {
			err = fmt.Errorf("no metrics address")
		}
		return nil, fmt.Errorf("mirror printed %v, not its running line; its log:\n%s", err, benchkit.Tail(logPath, 20))
	}
	return m, nil
}

// cpuOf is pid's CPU time so far, or 0 if it cannot be read (the process
// is gone), which the report's figures then show.
func cpuOf(pid int) time.Duration {
	d, err := benchkit.ProcessCPU(pid)
	if err != nil {
		logf("CPU of pid %d: %v", pid, err)
	}
	return d
}
