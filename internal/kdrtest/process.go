package kdrtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a `kdr broker` running as a separate OS process.
type Process struct {
	t       TB
	bin     string
	dataDir string
	args    []string
	addr    string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs *os.File
}

var listenLine = regexp.MustCompile(`listening on (\S+)`)

// ModuleRoot finds the repository root (the directory holding go.mod).
func ModuleRoot() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("kdrtest: go.mod not found above %s; set KDR_BIN to a built kdr binary", file)
		}
		dir = parent
	}
}

// BuildBinary builds the kdr binary into dir and returns its path. Set
// KDR_BIN to use a prebuilt binary instead.
func BuildBinary(dir string) (string, error) {
	if bin := os.Getenv("KDR_BIN"); bin != "" {
		return bin, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kdr")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kdrtest: building kdr in %s failed (set KDR_BIN to use a prebuilt binary): %v\n%s", root, err, out)
	}
	return bin, nil
}

// Binary returns the kdr binary for t: KDR_BIN if set, otherwise one built
// into t's temporary directory. It fails the test if the build fails.
func Binary(t TB) string {
	t.Helper()
	bin, err := BuildBinary(t.TempDir())
	if err != nil {
		t.Fatalf("%v", err)
	}
	return bin
}

// StartProcess runs `bin broker` on a fresh data dir and a free loopback
// port, with extra flags appended, and waits until it listens. The process
// is killed at test cleanup.
func StartProcess(t TB, bin string, extra ...string) *Process {
	t.Helper()
	p := &Process{t: t, bin: bin, dataDir: t.TempDir()}
	p.args = append([]string{"broker", "--data-dir", p.dataDir, "--listen", "127.0.0.1:0", "--metrics-listen", "",
		"--group-initial-rebalance-delay-ms", "0", "--offsets-topic-num-partitions", "4"}, extra...)
	p.start()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Addr is the broker's Kafka address.
func (p *Process) Addr() string { return p.addr }

// DataDir is the broker's data directory.
func (p *Process) DataDir() string { return p.dataDir }

// LogPath is the file holding the process's stderr.
func (p *Process) LogPath() string { return p.logs.Name() }

func (p *Process) start() {
	p.t.Helper()
	args := p.args
	if p.addr != "" {
		// Restart on the same port so clients keep their seed address.
		args = append(append([]string(nil), args...), "--listen", p.addr)
	}
	if p.logs != nil {
		p.logs.Close() // the previous run's; Logs reads every file by name
	}
	logs, err := os.CreateTemp(p.dataDir, "broker-*.log")
	if err != nil {
		p.t.Fatalf("kdrtest: %v", err)
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatalf("kdrtest: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err = cmd.Start(); err != nil {
			p.t.Fatalf("kdrtest: starting %s: %v", p.bin, err)
		}
		addr, readErr := readAddr(stdout)
		if readErr == nil {
			p.mu.Lock()
			p.cmd, p.logs, p.addr, p.done = cmd, logs, addr, make(chan struct{})
			done := p.done
			p.mu.Unlock()
			go func() { io.Copy(io.Discard, stdout); cmd.Wait(); close(done) }()
			return
		}
		cmd.Wait()
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logs.Name())
			p.t.Fatalf("kdrtest: broker did not start: %v\n%s", readErr, b)
		}
		// A restart can race the old socket's release; retry.
		time.Sleep(100 * time.Millisecond)
		cmd = exec.Command(p.bin, args...)
		cmd.Stderr = logs
		if stdout, err = cmd.StdoutPipe(); err != nil {
			p.t.Fatalf("kdrtest: %v", err)
		}
	}
}

func readAddr(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if m := listenLine.FindStringSubmatch(line); m != nil {
		return m[1], nil
	}
	return "", fmt.Errorf("no listen line (got %q): %v", strings.TrimSpace(line), err)
}

// Kill sends SIGKILL and waits for the process to exit: nothing is flushed,
// as in a power cut of the process (the page cache survives).
func (p *Process) Kill() { p.signal(syscall.SIGKILL) }

// Stop sends SIGTERM and waits for a clean shutdown.
func (p *Process) Stop() { p.signal(syscall.SIGTERM) }

func (p *Process) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	<-done
}

// Restart starts the process again on the same data dir and port.
func (p *Process) Restart() {
	p.t.Helper()
	p.start()
}

// Logs returns what the process wrote to stderr so far, over every start.
func (p *Process) Logs() string {
	files, _ := filepath.Glob(filepath.Join(p.dataDir, "broker-*.log"))
	sort.Slice(files, func(i, j int) bool {
		a, _ := os.Stat(files[i])
		b, _ := os.Stat(files[j])
		return a != nil && b != nil && a.ModTime().Before(b.ModTime())
	})
	var out strings.Builder
	for _, f := range files {
		b, _ := os.ReadFile(f)
		out.Write(b)
	}
	return out.String()
}

// Command is a kdr command other than a broker (kdr up, kdr dashboards
// prometheus, ...) running as a process for a test. It is killed at test
// cleanup (kdr up's children die with it), and its output is logged if the
// test failed.
type Command struct {
	cmd  *exec.Cmd
	out  Output
	done chan struct{}
	err  error
}

// StartCommand runs bin with args.
func StartCommand(t TB, bin string, args ...string) *Command {
	t.Helper()
	c := &Command{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("kdrtest: starting %s: %v", strings.Join(args, " "), err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("kdr %s output:\n%s", strings.Join(args, " "), c.out.String())
		}
	})
	return c
}

// Pid is the process id.
func (c *Command) Pid() int { return c.cmd.Process.Pid }

// Output is what the process wrote to stdout and stderr so far.
func (c *Command) Output() string { return c.out.String() }

// Done is closed once the process has exited; Err then says how.
func (c *Command) Done() <-chan struct{} { return c.done }

// Err is the process's exit error (nil for status 0); call it after Done.
func (c *Command) Err() error { return c.err }

// Signal sends sig to the process.
func (c *Command) Signal(sig os.Signal) { c.cmd.Process.Signal(sig) }

// Interrupt sends SIGINT, as Ctrl-C does, and fails the test unless the
// process exits with status 0 within d.
func (c *Command) Interrupt(t TB, d time.Duration) {
	t.Helper()
	c.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(d):
		t.Fatalf("kdr %s did not exit within %s of SIGINT", strings.Join(c.cmd.Args[1:], " "), d)
	}
	if c.err != nil {
		t.Fatalf("kdr %s exited with %v after SIGINT, want 0\n%s", strings.Join(c.cmd.Args[1:], " "), c.err, c.out.String())
	}
}
