package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// resetMode is where `kdr group reset-offsets` moves offsets to.
type resetMode string

const (
	resetEarliest resetMode = "to-earliest"
	resetLatest   resetMode = "to-latest"
	resetOffset   resetMode = "to-offset"
	resetDatetime resetMode = "to-datetime"
	resetShiftBy  resetMode = "shift-by"
)

// resetSpec is the chosen reset and its argument.
type resetSpec struct {
	Mode resetMode
	// Offset is the target of to-offset, or the delta of shift-by.
	Offset int64
	// Time is the target of to-datetime.
	Time time.Time
}

// GroupResetOffsetsOptions are the parsed options of `kdr group
// reset-offsets`.
type GroupResetOffsetsOptions struct {
	IO   IO
	Conn ConnOptions

	Group string
	// Topics are the --topic selections; a selection without partitions
	// means all of the topic's partitions.
	Topics []topicPartitions
	// AllTopics selects every partition the group has committed to.
	AllTopics bool
	Reset     resetSpec
	// Execute commits the new offsets; without it the plan is only shown.
	Execute bool
}

// NewCmdGroupResetOffsets builds `kdr group reset-offsets`. runF replaces
// the run step in tests.
func NewCmdGroupResetOffsets(streams IO, g *globalOptions, runF func(*GroupResetOffsetsOptions) error) *cobra.Command {
	opts := &GroupResetOffsetsOptions{IO: streams}
	var (
		topics            []string
		earliest, latest  bool
		toOffset, shiftBy int64
		toDatetime        string
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP (--topic T[:P,P...]... | --all-topics) (--to-earliest | --to-latest | --to-offset N | --to-datetime TIME | --shift-by N) [--execute]",
		Short: "Move a group's committed offsets",
		Long: `Move the committed offsets of a consumer group, as kafka-consumer-groups --reset-offsets does.

Without --execute this is a dry run that prints the plan (current and new offset per partition).
The group must have no active members: stop its consumers first. New offsets are clamped to the
partition's log start and log end offsets.`,
		Example: `  kdr group reset-offsets billing --topic orders --to-earliest --execute
  kdr group reset-offsets billing --topic orders:0,1 --shift-by -100
  kdr group reset-offsets billing --all-topics --to-datetime 2024-05-01T12:00:00Z --execute`,
		Args: exactArgs(1, "one group name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Conn, err = resolveConn(cmd, streams, g); err != nil {
				return err
			}
			opts.Group = args[0]
			if opts.Topics, err = parseTopicSelections(topics); err != nil {
				return err
			}
			if len(opts.Topics) == 0 && !opts.AllTopics || len(opts.Topics) > 0 && opts.AllTopics {
				return usageError{fmt.Errorf("give either --topic (repeatable) or --all-topics")}
			}
			set := func(name string) bool { return cmd.Flags().Changed(name) }
			if opts.Reset, err = parseResetSpec(set, earliest, latest, toOffset, toDatetime, shiftBy); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runGroupResetOffsets(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&topics, "topic", nil, "topic to reset, optionally with partitions: orders or orders:0,2 (repeatable)")
	f.BoolVar(&opts.AllTopics, "all-topics", false, "reset every partition the group has committed offsets for")
	f.BoolVar(&earliest, "to-earliest", false, "reset to the log start offset")
	f.BoolVar(&latest, "to-latest", false, "reset to the log end offset")
	f.Int64Var(&toOffset, "to-offset", 0, "reset to this offset")
	f.StringVar(&toDatetime, "to-datetime", "", "reset to the first record at or after this RFC 3339 time, e.g. 2024-05-01T12:00:00Z")
	f.Int64Var(&shiftBy, "shift-by", 0, "move the committed offset by N (negative: back)")
	f.BoolVar(&opts.Execute, "execute", false, "commit the new offsets (default: dry run)")
	return cmd
}

// parseTopicSelections parses --topic T and --topic T:P,P,... arguments.
func parseTopicSelections(args []string) ([]topicPartitions, error) {
	var out []topicPartitions
	for _, a := range args {
		topic, parts, hasParts := strings.Cut(a, ":")
		if topic == "" {
			return nil, usageError{fmt.Errorf("invalid --topic %q: want TOPIC or TOPIC:PARTITION,PARTITION", a)}
		}
		sel := topicPartitions{Topic: topic}
		if hasParts {
			for _, p := range strings.Split(parts, ",") {
				n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
				if err != nil || n < 0 {
					return nil, usageError{fmt.Errorf("invalid --topic %q: partition %q is not a partition number", a, p)}
				}
				sel.Partitions = append(sel.Partitions, int32(n))
			}
		}
		out = append(out, sel)
	}
	return out, nil
}

// parseResetSpec checks that exactly one reset flag is set (set reports
// whether a flag was given) and returns it.
func parseResetSpec(set func(string) bool, earliest, latest bool, toOffset int64, toDatetime string, shiftBy int64) (resetSpec, error) {
	var given []string
	var spec resetSpec
	if earliest {
		given, spec = append(given, "--to-earliest"), resetSpec{Mode: resetEarliest}
	}
	if latest {
		given, spec = append(given, "--to-latest"), resetSpec{Mode: resetLatest}
	}
	if set("to-offset") {
		given, spec = append(given, "--to-offset"), resetSpec{Mode: resetOffset, Offset: toOffset}
	}
	if set("to-datetime") {
		t, err := time.Parse(time.RFC3339, toDatetime)
		if err != nil {
			return resetSpec{}, usageError{fmt.Errorf("invalid --to-datetime %q: want an RFC 3339 time such as 2024-05-01T12:00:00Z", toDatetime)}
		}
		given, spec = append(given, "--to-datetime"), resetSpec{Mode: resetDatetime, Time: t}
	}
	if set("shift-by") {
		given, spec = append(given, "--shift-by"), resetSpec{Mode: resetShiftBy, Offset: shiftBy}
	}
	switch len(given) {
	case 1:
		if spec.Mode == resetOffset && spec.Offset < 0 {
			return resetSpec{}, usageError{fmt.Errorf("--to-offset %d: want an offset >= 0", spec.Offset)}
		}
		return spec, nil
	case 0:
		return resetSpec{}, usageError{fmt.Errorf("say where to reset to: give one of --to-earliest, --to-latest, --to-offset, --to-datetime or --shift-by")}
	}
	return resetSpec{}, usageError{fmt.Errorf("%s cannot be combined; give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime or --shift-by",
		strings.Join(given, " and "))}
}

// offsetReset is one partition's move.
type offsetReset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// CurrentOffset is -1 when the group has not committed.
	CurrentOffset int64 `json:"current_offset"`
	NewOffset     int64 `json:"new_offset"`
}

// groupResetPlan is the result of `kdr group reset-offsets`.
type groupResetPlan struct {
	Group string `json:"group"`
	// Executed is false for a dry run.
	Executed bool          `json:"executed"`
	Offsets  []offsetReset `json:"offsets"`
}

func runGroupResetOffsets(ctx context.Context, opts *GroupResetOffsetsOptions) error {
	ctx, cancel := opts.Conn.withTimeout(ctx)
	defer cancel()
	adm, err := opts.Conn.newAdmin()
	if err != nil {
		return err
	}
	defer adm.Close()
	if err := checkGroupInactive(ctx, adm, opts.Conn, opts.Group); err != nil {
		return err
	}
	plan, err := planGroupReset(ctx, adm, opts)
	if err != nil {
		return err
	}
	if opts.Execute {
		if err := commitGroupReset(ctx, adm, opts.Conn, plan); err != nil {
			return err
		}
		plan.Executed = true
	}
	return printResult(opts.IO.Out, opts.Conn.Output, plan, printGroupResetPlan)
}

// checkGroupInactive refuses groups with members: their consumers would
// overwrite the reset with their next commit.
func checkGroupInactive(ctx context.Context, adm *kadm.Client, conn ConnOptions, group string) error {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return conn.requestErr(fmt.Sprintf("describing group %q", group), err)
	}
	d, ok := described[group]
	switch {
	case !ok:
		return fmt.Errorf("describing group %q: not in the broker's answer", group)
	case errors.Is(d.Err, kerr.GroupIDNotFound):
		return nil // offsets can be committed for a group that does not exist yet
	case d.Err != nil:
		return fmt.Errorf("describing group %q: %w", group, kafkaErr(d.Err, d.ErrMessage))
	case d.State == "Empty" || d.State == "Dead":
		return nil
	}
	return fmt.Errorf("group %q is %s with %d active member(s); stop the consumers first (offsets can only be reset while the group has no members)",
		group, d.State, len(d.Members))
}

func printGroupResetPlan(w io.Writer, r groupResetPlan) error {
	t := newTable(w, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET")
	for _, o := range r.Offsets {
		t.row(r.Group, o.Topic, o.Partition, offsetString(o.CurrentOffset), o.NewOffset)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if r.Executed {
		_, err := fmt.Fprintf(w, "Committed new offsets for %d partition(s) of group %s.\n", len(r.Offsets), r.Group)
		return err
	}
	_, err := fmt.Fprintln(w, "Dry run: nothing was committed; run again with --execute to apply.")
	return err
}
