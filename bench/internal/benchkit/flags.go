package benchkit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Common is the flags every command takes with the same name, default and
// meaning: the broker binary, the shape of the workload, the profiles and
// where results go. A command embeds it in its own options.
type Common struct {
	KdrBin      string
	Duration    time.Duration
	RecordSize  int
	Partitions  int
	Inflight    int
	Linger      time.Duration
	MaxBuffered int
	ProfileSecs int

	Out    string // markdown file the report is appended to
	OutDir string // profiles and broker logs
}

// CommonUsage is the help of the common flags whose wording depends on the
// command: what it runs the binary as, and which of its phases the
// duration, partitions, buffer and profiles apply to.
type CommonUsage struct {
	KdrBin, Duration, Partitions, MaxBuffered, ProfileSecs string
}

// Register defines the common flags on fs, with their defaults.
func (c *Common) Register(fs *flag.FlagSet, u CommonUsage) {
	fs.StringVar(&c.KdrBin, "kdr-bin", "bin/kdr", u.KdrBin)
	fs.DurationVar(&c.Duration, "duration", 15*time.Second, u.Duration)
	fs.IntVar(&c.RecordSize, "records-size", 1024, "record value size in bytes")
	fs.IntVar(&c.Partitions, "partitions", 8, u.Partitions)
	fs.IntVar(&c.Inflight, "inflight", 10, "produce requests in flight per broker connection")
	fs.DurationVar(&c.Linger, "linger", time.Millisecond, "producer linger")
	fs.IntVar(&c.MaxBuffered, "max-buffered", 100000, u.MaxBuffered)
	fs.IntVar(&c.ProfileSecs, "profile-seconds", 10, u.ProfileSecs)
	fs.StringVar(&c.Out, "out", "", "markdown file to append the report to")
	fs.StringVar(&c.OutDir, "out-dir", "bench/out", "directory for profiles and broker logs")
}

// Check reports the first common flag out of range. --duration is left to
// the command: how short a run can still measure something depends on it.
func (c Common) Check() error {
	switch {
	case c.RecordSize <= 0:
		return fmt.Errorf("--records-size %d: must be positive", c.RecordSize)
	case c.Partitions <= 0:
		return fmt.Errorf("--partitions %d: must be positive", c.Partitions)
	case c.Inflight <= 0:
		return fmt.Errorf("--inflight %d: must be positive", c.Inflight)
	case c.MaxBuffered <= 0:
		return fmt.Errorf("--max-buffered %d: must be positive", c.MaxBuffered)
	}
	return nil
}

// Parse parses args with fs and refuses positional arguments, which no
// command takes: a stray word is more likely a mistyped flag than intent.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	return nil
}

// Main is a command's main: parse defines the command's flags on a flag
// set named name, which prints help and flag errors on stderr, and parses
// args with it; bench then runs with a context that ends on SIGINT or
// SIGTERM, so that an interrupted run still stops its brokers. Main returns
// the exit code: 0, 2 for bad flags, 1 for a failed run.
func Main[O any](name string, args []string, parse func(*flag.FlagSet, []string) (O, error),
	bench func(context.Context, O, []string) error) int {
	opts, err := parse(flag.NewFlagSet(name, flag.ContinueOnError), args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, opts, args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
