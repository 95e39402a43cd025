package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// startTimeout bounds how long a broker or the mirror may take to print
// its first line.
const startTimeout = 30 * time.Second

// startBroker runs a single-broker kdr cluster on a fresh data dir, its
// stderr in logPath. Group rebalances start at once: the mirror joins a
// group and the pipe does not, and the broker's default 3 s wait for more
// members would be charged to the mirror alone.
func startBroker(bin, dataDir, logPath string) (*benchkit.Process, error) {
	logs, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p, err := benchkit.Start(bin, []string{"broker",
		"--data-dir", dataDir, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--node-id", "1", "--group-initial-rebalance-delay-ms", "0", "--log-level", "warn"}, logs)
	if err != nil {
		return nil, fmt.Errorf("starting broker: %w", err)
	}
	if err := p.AwaitAddress(startTimeout); err != nil {
		stop(p)
		return nil, fmt.Errorf("broker printed %v; its log:\n%s", err, benchkit.Tail(logPath, 20))
	}
	return p, nil
}

// stop sends SIGTERM, waits up to 15 s for a clean exit, then SIGKILLs.
func stop(p interface {
	Terminate(time.Duration) bool
	Kill()
}) {
	if !p.Terminate(15 * time.Second) {
		p.Kill()
	}
}

// mirrorLineRe takes the metrics address from the mirror's first stdout
// line, "kdr mirror src->dst running (metrics on http://HOST:PORT/metrics)".
// benchkit.Process reads only brokers' lines ("listening on ...").
var mirrorLineRe = regexp.MustCompile(`^kdr mirror \S+ running \(metrics on http://([^/\s]+)/metrics\)`)

// mirrorProc is `kdr mirror run` as a child process.
type mirrorProc struct {
	Metrics string // metrics host:port
	cmd     *exec.Cmd
	done    chan struct{}
}

// startMirror runs `bin mirror run args...` with its stderr in logPath and
// waits for the line that says it is running.
func startMirror(bin string, args []string, logPath string) (*mirrorProc, error) {
	logs, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"mirror", "run"}, args...)...)
	cmd.Stderr = logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		logs.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logs.Close()
		return nil, fmt.Errorf("starting mirror: %w", err)
	}
	m := &mirrorProc{cmd: cmd, done: make(chan struct{})}
	first := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		first <- line
		io.Copy(io.Discard, r)
		cmd.Wait()
		logs.Close()
		close(m.done)
	}()
	var line string
	select {
	case line = <-first:
	case <-time.After(startTimeout):
	}
	sub := mirrorLineRe.FindStringSubmatch(line)
	if sub == nil {
		m.Kill()
		return nil, fmt.Errorf("mirror printed %q, not its running line; its log:\n%s",
			strings.TrimSpace(line), benchkit.Tail(logPath, 20))
	}
	m.Metrics = sub[1]
	return m, nil
}

// Pid is the mirror's process id.
func (m *mirrorProc) Pid() int { return m.cmd.Process.Pid }

// Exited reports whether the mirror has ended.
func (m *mirrorProc) Exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// Terminate sends SIGTERM and reports whether the mirror exited within
// timeout.
func (m *mirrorProc) Terminate(timeout time.Duration) bool {
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Kill SIGKILLs the mirror and waits until it has been reaped.
func (m *mirrorProc) Kill() {
	m.cmd.Process.Kill()
	<-m.done
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat.
const userHZ = 100

// procCPU is pid's user+system CPU time so far, from /proc/<pid>/stat
// (fields 14 and 15, counted after the parenthesised command name, which
// may itself hold spaces).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndex(string(b), ") ")
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[i+2:])) // fields[0] is field 3, the state
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ticks uint64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
