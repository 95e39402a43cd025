package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ConsumeOptions are the parsed options of `kdr consume`.
type ConsumeOptions struct {
	IO   IO
	Conn ConnOptions

	Topic string
	// Group, when set, consumes as a member of this consumer group and
	// commits what was printed.
	Group string
	// FromBeginning starts at the log start offset where there is no
	// committed offset; otherwise consumption starts at the log end.
	FromBeginning bool
	// Partition, when not -1, reads only this partition, starting at
	// Offset if that is not -1.
	Partition int32
	Offset    int64
	// MaxMessages stops after this many records; 0: no limit.
	MaxMessages int
	// IdleTimeout stops when no record arrives for this long; 0: run until
	// interrupted.
	IdleTimeout time.Duration
	// ExitAtEnd stops once every partition read has reached the end
	// offset it had when the command started (kcat -e).
	ExitAtEnd bool
	// Format is the --format template for text output.
	Format string

	format recordFormat
}

// NewCmdConsume builds `kdr consume`. runF replaces the run step in tests.
func NewCmdConsume(streams IO, g *globalOptions, runF func(*ConsumeOptions) error) *cobra.Command {
	opts := &ConsumeOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print records of a topic",
		Long: `Print the records of TOPIC to stdout, formatted with --format (or as JSON lines with --output json),
until --max-messages records are printed, no record arrives for --idle-timeout, every partition has
been read to the end it had at the start (--exit-at-end, kcat -e), or the command is interrupted.
With --group the records are read as a member of that consumer group, and the offsets
of the printed records are committed.`,
		Example: `  kdr consume orders --from-beginning --max-messages 10
  kdr consume orders --from-beginning --exit-at-end --brokers 127.0.0.1:19092
  kdr consume orders --group billing --idle-timeout 5s --format '%p/%o %k=%v\n'
  kdr consume orders --partition 2 --offset 1000 --output json`,
		Args: exactArgs(1, "one topic name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Conn, err = resolveConn(cmd, streams, g); err != nil {
				return err
			}
			opts.Topic = args[0]
			if err := validateConsume(opts, cmd.Flags().Changed("format")); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runConsume(cmd.Context(), opts)
		},
	}
	addConnFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.Group, "group", "", "consume as a member of this consumer group and commit printed records")
	f.BoolVar(&opts.FromBeginning, "from-beginning", false, "start at the log start offset (where the group has no committed offset)")
	f.Int32Var(&opts.Partition, "partition", -1, "read only this partition")
	f.Int64Var(&opts.Offset, "offset", -1, "with --partition: start at this offset")
	f.IntVar(&opts.MaxMessages, "max-messages", 0, "stop after this many records (0: no limit)")
	f.DurationVar(&opts.IdleTimeout, "idle-timeout", 0, "stop when no record arrives for this long (0: run until interrupted)")
	f.BoolVar(&opts.ExitAtEnd, "exit-at-end", false, "stop once every partition read has reached the end offset it had when the command started (kcat -e); with --group, run no other member of the group meanwhile, or this one waits for the partitions they hold")
	f.StringVar(&opts.Format, "format", defaultRecordFormat, recordFormatHelp)
	return cmd
}

func validateConsume(opts *ConsumeOptions, formatSet bool) error {
	switch {
	case opts.Offset < -1:
		return usageError{fmt.Errorf("--offset %d: want an offset >= 0", opts.Offset)}
	case opts.Partition < -1:
		return usageError{fmt.Errorf("--partition %d: want a partition number", opts.Partition)}
	case opts.Offset >= 0 && opts.Partition < 0:
		return usageError{fmt.Errorf("--offset needs --partition: an offset belongs to one partition")}
	case opts.Offset >= 0 && opts.FromBeginning:
		return usageError{fmt.Errorf("--offset and --from-beginning cannot be combined; give one start position")}
	case opts.Partition >= 0 && opts.Group != "":
		return usageError{fmt.Errorf("--partition cannot be used with --group: a group assigns partitions to its members")}
	case opts.MaxMessages < 0:
		return usageError{fmt.Errorf("--max-messages %d: want a count >= 0 (0: no limit)", opts.MaxMessages)}
	case opts.IdleTimeout < 0:
		return usageError{fmt.Errorf("--idle-timeout %s: want a duration >= 0 (0: run until interrupted)", opts.IdleTimeout)}
	case formatSet && opts.Conn.Output == outputJSON:
		return usageError{fmt.Errorf("--format applies to --output text; --output json prints records as JSON lines")}
	}
	var err error
	opts.format, err = parseRecordFormat(opts.Format)
	return err
}

// consumeClientOpts are the consumer settings of opts.
func consumeClientOpts(opts *ConsumeOptions) []kgo.Opt {
	start := kgo.NewOffset().AtEnd()
	if opts.FromBeginning {
		start = kgo.NewOffset().AtStart()
	}
	if opts.Partition >= 0 {
		if opts.Offset >= 0 {
			start = kgo.NewOffset().At(opts.Offset)
		}
		return []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{opts.Topic: {opts.Partition: start}})}
	}
	kopts := []kgo.Opt{kgo.ConsumeTopics(opts.Topic), kgo.ConsumeResetOffset(start)}
	if opts.Group != "" {
		// Only records that were printed are marked, and only marked
		// offsets are committed.
		kopts = append(kopts, kgo.ConsumerGroup(opts.Group), kgo.AutoCommitMarks())
	}
	return kopts
}

func runConsume(ctx context.Context, opts *ConsumeOptions) error {
	cl, err := opts.Conn.newClient(consumeClientOpts(opts)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := checkTopic(ctx, cl, opts.Conn, opts.Topic, opts.Partition); err != nil {
		return err
	}
	var ends map[int32]int64
	if opts.ExitAtEnd {
		if ends, err = unreadEnds(ctx, cl, opts); err != nil {
			return err
		}
	}
	n, err := consumeRecords(ctx, cl, opts, ends)
	if opts.Group != "" {
		// Commit even when interrupted: the printed records are done.
		cctx, cancel := opts.Conn.withTimeout(context.WithoutCancel(ctx))
		defer cancel()
		if cerr := cl.CommitMarkedOffsets(cctx); cerr != nil {
			err = errors.Join(err, opts.Conn.requestErr(fmt.Sprintf("committing offsets of group %q", opts.Group), cerr))
		}
	}
	if opts.Conn.Output == outputText {
		fmt.Fprintf(opts.IO.Err, "Consumed %d record(s) from topic %s\n", n, opts.Topic)
	}
	return err
}

// unreadEnds are, for --exit-at-end, the end offsets at the start of the
// partitions that hold records still to read: a partition whose start
// position (the log end without --from-beginning, --offset, or the
// group's committed offset) is at its end already has nothing to wait for.
// A partition is read to its end when the record before it is printed; on
// a topic whose last offset holds no record (a transaction's marker), give
// --idle-timeout too.
func unreadEnds(ctx context.Context, cl *kgo.Client, opts *ConsumeOptions) (map[int32]int64, error) {
	adm := kadm.NewClient(cl)
	rctx, cancel := opts.Conn.withTimeout(ctx)
	defer cancel()
	endOffs, err := adm.ListEndOffsets(rctx, opts.Topic)
	if err == nil {
		err = endOffs.Error()
	}
	if err != nil {
		return nil, opts.Conn.requestErr(fmt.Sprintf("reading the end offsets of topic %q", opts.Topic), err)
	}
	var startOffs kadm.ListedOffsets // only where consumption starts at the log start
	if opts.FromBeginning {
		startOffs, err = adm.ListStartOffsets(rctx, opts.Topic)
		if err == nil {
			err = startOffs.Error()
		}
		if err != nil {
			return nil, opts.Conn.requestErr(fmt.Sprintf("reading the start offsets of topic %q", opts.Topic), err)
		}
	}
	var committed kadm.OffsetResponses
	if opts.Group != "" {
		if committed, err = adm.FetchOffsets(rctx, opts.Group); err != nil {
			return nil, opts.Conn.requestErr(fmt.Sprintf("reading the offsets of group %q", opts.Group), err)
		}
	}
	ends := map[int32]int64{}
	endOffs.Each(func(e kadm.ListedOffset) {
		if opts.Partition >= 0 && e.Partition != opts.Partition {
			return
		}
		from := e.Offset // the log end: a consumer without --from-beginning starts there
		if s, ok := startOffs.Lookup(opts.Topic, e.Partition); ok {
			from = s.Offset
		}
		if opts.Offset >= 0 {
			from = opts.Offset
		}
		if c, ok := committed.Lookup(opts.Topic, e.Partition); ok && c.Err == nil && c.At >= 0 {
			from = c.At
		}
		if from < e.Offset {
			ends[e.Partition] = e.Offset
		}
	})
	return ends, nil
}

// consumeRecords prints records until MaxMessages, IdleTimeout or ctx ends
// it, or with ends (ExitAtEnd) until every partition in it has been read to
// its end, and returns how many it printed.
func consumeRecords(ctx context.Context, cl *kgo.Client, opts *ConsumeOptions, ends map[int32]int64) (int, error) {
	out := bufio.NewWriter(opts.IO.Out)
	defer out.Flush()
	var buf []byte
	n := 0
	for opts.MaxMessages == 0 || n < opts.MaxMessages {
		if opts.ExitAtEnd && len(ends) == 0 {
			return n, nil
		}
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if opts.IdleTimeout > 0 {
			pollCtx, cancel = context.WithTimeout(ctx, opts.IdleTimeout)
		}
		fetches := cl.PollRecords(pollCtx, opts.MaxMessages-n)
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return n, nil // interrupted: a normal way to stop
		}
		if err := fetchError(fetches, opts.Topic); err != nil {
			return n, err
		}
		records := fetches.Records()
		if len(records) == 0 && pollCtx.Err() != nil {
			return n, nil // idle for IdleTimeout
		}
		for _, r := range records {
			var err error
			buf = buf[:0]
			if opts.Conn.Output == outputJSON {
				buf, err = appendRecordJSON(buf, r)
			} else {
				buf = opts.format.appendRecord(buf, r)
			}
			if err != nil {
				return n, fmt.Errorf("formatting %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			if _, err := out.Write(buf); err != nil {
				return n, fmt.Errorf("writing output: %w", err)
			}
			if opts.Group != "" {
				cl.MarkCommitRecords(r)
			}
			if end, ok := ends[r.Partition]; ok && r.Offset+1 >= end {
				delete(ends, r.Partition)
			}
			n++
		}

		if err := out.Flush(); err != nil {
			return n, fmt.Errorf("writing output: %w", err)
		}
	}
	return n, nil
}

// fetchError is the first fetch error that is not the poll's own deadline.
func fetchError(fetches kgo.Fetches, topic string) error {
	var first error
	fetches.EachError(func(t string, p int32, err error) {
		if first != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		if t == "" {
			first = fmt.Errorf("consuming topic %q: %w", topic, err)
			return
		}
		first = fmt.Errorf("consuming %s/%d: %w", t, p, err)
	})
	return first
}
