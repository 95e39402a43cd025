package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestReadmeQuickstart follows the README's quickstart literally on this
// checkout: `make run` in one "terminal", and, once it says it is ready,
// every line of the quickstart block in another, each of which must
// succeed; then Ctrl-C (SIGINT to make's process group, as a terminal
// sends it) must leave no kdr process behind.
func TestReadmeQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two 3-broker clusters")
	}
	for _, tool := range []string{"make", "kcat", "curl", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make test installs what the quickstart needs): %v", tool, err)
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := quickstartLines(t, string(readme))
	state := t.TempDir()
	env := append(os.Environ(), "XDG_STATE_HOME="+state)

	var out syncBuffer
	mk := exec.Command("make", "run")
	mk.Env, mk.Stdout, mk.Stderr = env, &out, &out
	mk.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	mk.WaitDelay = 10 * time.Second // a stray grandchild holding the output pipe must not hang Wait
	if err := mk.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed once make has exited; waitErr is then set
	var waitErr error
	go func() { waitErr = mk.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-mk.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	ready := time.After(5 * time.Minute) // make builds first
	for {
		changed := out.changed() // before reading, so that no write is missed
		if strings.Contains(out.String(), "Press Ctrl-C to stop.") {
			break
		}
		select {
		case <-exited:
			t.Fatalf("make run exited before it was ready (%v):\n%s", waitErr, out.String())
		case <-ready:
			t.Fatalf("make run not ready after 5 minutes:\n%s", out.String())
		case <-changed:
		}
	}

	for _, line := range lines {
		got := runLine(t, line, env)
		switch {
		case strings.HasPrefix(line, "bin/kdr consume orders --brokers 127.0.0.1:19092"):
			if !strings.Contains(got, "k1=hello") {
				t.Errorf("the record produced on east was not read on west: %q", got)
			}
		case strings.HasPrefix(line, "bin/kdr status"):
			if !strings.Contains(got, "east->west") || !strings.Contains(got, "HEALTHY") {
				t.Errorf("kdr status does not show the flow and health:\n%s", got)
			}
		case strings.Contains(line, "--format mermaid"):
			if !strings.HasPrefix(strings.TrimSpace(got), "flowchart") {
				t.Errorf("graph --format mermaid printed:\n%s", got)
			}
		}
	}

	// Ctrl-C: the terminal signals make's whole foreground process group.
	pids := upPIDs(t, filepath.Join(state, "kdr", "demo", "endpoints.json"))
	if err := syscall.Kill(-mk.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(90 * time.Second):
		t.Fatalf("make run still running 90 s after Ctrl-C:\n%s", out.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still runs after kdr up stopped", pid)
			}
			time.Sleep(50 * time.Millisecond) // polling a pid: there is nothing to wait on
		}
	}
}

// quickstartLines returns the command lines of the README's quickstart
// block: the sh block after the "quickstart:" marker.
func quickstartLines(t *testing.T, readme string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "<!-- quickstart:")
	if !ok {
		t.Fatal("README.md has no <!-- quickstart: --> marker")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatal("no sh block after the quickstart marker")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("the quickstart block is not closed")
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) < 3 {
		t.Fatalf("only %d quickstart lines", len(lines))
	}
	return lines
}

// runLine runs one quickstart line with bash, as a user would paste it,
// and fails the test unless it exits 0 within a minute.
func runLine(t *testing.T, line string, env []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", line)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("$ %s\n%s", line, out.String())
	if err != nil {
		t.Fatalf("quickstart line failed (%v): %s\n%s", err, line, out.String())
	}
	return out.String()
}

// upPIDs reads the pids of kdr up's children from its endpoints.json.
func upPIDs(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if n, ok := x.(float64); ok && k == "pid" && n > 0 {
					pids = append(pids, int(n))
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	walk(doc)
	if len(pids) == 0 {
		t.Fatal(errors.New("endpoints.json lists no pids"))
	}
	return pids
}

// syncBuffer is an output buffer written by a process and read by the
// test, with a channel that is signalled on every write.
type syncBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	wake chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// changed returns a channel closed at the next write.
func (b *syncBuffer) changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wake == nil {
		b.wake = make(chan struct{})
	}
	return b.wake
}
