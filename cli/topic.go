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

// NewCmdTopic builds `kdr topic` and its subcommands.
func NewCmdTopic(streams IO, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, reconfigure, grow and delete topics",
		Long: `Manage the topics of any Kafka cluster (Apache Kafka, Redpanda, MSK, kdr) with the admin API.

The cluster is given with --brokers or KDR_BROKERS.`,
		Args: cobra.NoArgs,
	}
	addConnFlags(cmd)
	cmd.AddCommand(
		NewCmdTopicCreate(streams, g, nil),
		NewCmdTopicList(streams, g, nil),
		NewCmdTopicDescribe(streams, g, nil),
		NewCmdTopicDelete(streams, g, nil),
		NewCmdTopicAlterConfig(streams, g, nil),
		NewCmdTopicAddPartitions(streams, g, nil),
	)
	return cmd
}

// TopicCreateOptions are the parsed options of `kdr topic create`.
type TopicCreateOptions struct {
	IO   IO
	Conn ConnOptions

	Topic string
	// Partitions and ReplicationFactor: -1 uses the broker's default.
	Partitions        int32
	ReplicationFactor int16
	Configs           []keyValue
	IfNotExists       bool
}

// NewCmdTopicCreate builds `kdr topic create`. runF replaces the run step in
// tests.
func NewCmdTopicCreate(streams IO, g *globalOptions, runF func(*TopicCreateOptions) error) *cobra.Command {
	opts := &TopicCreateOptions{IO: streams}
	var configs []string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Example: `  kdr topic create orders --partitions 6 --replication-factor 3 --config retention.ms=86400000
  kdr topic create orders --if-not-exists`,
		Args: exactArgs(1, "one topic name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Conn, err = resolveConn(cmd, streams, g); err != nil {
				return err
			}
			opts.Topic = args[0]
			if opts.Configs, err = parseKeyValues("config", configs, false); err != nil {
				return err
			}
			if opts.Partitions == 0 || opts.Partitions < -1 {
				return usageError{fmt.Errorf("--partitions %d: want a positive count, or -1 for the broker default", opts.Partitions)}
			}
			if opts.ReplicationFactor == 0 || opts.ReplicationFactor < -1 {
				return usageError{fmt.Errorf("--replication-factor %d: want a positive count, or -1 for the broker default", opts.ReplicationFactor)}
			}
			if runF != nil {
				return runF(opts)
			}
			return runTopicCreate(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.Int32Var(&opts.Partitions, "partitions", -1, "number of partitions (-1: the broker's num.partitions)")
	f.Int16Var(&opts.ReplicationFactor, "replication-factor", -1, "replicas per partition (-1: the broker's default.replication.factor)")
	f.StringArrayVar(&configs, "config", nil, "topic config as key=value (repeatable), e.g. retention.ms=86400000")
	f.BoolVar(&opts.IfNotExists, "if-not-exists", false, "succeed if the topic already exists")
	return cmd
}

// topicCreated is the result of `kdr topic create`.
type topicCreated struct {
	Topic             string `json:"topic"`
	ID                string `json:"id"`
	Partitions        int32  `json:"partitions"`
	ReplicationFactor int16  `json:"replication_factor"`
	// Created is false when the topic existed and --if-not-exists was given.
	Created bool `json:"created"`
}

func runTopicCreate(ctx context.Context, opts *TopicCreateOptions) error {
	return runTopicChange(ctx, opts.Conn, opts.IO, func(ctx context.Context, adm *kadm.Client) (topicCreated, error) {
		return createTopic(ctx, adm, opts)
	}, func(r topicCreated) topicChange {
		if !r.Created {
			return topicChange{}
		}
		return topicChange{r.Topic, r.Partitions, "topic " + r.Topic + " was created"}
	}, printTopicCreated)
}

func createTopic(ctx context.Context, adm *kadm.Client, opts *TopicCreateOptions) (topicCreated, error) {
	what := fmt.Sprintf("creating topic %q", opts.Topic)
	configs := make(map[string]*string, len(opts.Configs))
	for _, kv := range opts.Configs {
		configs[kv.Key] = kadm.StringPtr(kv.Value)
	}
	resps, err := adm.CreateTopics(ctx, opts.Partitions, opts.ReplicationFactor, configs, opts.Topic)
	if err != nil {
		return topicCreated{}, opts.Conn.requestErr(what, err)
	}
	r, ok := resps[opts.Topic]
	if !ok {
		return topicCreated{}, fmt.Errorf("%s: the broker's answer does not mention the topic", what)
	}
	res := topicCreated{Topic: opts.Topic, ID: topicIDString(r.ID), Partitions: r.NumPartitions, ReplicationFactor: r.ReplicationFactor, Created: true}
	switch {
	case errors.Is(r.Err, kerr.TopicAlreadyExists) && opts.IfNotExists:
		res.Created = false
		return fillTopicShape(ctx, adm, opts.Conn, res)
	case errors.Is(r.Err, kerr.TopicAlreadyExists):
		return topicCreated{}, fmt.Errorf("%s: %w (pass --if-not-exists to accept an existing topic)", what, kafkaErr(r.Err, r.ErrMessage))
	case r.Err != nil:
		return topicCreated{}, fmt.Errorf("%s: %w", what, kafkaErr(r.Err, r.ErrMessage))
	}
	if res.Partitions <= 0 || res.ReplicationFactor <= 0 || res.ID == "" {
		// CreateTopics before v5 does not echo the topic's shape.
		return fillTopicShape(ctx, adm, opts.Conn, res)
	}
	return res, nil
}

// fillTopicShape completes res from the topic's metadata.
func fillTopicShape(ctx context.Context, adm *kadm.Client, conn ConnOptions, res topicCreated) (topicCreated, error) {
	tds, err := adm.ListTopics(ctx, res.Topic)
	if err != nil {
		return res, conn.requestErr(fmt.Sprintf("reading metadata of topic %q", res.Topic), err)
	}
	td, ok := tds[res.Topic]
	if !ok || td.Err != nil {
		// The topic exists but metadata has not caught up; report what
		// the create answer said.
		return res, nil
	}
	s := summarizeTopic(td)
	res.ID, res.Partitions, res.ReplicationFactor = s.ID, s.Partitions, s.ReplicationFactor
	return res, nil
}

func printTopicCreated(w io.Writer, r topicCreated) error {
	verb := "Created topic"
	if !r.Created {
		verb = "Topic already exists:"
	}
	_, err := fmt.Fprintf(w, "%s %s (id %s, %d partitions, replication factor %d)\n",
		verb, r.Topic, orDash(r.ID), r.Partitions, r.ReplicationFactor)
	return err
}
