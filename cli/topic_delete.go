package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TopicDeleteOptions are the parsed options of `kdr topic delete`.
type TopicDeleteOptions struct {
	IO   IO
	Conn ConnOptions

	Topics []string
	// IfExists treats a topic that does not exist as deleted.
	IfExists bool
}

// NewCmdTopicDelete builds `kdr topic delete`. runF replaces the run step in
// tests.
func NewCmdTopicDelete(streams IO, g *globalOptions, runF func(*TopicDeleteOptions) error) *cobra.Command {
	opts := &TopicDeleteOptions{IO: streams}
	cmd := &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete topics and all their records",
		Example: "  kdr topic delete orders\n  kdr topic delete orders payments --brokers 127.0.0.1:9092",
		Args:    minArgs(1, "one or more topic names"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Conn, err = resolveConn(cmd, streams, g); err != nil {
				return err
			}
			opts.Topics = args
			if runF != nil {
				return runF(opts)
			}
			return runTopicDelete(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.IfExists, "if-exists", false, "succeed for topics that do not exist")
	return cmd
}

// topicsDeleted is the result of `kdr topic delete`.
type topicsDeleted struct {
	Topics []topicDeleted `json:"topics"`
}

type topicDeleted struct {
	Topic string `json:"topic"`
	// Deleted is false for a missing topic under --if-exists.
	Deleted bool `json:"deleted"`
}

func runTopicDelete(ctx context.Context, opts *TopicDeleteOptions) error {
	return runAdmin(ctx, opts.Conn, opts.IO.Out, func(ctx context.Context, adm *kadm.Client) (topicsDeleted, error) {
		return deleteTopics(ctx, adm, opts)
	}, printTopicsDeleted, func(r topicsDeleted) bool { return len(r.Topics) > 0 })
}

// deleteTopics deletes the topics and returns those it deleted (or skipped
// under IfExists) and an error naming each topic it could not delete.
func deleteTopics(ctx context.Context, adm *kadm.Client, opts *TopicDeleteOptions) (topicsDeleted, error) {
	res := topicsDeleted{Topics: []topicDeleted{}}
	resps, err := adm.DeleteTopics(ctx, opts.Topics...)
	if err != nil {
		return res, opts.Conn.requestErr("deleting topics", err)
	}
	var errs []error
	for _, name := range opts.Topics {
		r, ok := resps[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("deleting topic %q: the broker's answer does not mention the topic", name))
		case errors.Is(r.Err, kerr.UnknownTopicOrPartition) && opts.IfExists:
			res.Topics = append(res.Topics, topicDeleted{Topic: name})
		case errors.Is(r.Err, kerr.UnknownTopicOrPartition):
			errs = append(errs, fmt.Errorf("deleting topic %q: %w (pass --if-exists to ignore missing topics)", name, r.Err))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("deleting topic %q: %w", name, kafkaErr(r.Err, r.ErrMessage)))
		default:
			res.Topics = append(res.Topics, topicDeleted{Topic: name, Deleted: true})
		}
	}
	return res, errors.Join(errs...)
}

func printTopicsDeleted(w io.Writer, r topicsDeleted) error {
	for _, t := range r.Topics {
		var err error
		if t.Deleted {
			_, err = fmt.Fprintf(w, "Deleted topic %s\n", t.Topic)
		} else {
			_, err = fmt.Fprintf(w, "Topic %s does not exist; nothing to delete\n", t.Topic)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
