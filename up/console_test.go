package up

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestUpConsoleRedrawsOnTerminal(t *testing.T) {
	var out bytes.Buffer
	c := NewConsole(&out, true)
	c.Update([]Row{{"east", "brokers 1/3"}, {"east->west", "workers 0/1"}})
	c.Update([]Row{{"east", "brokers 3/3"}, {"east->west", "workers 1/1"}})
	s := out.String()
	if !strings.Contains(s, "east        brokers 1/3\n") || !strings.Contains(s, "east->west  workers 1/1\n") {
		t.Fatalf("rows not aligned: %q", s)
	}
	// The second frame first erases the two lines of the first.
	if i := strings.Index(s, "brokers 3/3"); i < 0 || !strings.Contains(s[:i], strings.Repeat("\x1b[1A\x1b[2K", 2)) {
		t.Fatalf("no erase before the redraw: %q", s)
	}
	// A log line lifts the block and draws it again below.
	var logs bytes.Buffer
	w := c.Wrap(&logs)
	out.Reset()
	w.Write([]byte("log line\n"))
	if logs.String() != "log line\n" || !strings.Contains(out.String(), "brokers 3/3") {
		t.Fatalf("log write: logs %q, console %q", logs.String(), out.String())
	}
	c.Done()
	out.Reset()
	w.Write([]byte("after\n"))
	if out.Len() != 0 {
		t.Fatalf("redrawn after Done: %q", out.String())
	}
}

func TestUpConsoleLogsChangesOffTerminal(t *testing.T) {
	var logs bytes.Buffer
	c := NewConsole(&bytes.Buffer{}, false)
	c.setLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	c.Update([]Row{{"east", "brokers 1/3"}})
	c.Update([]Row{{"east", "brokers 1/3"}})
	c.Update([]Row{{"east", "brokers 3/3"}})
	if n := strings.Count(logs.String(), "msg=waiting"); n != 2 {
		t.Fatalf("%d log lines, want 2 (one per change):\n%s", n, logs.String())
	}
}
