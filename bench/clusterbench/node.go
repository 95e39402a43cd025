package main

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// node is one broker of the cluster: a `kdr broker` process that can be
// killed and started again on the same data dir and ports. A node is driven
// by one goroutine at a time.
type node struct {
	id      int32
	bin     string
	args    []string // everything but --listen
	listen  string   // Kafka address, the same across restarts
	logPath string   // stderr of every start, appended

	proc      *benchkit.Process // the current process; nil before the first start
	metrics   string            // metrics host:port of the current process
	starts    int
	startedAt time.Time
}

const (
	// startTimeout bounds how long a broker may take to print its address
	// line, including retries of a restart that races the old socket.
	startTimeout = 30 * time.Second
	// stopTimeout is how long a broker has to exit after SIGTERM.
	stopTimeout = 15 * time.Second
)

// start runs the broker and waits for its address line. A restart whose
// port is not yet free again is retried until startTimeout.
func (n *node) start(ctx context.Context) error {
	deadline := time.Now().Add(startTimeout)
	for {
		err := n.startOnce()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("broker %d: %w; its log:\n%s", n.id, err, benchkit.Tail(n.logPath, 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (n *node) startOnce() error {
	logs, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logs, "==== clusterbench: start %d of broker %d at %s ====\n", n.starts+1, n.id, time.Now().Format(time.RFC3339Nano))
	args := append(append([]string{}, n.args...), "--listen", n.listen)
	p, err := benchkit.Start(n.bin, args, logs)
	if err != nil {
		return err
	}
	if err := p.AwaitAddress(startTimeout); err != nil {
		// A broker that did not come up is of no use: no graceful stop.
		p.Kill()
		return err
	}
	n.proc, n.metrics, n.starts, n.startedAt = p, p.Metrics, n.starts+1, time.Now()
	return nil
}

// pid is the current process's id.
func (n *node) pid() int { return n.proc.Pid() }

// running reports whether the current process is alive.
func (n *node) running() bool { return n.proc != nil && !n.proc.Exited() }

// kill SIGKILLs the process and waits until it has been reaped: after kill
// returns, the broker sends nothing more.
func (n *node) kill() {
	if n.running() {
		n.proc.Kill()
	}
}

// stopResult is how a broker's process ended at the end of the run.
type stopResult struct {
	node   int32
	took   time.Duration // SIGTERM to exit
	forced bool          // it outlived stopTimeout and was killed
}

// stop sends SIGTERM and waits up to stopTimeout for a clean exit. A
// broker still running then gets SIGQUIT, so that the Go runtime writes
// every goroutine's stack into its log (the evidence of where it hung), and
// SIGKILL two seconds later.
func (n *node) stop() stopResult {
	res := stopResult{node: n.id}
	if !n.running() {
		return res
	}
	start := time.Now()
	if n.proc.Terminate(stopTimeout) {
		res.took = time.Since(start)
		return res
	}
	res.forced = true
	logf("broker %d did not exit %v after SIGTERM; SIGQUIT (stack dump to %s), then SIGKILL", n.id, stopTimeout, n.logPath)
	n.proc.Signal(syscall.SIGQUIT)
	select {
	case <-n.proc.Done():
	case <-time.After(2 * time.Second):
		n.proc.Kill()
	}
	res.took = time.Since(start)
	return res
}
