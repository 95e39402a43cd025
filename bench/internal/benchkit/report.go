package benchkit

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// WriteRunHeader starts a markdown report: a heading with the time of the
// run, the command line that reproduces it and the machine it ran on, since
// no figure means anything without them. heading is e.g. "Run" and
// command the directory under bench/.
func WriteRunHeader(w io.Writer, heading, command string, args []string) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "\n## %s of %s\n\n", heading, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "Command: `go run ./bench/%s %s`  \n", command, strings.Join(args, " "))
	fmt.Fprintf(w, "Machine: %s, %d CPUs, %s, %s  \n", host, runtime.NumCPU(), cpuModel(), runtime.Version())
}

// WriteNotes lists notes (misbehaviour and skipped steps) under "Notes:",
// or writes nothing if there are none.
func WriteNotes(w io.Writer, notes []string) {
	if len(notes) == 0 {
		return
	}
	fmt.Fprintln(w, "\nNotes:")
	for _, n := range notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
}

// Publish prints report on stdout and, if out is set, appends it to that
// file, so that runs accumulate in one document; logf tells where.
func Publish(report, out string, logf func(format string, args ...any)) error {
	fmt.Print(report)
	if out == "" {
		return nil
	}
	f, err := os.OpenFile(out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.WriteString(f, report); err != nil {
		return err
	}
	logf("report appended to %s", out)
	return nil
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
