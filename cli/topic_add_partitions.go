package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TopicAddPartitionsOptions are the parsed options of `kdr topic
// add-partitions`.
type TopicAddPartitionsOptions struct {
	IO   IO
	Conn ConnOptions

	Topic string
	// Partitions is the topic's new partition count: the total, as with
	// kafka-topics --alter --partitions, not the number to add.
	Partitions int32
	// DryRun asks the broker to validate the change without applying it.
	DryRun bool
}

// NewCmdTopicAddPartitions builds `kdr topic add-partitions`. runF replaces
// the run step in tests.
func NewCmdTopicAddPartitions(streams IO, g *globalOptions, runF func(*TopicAddPartitionsOptions) error) *cobra.Command {
	opts := &TopicAddPartitionsOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "add-partitions NAME --partitions N",
		Short: "Grow a topic to N partitions",
		Long: `Grow a topic to N partitions in all with CreatePartitions, as kafka-topics --alter --partitions N
does: N is the new total, not the number to add. Kafka cannot remove partitions, so N must be more than
the topic has. Records with a key go to the partition of the key's hash modulo the partition count, so
after the change new records of a key may land in another partition than the key's earlier records.`,
		Example: `  kdr topic add-partitions orders --partitions 12
  kdr topic add-partitions orders --partitions 12 --dry-run`,
		Args: exactArgs(1, "one topic name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Conn, err = resolveConn(cmd, streams, g); err != nil {
				return err
			}
			opts.Topic = args[0]
			if opts.Partitions <= 0 {
				return usageError{fmt.Errorf("--partitions %d: want the topic's new partition count, more than it has now", opts.Partitions)}
			}
			if runF != nil {
				return runF(opts)
			}
			return runTopicAddPartitions(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.Int32Var(&opts.Partitions, "partitions", 0, "the topic's new partition count, in all (required)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "have the broker validate the change without applying it")
	_ = cmd.MarkFlagRequired("partitions")
	return cmd
}

// topicPartitionsAdded is the result of `kdr topic add-partitions`.
type topicPartitionsAdded struct {
	Topic  string `json:"topic"`
	DryRun bool   `json:"dry_run"`
	// From and To are the partition counts before and after.
	From int32 `json:"from"`
	To   int32 `json:"to"`
}

func runTopicAddPartitions(ctx context.Context, opts *TopicAddPartitionsOptions) error {
	return runTopicChange(ctx, opts.Conn, opts.IO, func(ctx context.Context, adm *kadm.Client) (topicPartitionsAdded, error) {
		return addPartitions(ctx, adm, opts)
	}, func(r topicPartitionsAdded) topicChange {
		if r.DryRun {
			return topicChange{}
		}
		return topicChange{r.Topic, r.To, fmt.Sprintf("topic %s was grown to %d partitions", r.Topic, r.To)}
	}, printTopicPartitionsAdded)
}

func addPartitions(ctx context.Context, adm *kadm.Client, opts *TopicAddPartitionsOptions) (topicPartitionsAdded, error) {
	td, err := describeTopic(ctx, adm, opts.Conn, opts.Topic, -1)
	if err != nil {
		return topicPartitionsAdded{}, err
	}
	current := int32(len(td.Partitions))
	// Checked here, not left to the broker, to name the current count
	// whatever the cluster's INVALID_PARTITIONS message says.
	if opts.Partitions <= current {
		return topicPartitionsAdded{}, usageError{fmt.Errorf("--partitions %d: topic %q has %d partitions; give the new total, more than %d (partitions cannot be removed)",
			opts.Partitions, opts.Topic, current, current)}
	}

	what := fmt.Sprintf("growing topic %q from %d to %d partitions", opts.Topic, current, opts.Partitions)
	do := adm.UpdatePartitions
	if opts.DryRun {
		what = "validating " + what
		do = adm.ValidateUpdatePartitions
	}
	resps, err := do(ctx, int(opts.Partitions), opts.Topic)
	if err != nil {
		return topicPartitionsAdded{}, opts.Conn.requestErr(what, err)
	}
	r, ok := resps[opts.Topic]
	if !ok {
		return topicPartitionsAdded{}, fmt.Errorf("%s: the broker's answer does not mention the topic", what)
	}
	if r.Err != nil {
		return topicPartitionsAdded{}, fmt.Errorf("%s: %w", what, kafkaErr(r.Err, r.ErrMessage))
	}
	return topicPartitionsAdded{Topic: opts.Topic, DryRun: opts.DryRun, From: current, To: opts.Partitions}, nil
}

func printTopicPartitionsAdded(w io.Writer, r topicPartitionsAdded) error {
	if r.DryRun {
		_, err := fmt.Fprintf(w, "Dry run: the broker accepts growing topic %s from %d to %d partitions (nothing was changed)\n", r.Topic, r.From, r.To)
		return err
	}
	_, err := fmt.Fprintf(w, "Added %d partitions to topic %s: %d -> %d\n", r.To-r.From, r.Topic, r.From, r.To)
	return err
}
