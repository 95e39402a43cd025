package up

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// Console shows kdr up's progress: on a terminal one line per cluster and
// flow, redrawn in place; elsewhere a log line whenever a line changes.
// Log output routed through Wrap keeps the redrawn block intact.
type Console struct {
	mu     sync.Mutex
	out    io.Writer
	tty    bool
	logger *slog.Logger
	frame  []string          // the block on screen (tty)
	drawn  int               // lines of it currently drawn
	last   map[string]string // key → last text logged (not tty)
	live   bool              // redrawing: between the first Update and Done
}

// NewConsole writes the progress to out; tty redraws it in place.
func NewConsole(out io.Writer, tty bool) *Console {
	return &Console{out: out, tty: tty, last: map[string]string{}}
}

// TTY reports whether the console redraws in place.
func (c *Console) TTY() bool { return c != nil && c.tty }

// setLogger is where changes go when not on a terminal.
func (c *Console) setLogger(l *slog.Logger) {
	c.mu.Lock()
	c.logger = l
	c.mu.Unlock()
}

// Row is one progress line: Key names it (a cluster or flow), Text is its
// state.
type Row struct{ Key, Text string }

// Update shows rows.
func (c *Console) Update(rows []Row) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tty {
		for _, r := range rows {
			if c.last[r.Key] != r.Text {
				c.last[r.Key] = r.Text
				if c.logger != nil {
					c.logger.Info("waiting", "for", r.Key, "state", r.Text)
				}
			}
		}
		return
	}
	width := 0
	for _, r := range rows {
		width = max(width, len(r.Key))
	}
	frame := make([]string, 0, len(rows))
	for _, r := range rows {
		frame = append(frame, r.Key+strings.Repeat(" ", width-len(r.Key))+"  "+r.Text)
	}
	if c.live && slices.Equal(frame, c.frame) {
		return // unchanged: no flicker
	}
	c.frame, c.live = frame, true
	c.erase()
	c.draw()
}

// Done stops redrawing, leaving the last block on screen.
func (c *Console) Done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live, c.drawn, c.frame = false, 0, nil
}

// erase moves the cursor up over the drawn block, clearing it.
func (c *Console) erase() {
	if c.drawn > 0 {
		io.WriteString(c.out, strings.Repeat("\x1b[1A\x1b[2K", c.drawn))
		c.drawn = 0
	}
}

func (c *Console) draw() {
	for _, l := range c.frame {
		io.WriteString(c.out, "\x1b[2K"+l+"\n")
	}
	c.drawn = len(c.frame)
}

// Wrap returns a writer for log output to the same terminal: each write
// lifts the progress block, writes, and draws the block again below.
func (c *Console) Wrap(w io.Writer) io.Writer {
	if !c.tty {
		return w
	}
	return consoleWriter{c: c, w: w}
}

type consoleWriter struct {
	c *Console
	w io.Writer
}

func (cw consoleWriter) Write(p []byte) (int, error) {
	cw.c.mu.Lock()
	defer cw.c.mu.Unlock()
	if !cw.c.live {
		return cw.w.Write(p)
	}
	cw.c.erase()
	n, err := cw.w.Write(p)
	cw.c.draw()
	return n, err
}
