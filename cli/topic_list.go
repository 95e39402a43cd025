package cli

import (
	"context"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TopicListOptions are the parsed options of `kdr topic list`.
type TopicListOptions struct {
	IO   IO
	Conn ConnOptions

	// Internal includes internal topics (__consumer_offsets and other
	// names starting with "__").
	Internal bool
}

// NewCmdTopicList builds `kdr topic list`. runF replaces the run step in
// tests.
func NewCmdTopicList(streams IO, g *globalOptions, runF func(*TopicListOptions) error) *cobra.Command {
	opts := &TopicListOptions{IO: streams}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Example: "  kdr topic list\n  kdr topic list --brokers 127.0.0.1:19092 --output json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if opts.Conn, err = resolveConn(cmd, streams, g); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runTopicList(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Internal, "internal", false, "include internal topics (names starting with __)")
	return cmd
}

// topicSummary is one topic in `kdr topic list`.
type topicSummary struct {
	Name              string `json:"name"`
	ID                string `json:"id"`
	Partitions        int32  `json:"partitions"`
	ReplicationFactor int16  `json:"replication_factor"`
	Internal          bool   `json:"internal"`
}

// topicList is the result of `kdr topic list`.
type topicList struct {
	Topics []topicSummary `json:"topics"`
}

func runTopicList(ctx context.Context, opts *TopicListOptions) error {
	ctx, cancel := opts.Conn.withTimeout(ctx)
	defer cancel()
	adm, err := opts.Conn.newAdmin()
	if err != nil {
		return err
	}
	defer adm.Close()
	tds, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return opts.Conn.requestErr("listing topics", err)
	}
	return printResult(opts.IO.Out, opts.Conn.Output, listTopics(tds, opts.Internal), printTopicList)
}

// listTopics summarizes topics sorted by name, leaving out internal ones
// unless internal is set.
func listTopics(tds kadm.TopicDetails, internal bool) topicList {
	res := topicList{Topics: []topicSummary{}}
	for _, td := range tds.Sorted() {
		if td.Err != nil {
			continue
		}
		s := summarizeTopic(td)
		if s.Internal && !internal {
			continue
		}
		res.Topics = append(res.Topics, s)
	}
	return res
}

func summarizeTopic(td kadm.TopicDetail) topicSummary {
	s := topicSummary{
		Name:       td.Topic,
		ID:         topicIDString(td.ID),
		Partitions: int32(len(td.Partitions)),
		Internal:   td.IsInternal || strings.HasPrefix(td.Topic, "__"),
	}
	for _, p := range td.Partitions {
		s.ReplicationFactor = max(s.ReplicationFactor, int16(len(p.Replicas)))
	}
	return s
}

func printTopicList(w io.Writer, r topicList) error {
	t := newTable(w, "NAME", "ID", "PARTITIONS", "RF")
	for _, s := range r.Topics {
		t.row(s.Name, orDash(s.ID), s.Partitions, s.ReplicationFactor)
	}
	return t.flush()
}
