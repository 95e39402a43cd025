package up

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Restart backoff of a supervised child: doubled after each quick exit,
// reset once a run lasted backoffReset.
const (
	backoffMin   = 500 * time.Millisecond
	backoffMax   = 30 * time.Second
	backoffReset = time.Minute
)

// startMarker begins the line kdr up writes to a child's log at each start.
const startMarker = "--- kdr up:"

// child is one supervised process: started, restarted with backoff when it
// exits while not stopping, and stopped with SIGTERM then SIGKILL.
type child struct {
	name  string // "east broker 1", "east->west worker 0"
	group string // the cluster or flow it belongs to
	bin   string
	args  func() []string // called at every start
	// env is added to kdr up's environment for the process: secrets,
	// which arguments would show in process lists.
	env     []string
	logPath string
	logger  *slog.Logger
	// onStart is called with the pid after each start, 0 after each exit.
	onStart func(pid int)

	mu       sync.Mutex
	stopping bool
	started  bool // run began supervising; until then stop has nothing to wait for
	proc     *os.Process
	restarts int
	// logFrom is where the running process's output begins in logPath
	// (after kdr up's start marker).
	logFrom int64
	done    chan struct{} // closed when the supervision loop returns
	wake    chan struct{} // closed by stop: ends a backoff wait
}

func newChild(name, bin, logPath string, args func() []string, logger *slog.Logger, onStart func(int)) *child {
	return &child{name: name, bin: bin, args: args, logPath: logPath, logger: logger, onStart: onStart,
		done: make(chan struct{}), wake: make(chan struct{})}
}

// run supervises the child until stop; call it once, in its own goroutine.
// A child stopped before run began is never started.
func (c *child) run() {
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		return // signal closed done
	}
	c.started = true
	c.mu.Unlock()
	defer close(c.done)
	backoff := backoffMin
	for {
		started := time.Now()
		exit, err := c.once()
		if err != nil {
			c.logger.Error("cannot start child process", "child", c.name, "err", err)
		}
		if c.isStopping() {
			return
		}
		if time.Since(started) > backoffReset {
			backoff = backoffMin
		}
		c.mu.Lock()
		c.restarts++
		n := c.restarts
		c.mu.Unlock()
		if err == nil {
			// The log's last line usually says why (a port taken, a
			// damaged data directory): show it rather than only where
			// to look.
			c.logger.Warn("child process exited unexpectedly; restarting", "child", c.name, "exit", exit,
				"ran", time.Since(started).Round(time.Millisecond), "restart_in", backoff, "restarts", n, "log", c.logPath,
				"last_log_line", lastLogLine(c.logPath))
		}
		select {
		case <-c.wake:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// once starts the process and waits for it to exit. The start happens
// under mu so that stop either sees the process or prevents it.
func (c *child) once() (string, error) {
	logf, err := os.OpenFile(c.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "%s starting %s at %s\n", startMarker, c.name, time.Now().Format(time.RFC3339))
	from, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(c.bin, c.args()...)
	if len(c.env) > 0 {
		cmd.Env = append(os.Environ(), c.env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		return "", nil
	}
	if err := cmd.Start(); err != nil {
		c.mu.Unlock()
		return "", err
	}
	c.proc, c.logFrom = cmd.Process, from
	c.mu.Unlock()
	c.logger.Debug("child process started", "child", c.name, "pid", cmd.Process.Pid, "args", cmd.Args[1:])
	if c.onStart != nil {
		c.onStart(cmd.Process.Pid)
	}
	werr := cmd.Wait()
	c.mu.Lock()
	c.proc = nil
	c.mu.Unlock()
	if c.onStart != nil {
		c.onStart(0)
	}
	if werr != nil {
		return werr.Error(), nil
	}
	return "exit status 0", nil
}

// lastLogLine is the last line a child wrote to its log (not kdr up's own
// start marker), cut to 300 bytes; "" if there is none.
func lastLogLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	const window = 4096
	buf := make([]byte, window)
	n, _ := f.ReadAt(buf, max(st.Size()-window, 0))
	lines := strings.Split(string(buf[:n]), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, startMarker) {
			continue
		}
		if len(l) > 300 {
			l = strings.ToValidUTF8(l[:300], "") + "…" // the cut may split a character
		}
		return l
	}
	return ""
}

// logged reports whether the running process has written a line
// containing text to its log (false while none runs).
func (c *child) logged(text string) bool {
	c.mu.Lock()
	running, from := c.proc != nil, c.logFrom
	c.mu.Unlock()
	if !running {
		return false
	}
	f, err := os.Open(c.logPath)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return false
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if strings.Contains(sc.Text(), text) {
			return true
		}
	}
	return false
}

func (c *child) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

// signal marks the child stopping (no more restarts) and sends sig to the
// running process, if any.
func (c *child) signal(sig syscall.Signal) {
	c.mu.Lock()
	if !c.stopping {
		c.stopping = true
		close(c.wake)
		if !c.started {
			// Never supervised (kdr up stopped before the clusters
			// were up, so the workers never started): nothing to
			// wait for.
			close(c.done)
		}
	}
	p := c.proc
	c.mu.Unlock()
	if p != nil {
		p.Signal(sig)
	}
}

// restartCount is how often the child was restarted.
func (c *child) restartCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.restarts
}

// pid is the running process's pid, or 0.
func (c *child) pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return 0
	}
	return c.proc.Pid
}

// stopAll stops children together: SIGTERM to every one, then, for those
// still running after grace, SIGKILL; it returns once every supervision
// loop has ended (so every process has been reaped).
func stopAll(logger *slog.Logger, what string, children []*child, grace time.Duration) {
	if len(children) == 0 {
		return
	}
	for _, c := range children {
		c.signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	for _, c := range children {
		select {
		case <-c.done:
			continue
		case <-deadline.C:
		}
		// Out of patience: kill whatever is left.
		for _, k := range children {
			select {
			case <-k.done:
			default:
				logger.Warn("child did not stop in time; killing it", "child", k.name, "grace", grace)
				k.signal(syscall.SIGKILL)
			}
		}
		break
	}
	for _, c := range children {
		<-c.done
	}
	logger.Info("stopped "+what, "count", len(children))
}

// stopBrokers stops every local cluster's brokers, the clusters in
// parallel. Within a cluster, brokers stop one at a time while those left
// still form a majority of the metadata quorum (every broker is a voter), so
// each can hand its leaderships over through a controlled shutdown; the
// last majority stops together, as there is no one left to hand over to.
func stopBrokers(logger *slog.Logger, brokers []*child, grace time.Duration) {
	var order []string
	byCluster := map[string][]*child{}
	for _, b := range brokers {
		if byCluster[b.group] == nil {
			order = append(order, b.group)
		}
		byCluster[b.group] = append(byCluster[b.group], b)
	}
	var wg sync.WaitGroup
	for _, name := range order {
		bs := byCluster[name]
		wg.Go(func() {
			majority := len(bs)/2 + 1
			i := 0
			for ; len(bs)-i-1 >= majority; i++ {
				stopAll(logger, name+" broker (one at a time while a majority remains)", bs[i:i+1], grace)
			}
			stopAll(logger, name+" brokers", bs[i:], grace)
		})
	}
	wg.Wait()
	logger.Info("stopped brokers", "count", len(brokers))
}
