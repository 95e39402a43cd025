package benchkit

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
)

// A kdr broker announces itself in its first stdout line, "kdr broker 1
// listening on HOST:PORT (metrics on http://HOST:PORT/metrics)";
// bench/kfakeserver prints the first part only, and `kdr mirror run`, which
// has no Kafka listener, the second: "kdr mirror SRC->DST running (metrics
// on http://HOST:PORT/metrics)".
var (
	listenRe  = regexp.MustCompile(`listening on (\S+)`)
	metricsRe = regexp.MustCompile(`metrics on http://([^/\s]+)`)
)

// Process is a broker (or the mirror) running as a child OS process. Its
// stderr goes to a log file; its first stdout line announces its addresses.
type Process struct {
	Addr    string // Kafka listener, once AwaitAddress has succeeded; "" for the mirror
	Metrics string // metrics host:port; "" if the process has none

	cmd   *exec.Cmd
	done  chan struct{} // closed once the process has been reaped
	first chan string   // the first stdout line, sent once
}

// Start runs bin with args, its stderr written to logs, and returns once
// the process exists. Start owns logs from then on: it is closed when the
// process ends, or at once if it cannot start. The process is SIGKILLed if
// this one dies (Pdeathsig), however this one ends, so that no broker
// outlives a crashed or interrupted benchmark.
func Start(bin string, args []string, logs *os.File) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logs.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logs.Close()
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), first: make(chan string, 1)}
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		p.first <- line
		// Drain the rest, so that a chatty broker never blocks on a full pipe.
		io.Copy(io.Discard, r)
		cmd.Wait()
		logs.Close()
		close(p.done)
	}()
	return p, nil
}

// AwaitAddress waits up to timeout for the first stdout line and takes the
// Kafka and metrics addresses from it; a line with neither is an error. On
// an error the process is left
// running: how to stop a broker that failed to start is the caller's
// choice.
func (p *Process) AwaitAddress(timeout time.Duration) error {
	var line string
	select {
	case line = <-p.first:
	case <-time.After(timeout):
		return fmt.Errorf("no address line within %v", timeout)
	}
	if m := listenRe.FindStringSubmatch(line); m != nil {
		p.Addr = m[1]
	}
	if m := metricsRe.FindStringSubmatch(line); m != nil {
		p.Metrics = m[1]
	}
	if p.Addr == "" && p.Metrics == "" {
		return fmt.Errorf("no address line (got %q)", strings.TrimSpace(line))
	}
	return nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) { p.cmd.Process.Signal(sig) }

// Kill SIGKILLs the process and waits until it has been reaped: after Kill
// returns, the broker sends nothing more and its log is complete.
func (p *Process) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// Terminate sends SIGTERM and waits up to timeout for the process to exit,
// reporting whether it did. What to do with one that did not (kill it, or
// first have it dump its goroutines) is the caller's choice.
func (p *Process) Terminate(timeout time.Duration) bool {
	if p.Exited() {
		return true
	}
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Memory is a process's resident memory from /proc/<pid>/status.
type Memory struct {
	RSS, HWM int64 // bytes: VmRSS (now) and VmHWM (peak)
}

// ReadMemory reads VmRSS and VmHWM of pid.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val) // "123456 kB"
		if len(f) != 2 || f[1] != "kB" {
			return Memory{}, fmt.Errorf("/proc/%d/status: unexpected %s line %q", pid, key, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("/proc/%d/status: %s: %w", pid, key, err)
		}
		if key == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
	}
	return m, nil
}

// clockTick is the unit of the CPU times in /proc (USER_HZ, 100 on every
// Linux this runs on).
const clockTick = 10 * time.Millisecond

// ProcessCPU is the user+system CPU time of pid so far, from
// /proc/<pid>/stat.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it may not.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime is field 14
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// SelfCPU is this process's user+system CPU time so far, or 0 if it
// cannot be read.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Tail returns the last n lines of a file, for error messages: a broker
// that died or never started usually says why at the end of its log.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
