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
)

// child is a broker running as a separate OS process. Its stderr goes to a
// log file; its first stdout line announces its addresses.
type child struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	addr    string // Kafka listener
	metrics string // metrics host:port, "" if it has none
}

var (
	listenRe  = regexp.MustCompile(`listening on (\S+)`)
	metricsRe = regexp.MustCompile(`metrics on http://([^/\s]+)`)
)

// startTimeout bounds how long a broker may take to print its address line.
const startTimeout = 30 * time.Second

// startChild runs bin with args and waits for the line carrying its address.
// The child is killed if this process dies (Pdeathsig).
func startChild(name, logPath, bin string, args ...string) (*child, error) {
	logs, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
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
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), logPath: logPath}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		io.Copy(io.Discard, r)
		cmd.Wait()
		logs.Close()
		close(c.done)
	}()

	select {
	case line := <-lines:
		m := listenRe.FindStringSubmatch(line)
		if m == nil {
			c.stop()
			return nil, fmt.Errorf("%s printed no address line (got %q); its log:\n%s", name, strings.TrimSpace(line), tail(logPath, 20))
		}
		c.addr = m[1]
		if m := metricsRe.FindStringSubmatch(line); m != nil {
			c.metrics = m[1]
		}
		return c, nil
	case <-time.After(startTimeout):
		c.stop()
		return nil, fmt.Errorf("%s printed no address line within %v; its log:\n%s", name, startTimeout, tail(logPath, 20))
	}
}

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to 15 s for a clean exit, then SIGKILLs.
func (c *child) stop() {
	if c.exited() {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		fmt.Fprintf(os.Stderr, "%s did not exit 15 s after SIGTERM; killing it\n", c.name)
		c.cmd.Process.Kill()
		<-c.done
	}
}

// memory is a process's resident memory from /proc/<pid>/status.
type memory struct {
	rss, hwm int64 // bytes: VmRSS (now) and VmHWM (peak)
}

// readMemory reads VmRSS and VmHWM of pid.
func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val) // "123456 kB"
		if len(f) != 2 || f[1] != "kB" {
			return memory{}, fmt.Errorf("/proc/%d/status: unexpected %s line %q", pid, key, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("/proc/%d/status: %s: %w", pid, key, err)
		}
		if key == "VmRSS" {
			m.rss = kb << 10
		} else {
			m.hwm = kb << 10
		}
	}
	return m, nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
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
