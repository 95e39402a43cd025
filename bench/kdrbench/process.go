package main

import (
	"fmt"
	"os"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// child is a broker running as a separate OS process, with the name and
// log path its messages cite.
type child struct {
	*benchkit.Process
	name    string
	logPath string
}

// startTimeout bounds how long a broker may take to print its address line.
const startTimeout = 30 * time.Second

// startChild runs bin with args, its stderr in a fresh log at logPath, and
// waits for the line carrying its address.
func startChild(name, logPath, bin string, args ...string) (*child, error) {
	logs, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p, err := benchkit.Start(bin, args, logs)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{Process: p, name: name, logPath: logPath}
	if err := p.AwaitAddress(startTimeout); err != nil {
		c.stop()
		return nil, fmt.Errorf("%s printed %v; its log:\n%s", name, err, benchkit.Tail(logPath, 20))
	}
	return c, nil
}

// stop sends SIGTERM, waits up to 15 s for a clean exit, then SIGKILLs.
func (c *child) stop() {
	if c.Terminate(15 * time.Second) {
		return
	}
	fmt.Fprintf(os.Stderr, "%s did not exit 15 s after SIGTERM; killing it\n", c.name)
	c.Kill()
}
