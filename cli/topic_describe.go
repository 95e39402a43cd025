package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicDescribeOptions are the parsed options of `kdr topic describe`.
type TopicDescribeOptions struct {
	IO   IO
	Conn ConnOptions

	Topics []string
	// AllConfigs shows every config, not only those set on the topic.
	AllConfigs bool
}

// NewCmdTopicDescribe builds `kdr topic describe`. runF replaces the run
// step in tests.
func NewCmdTopicDescribe(streams IO, g *globalOptions, runF func(*TopicDescribeOptions) error) *cobra.Command {
	opts := &TopicDescribeOptions{IO: streams}
	cmd := &cobra.Command{
		Use:     "describe NAME...",
		Short:   "Show topics' partitions, offsets and configs",
		Example: "  kdr topic describe orders\n  kdr topic describe orders --output json",
		Long: `Show each topic's id, its partitions (leader, leader epoch, replicas, in-sync replicas, log start
offset and high watermark) and the configs set on the topic (--all-configs: every config with its
source).`,
		Args: minArgs(1, "one or more topic names"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Conn, err = resolveConn(cmd, streams, g); err != nil {
				return err
			}
			opts.Topics = args
			if runF != nil {
				return runF(opts)
			}
			return runTopicDescribe(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.AllConfigs, "all-configs", false, "show all configs, including defaults, not only those set on the topic")
	return cmd
}

// topicDescriptions is the result of `kdr topic describe`.
type topicDescriptions struct {
	Topics []topicDescription `json:"topics"`
}

type topicDescription struct {
	Name       string                 `json:"name"`
	ID         string                 `json:"id"`
	Internal   bool                   `json:"internal"`
	Partitions []partitionDescription `json:"partitions"`
	Configs    []topicConfig          `json:"configs"`
}

type partitionDescription struct {
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	LogStartOffset int64   `json:"log_start_offset"`
	HighWatermark  int64   `json:"high_watermark"`
	// Error is why the partition or its offsets could not be read.
	Error string `json:"error,omitempty"`
}

type topicConfig struct {
	Name string `json:"name"`
	// Value is null for sensitive configs.
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive"`
}

func runTopicDescribe(ctx context.Context, opts *TopicDescribeOptions) error {
	return runAdmin(ctx, opts.Conn, opts.IO.Out, func(ctx context.Context, adm *kadm.Client) (topicDescriptions, error) {
		return describeTopics(ctx, adm, opts)
	}, printTopicDescriptions, func(r topicDescriptions) bool { return len(r.Topics) > 0 })
}

// describeTopics describes the topics that exist and returns an error
// naming those that could not be described.
func describeTopics(ctx context.Context, adm *kadm.Client, opts *TopicDescribeOptions) (topicDescriptions, error) {
	res := topicDescriptions{Topics: []topicDescription{}}
	tds, err := adm.ListTopics(ctx, opts.Topics...)
	if err != nil {
		return res, opts.Conn.requestErr("reading topic metadata", err)
	}
	var found []string
	var errs []error
	for _, name := range opts.Topics {
		td, ok := tds[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("topic %q: not in the broker's metadata answer", name))
		case td.Err != nil:
			errs = append(errs, fmt.Errorf("topic %q: %w", name, td.Err))
		default:
			found = append(found, name)
		}
	}
	if len(found) == 0 {
		return res, errors.Join(errs...)
	}
	// A broker that is down fails only its partitions' offsets: describe
	// the rest (missing offsets print as -1), as kafka-topics does.
	starts, err := adm.ListStartOffsets(ctx, found...)
	if err != nil && !isShardErr(err) {
		return res, opts.Conn.requestErr("listing log start offsets", err)
	}
	ends, err := adm.ListEndOffsets(ctx, found...)
	if err != nil && !isShardErr(err) {
		return res, opts.Conn.requestErr("listing high watermarks", err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, found...)
	if err != nil {
		return res, opts.Conn.requestErr("describing topic configs", err)
	}
	for _, name := range found {
		d := topicDescription{
			Name:       name,
			ID:         topicIDString(tds[name].ID),
			Internal:   summarizeTopic(tds[name]).Internal,
			Partitions: describePartitions(tds[name].Partitions, starts, ends),
			Configs:    []topicConfig{},
		}
		rc, err := configs.On(name, nil)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("topic %q: configs missing from the broker's answer", name))
		case rc.Err != nil:
			errs = append(errs, fmt.Errorf("topic %q: describing configs: %w", name, kafkaErr(rc.Err, rc.ErrMessage)))
		default:
			d.Configs = selectConfigs(rc.Configs, opts.AllConfigs)
		}
		res.Topics = append(res.Topics, d)
	}
	return res, errors.Join(errs...)
}

func describePartitions(ps kadm.PartitionDetails, starts, ends kadm.ListedOffsets) []partitionDescription {
	out := make([]partitionDescription, 0, len(ps))
	for _, p := range ps.Sorted() {
		d := partitionDescription{
			Partition:      p.Partition,
			Leader:         p.Leader,
			LeaderEpoch:    p.LeaderEpoch,
			Replicas:       nonNil(p.Replicas),
			ISR:            nonNil(p.ISR),
			LogStartOffset: -1,
			HighWatermark:  -1,
		}
		var errs []error
		if p.Err != nil {
			errs = append(errs, p.Err)
		}
		if o, ok := starts.Lookup(p.Topic, p.Partition); ok && o.Err == nil {
			d.LogStartOffset = o.Offset
		} else if ok {
			errs = append(errs, fmt.Errorf("log start offset: %w", o.Err))
		}
		if o, ok := ends.Lookup(p.Topic, p.Partition); ok && o.Err == nil {
			d.HighWatermark = o.Offset
		} else if ok {
			errs = append(errs, fmt.Errorf("high watermark: %w", o.Err))
		}
		if err := errors.Join(errs...); err != nil {
			d.Error = err.Error()
		}
		out = append(out, d)
	}
	return out
}

// selectConfigs keeps the configs set on the topic itself, or all of them,
// sorted by name.
func selectConfigs(cs []kadm.Config, all bool) []topicConfig {
	out := []topicConfig{}
	for _, c := range cs {
		if !all && c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			continue
		}
		out = append(out, topicConfig{Name: c.Key, Value: c.Value, Source: c.Source.String(), Sensitive: c.Sensitive})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func nonNil(ns []int32) []int32 {
	if ns == nil {
		return []int32{}
	}
	return ns
}

func printTopicDescriptions(w io.Writer, r topicDescriptions) error {
	for i, d := range r.Topics {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := printTopicDescription(w, d); err != nil {
			return err
		}
	}
	return nil
}

func printTopicDescription(w io.Writer, d topicDescription) error {
	fmt.Fprintf(w, "Topic: %s\nID: %s\n", d.Name, orDash(d.ID))
	if d.Internal {
		fmt.Fprintln(w, "Internal: true")
	}
	fmt.Fprintf(w, "Partitions: %d\n", len(d.Partitions))
	header := []string{"PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START", "HIGH-WATERMARK"}
	withErrors := slices.ContainsFunc(d.Partitions, func(p partitionDescription) bool { return p.Error != "" })
	if withErrors {
		header = append(header, "ERROR")
	}
	t := newTable(w, header...)
	for _, p := range d.Partitions {
		cells := []any{p.Partition, p.Leader, p.LeaderEpoch, int32List(p.Replicas), int32List(p.ISR),
			offsetString(p.LogStartOffset), offsetString(p.HighWatermark)}
		if withErrors {
			cells = append(cells, p.Error)
		}
		t.row(cells...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(d.Configs) == 0 {
		_, err := fmt.Fprintln(w, "Configs: none set on the topic (--all-configs shows defaults)")
		return err
	}
	fmt.Fprintln(w, "Configs:")
	ct := newTable(w, "  NAME", "VALUE", "SOURCE")
	for _, c := range d.Configs {
		v := "(sensitive)"
		if c.Value != nil {
			v = *c.Value
		} else if !c.Sensitive {
			v = "(null)"
		}
		ct.row("  "+c.Name, v, c.Source)
	}
	return ct.flush()
}

// isShardErr reports whether err is kadm's partial failure: some brokers
// answered, some did not.
func isShardErr(err error) bool {
	var se *kadm.ShardErrors
	return errors.As(err, &se) && !se.AllFailed
}
