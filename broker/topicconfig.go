package broker

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/kdr-io/kdr/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicConfig describes one topic-level config key: how to read its broker
// default, how to parse and apply a value, and what DescribeConfigs reports.
type topicConfig struct {
	name       string
	brokerName string // the broker property supplying the default
	typ        kmsg.ConfigType
	doc        string
	// def returns the broker-wide default as Kafka prints it.
	def func(c *Config) string
	// apply parses v into the effective settings; it is also the validator.
	apply func(t *topicSettings, v string) error
}

// topicSettings is everything a topic's configs decide: the storage settings
// of its partition logs plus broker-side settings.
type topicSettings struct {
	log               storage.Config
	minInsyncReplicas int32
}

func parseInt64(v string, lo int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", v)
	}
	if n < lo {
		return 0, fmt.Errorf("%d is below the minimum %d", n, lo)
	}
	return n, nil
}

func int64Config(name, brokerName, doc string, lo int64, get func(*storage.Config) *int64) topicConfig {
	return topicConfig{
		name: name, brokerName: brokerName, typ: kmsg.ConfigTypeLong, doc: doc,
		def: func(c *Config) string { l := c.Log; return strconv.FormatInt(*get(&l), 10) },
		apply: func(t *topicSettings, v string) error {
			n, err := parseInt64(v, lo)
			if err == nil {
				*get(&t.log) = n
			}
			return err
		},
	}
}

// topicConfigs is every topic config kdr accepts. A key not listed here is
// rejected with INVALID_CONFIG rather than silently stored and ignored.
var topicConfigs = []topicConfig{
	int64Config("retention.ms", "log.retention.ms", "How long a closed segment is kept; -1 keeps it forever.", -1,
		func(c *storage.Config) *int64 { return &c.RetentionMs }),
	int64Config("retention.bytes", "log.retention.bytes", "Largest size a partition may grow to before old segments are deleted; -1 is unlimited.", -1,
		func(c *storage.Config) *int64 { return &c.RetentionBytes }),
	int64Config("segment.bytes", "log.segment.bytes", "Segment file size at which the log rolls.", 14,
		func(c *storage.Config) *int64 { return &c.SegmentBytes }),
	int64Config("segment.ms", "log.roll.ms", "Age at which the active segment rolls even if not full.", 1,
		func(c *storage.Config) *int64 { return &c.SegmentMs }),
	int64Config("flush.messages", "log.flush.interval.messages", "Messages appended between forced fsyncs.", 1,
		func(c *storage.Config) *int64 { return &c.FlushMessages }),
	int64Config("flush.ms", "log.flush.interval.ms", "Longest time between forced fsyncs.", 0,
		func(c *storage.Config) *int64 { return &c.FlushMs }),
	int64Config("delete.retention.ms", "log.cleaner.delete.retention.ms", "How long tombstones survive compaction.", 0,
		func(c *storage.Config) *int64 { return &c.DeleteRetentionMs }),
	int64Config("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", "Minimum age of a record before it may be compacted.", 0,
		func(c *storage.Config) *int64 { return &c.MinCompactionLagMs }),
	{
		name: "cleanup.policy", brokerName: "log.cleanup.policy", typ: kmsg.ConfigTypeList,
		doc: "delete, compact, or compact,delete.",
		def: func(c *Config) string { return c.Log.CleanupPolicy },
		apply: func(t *topicSettings, v string) error {
			parts := strings.Split(strings.ReplaceAll(v, " ", ""), ",")
			sort.Strings(parts)
			norm := strings.Join(parts, ",")
			if norm != "delete" && norm != "compact" && norm != "compact,delete" {
				return fmt.Errorf("%q: want delete, compact or compact,delete", v)
			}
			t.log.CleanupPolicy = norm
			return nil
		},
	},
	{
		name: "max.message.bytes", brokerName: "message.max.bytes", typ: kmsg.ConfigTypeInt,
		doc: "Largest record batch accepted, after compression.",
		def: func(c *Config) string { return strconv.Itoa(int(c.Log.MaxMessageBytes)) },
		apply: func(t *topicSettings, v string) error {
			n, err := parseInt64(v, 0)
			if err == nil && n > 1<<31-1 {
				err = fmt.Errorf("%d does not fit an int32", n)
			}
			if err == nil {
				t.log.MaxMessageBytes = int32(n)
			}
			return err
		},
	},
	{
		name: "index.interval.bytes", brokerName: "log.index.interval.bytes", typ: kmsg.ConfigTypeInt,
		doc: "Bytes between offset index entries.",
		def: func(c *Config) string { return strconv.Itoa(int(c.Log.IndexIntervalBytes)) },
		apply: func(t *topicSettings, v string) error {
			n, err := parseInt64(v, 0)
			if err == nil && n > 1<<31-1 {
				err = fmt.Errorf("%d does not fit an int32", n)
			}
			if err == nil {
				t.log.IndexIntervalBytes = int32(n)
			}
			return err
		},
	},
	{
		name: "message.timestamp.type", brokerName: "log.message.timestamp.type", typ: kmsg.ConfigTypeString,
		doc: "CreateTime keeps the producer's timestamp; LogAppendTime stamps the broker's clock.",
		def: func(c *Config) string { return c.Log.TimestampType },
		apply: func(t *topicSettings, v string) error {
			if v != "CreateTime" && v != "LogAppendTime" {
				return fmt.Errorf("%q: want CreateTime or LogAppendTime", v)
			}
			t.log.TimestampType = v
			return nil
		},
	},
	{
		name: "min.cleanable.dirty.ratio", brokerName: "log.cleaner.min.cleanable.ratio", typ: kmsg.ConfigTypeDouble,
		doc: "Share of the log that must be uncompacted before the cleaner runs.",
		def: func(c *Config) string { return strconv.FormatFloat(c.Log.MinCleanableDirtyRatio, 'f', -1, 64) },
		apply: func(t *topicSettings, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				return fmt.Errorf("%q: want a number from 0 to 1", v)
			}
			t.log.MinCleanableDirtyRatio = f
			return nil
		},
	},
	{
		name: "min.insync.replicas", brokerName: "min.insync.replicas", typ: kmsg.ConfigTypeInt,
		doc: "Fewest in-sync replicas an acks=all write needs.",
		def: func(c *Config) string { return strconv.Itoa(int(c.MinInsyncReplicas)) },
		apply: func(t *topicSettings, v string) error {
			n, err := parseInt64(v, 1)
			if err == nil && n > 1<<31-1 {
				err = fmt.Errorf("%d does not fit an int32", n)
			}
			if err == nil {
				t.minInsyncReplicas = int32(n)
			}
			return err
		},
	},
	{
		name: "compression.type", brokerName: "compression.type", typ: kmsg.ConfigTypeString,
		doc: "kdr stores batches exactly as producers compressed them; only 'producer' is accepted.",
		def: func(*Config) string { return "producer" },
		apply: func(_ *topicSettings, v string) error {
			if v != "producer" {
				return fmt.Errorf("%q: kdr keeps the producer's compression; only 'producer' is supported", v)
			}
			return nil
		},
	},
	{
		name: "unclean.leader.election.enable", brokerName: "unclean.leader.election.enable", typ: kmsg.ConfigTypeBoolean,
		doc: "Allow electing an out-of-sync replica when no ISR member is alive (loses the records it lacks); off by default.",
		def: func(*Config) string { return "false" },
		apply: func(_ *topicSettings, v string) error {
			if v != "false" && v != "true" {
				return fmt.Errorf("%q: want true or false", v)
			}
			return nil // the controller reads it from the topic's configs
		},
	},
}

func lookupTopicConfig(name string) (*topicConfig, bool) {
	for i := range topicConfigs {
		if topicConfigs[i].name == name {
			return &topicConfigs[i], true
		}
	}
	return nil, false
}

// topicSettingsFor resolves a topic's effective settings from the broker
// defaults and its overrides, checking each override and the combination.
func (c *Config) topicSettingsFor(overrides map[string]string) (topicSettings, error) {
	t := topicSettings{log: c.Log, minInsyncReplicas: c.MinInsyncReplicas}
	for k, v := range overrides {
		def, ok := lookupTopicConfig(k)
		if !ok {
			return t, &configError{key: k, msg: "unknown topic config"}
		}
		if err := def.apply(&t, v); err != nil {
			return t, &configError{key: k, msg: err.Error()}
		}
	}
	if err := t.log.Validate(); err != nil {
		return t, &configError{msg: err.Error()}
	}
	return t, nil
}

// configError is an invalid topic config; it maps to INVALID_CONFIG with a
// message naming the key.
type configError struct{ key, msg string }

func (e *configError) Error() string {
	if e.key == "" {
		return e.msg
	}
	return fmt.Sprintf("config %s: %s", e.key, e.msg)
}

func (e *configError) Unwrap() error { return kerr.InvalidConfig }
