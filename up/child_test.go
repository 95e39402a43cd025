package up

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestStopAllChildNeverStarted: kdr up stopped while it still waited for
// the clusters stops the mirror workers it had not started yet, which once
// left stopAll waiting for ever.
func TestStopAllChildNeverStarted(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := newChild("east->west worker 0", "/nonexistent/kdr", t.TempDir()+"/w.log", func() []string { return nil }, logger, nil)
	stopped := make(chan struct{})
	go func() {
		stopAll(logger, "mirror workers", []*child{c}, time.Second)
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("stopAll still waits for a child that was never started")
	}
	// A run that begins after the stop starts nothing and returns.
	ran := make(chan struct{})
	go func() {
		c.run()
		close(ran)
	}()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("run of a stopped child did not return")
	}
	if c.pid() != 0 || c.restartCount() != 0 {
		t.Fatalf("a stopped child ran: pid %d, %d restarts", c.pid(), c.restartCount())
	}
}

// TestChildExitShowsLastLogLine: a child that keeps exiting is reported
// with the last line of its log, which usually says why.
func TestChildExitShowsLastLogLine(t *testing.T) {
	var out kdrtest.Output
	logger := slog.New(slog.NewTextHandler(&out, nil))
	why := "fatal: entry 1 is unreadable; move the wal directory away"
	c := newChild("east broker 2", "/bin/sh", filepath.Join(t.TempDir(), "b.log"),
		func() []string { return []string{"-c", "echo starting up; echo '" + why + "' >&2; exit 3"} }, logger, nil)
	go c.run()
	defer stopAll(logger, "brokers", []*child{c}, 5*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "child process exited unexpectedly") {
		if time.Now().After(deadline) {
			t.Fatalf("no exit reported in 30 s; log:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := out.String(); !strings.Contains(got, `last_log_line="`+why+`"`) || !strings.Contains(got, "exit=\"exit status 3\"") {
		t.Fatalf("exit report lacks the log's last line or the exit status:\n%s", got)
	}
}

func TestLastLogLine(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.log")
	if got := lastLogLine(p); got != "" {
		t.Fatalf("missing file: %q", got)
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("x", 5000)
	write("a\n" + long + "\nthe reason\n\n" + startMarker + " starting b at now\n")
	if got := lastLogLine(p); got != "the reason" {
		t.Fatalf("got %q, want the last line before kdr up's marker", got)
	}
	write("a\n" + long + "\n")
	if got := lastLogLine(p); len(got) != 300+len("…") || !strings.HasPrefix(got, "xxx") {
		t.Fatalf("long line: %d bytes", len(got))
	}
	// A cut through a character leaves no broken one behind.
	write("x" + strings.Repeat("é", 200) + "\n") // byte 300 is the first of an é
	if got := lastLogLine(p); !utf8.ValidString(got) || got != "x"+strings.Repeat("é", 149)+"…" {
		t.Fatalf("cut inside a character: %q", got)
	}
}
