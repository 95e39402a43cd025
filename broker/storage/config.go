package storage

import (
	"fmt"
	"math"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Config is the topic-level configuration of one partition log. Each field
// mirrors the Kafka topic config named in its comment. The zero value is not
// valid; start from DefaultConfig.
type Config struct {
	SegmentBytes           int64   // segment.bytes: roll when the active segment would grow past this
	SegmentMs              int64   // segment.ms: roll when the active segment is older than this
	RetentionMs            int64   // retention.ms: delete segments older than this; -1 keeps them
	RetentionBytes         int64   // retention.bytes: delete old segments beyond this size; -1 is unlimited
	CleanupPolicy          string  // cleanup.policy: "delete", "compact" or "compact,delete"
	MaxMessageBytes        int32   // max.message.bytes: largest record batch accepted
	TimestampType          string  // message.timestamp.type: "CreateTime" or "LogAppendTime"
	IndexIntervalBytes     int32   // index.interval.bytes: bytes between index entries
	FlushMessages          int64   // flush.messages: fsync after this many records
	FlushMs                int64   // flush.ms: fsync at least this often (checked by Maintain)
	DeleteRetentionMs      int64   // delete.retention.ms: how long compaction keeps tombstones
	MinCompactionLagMs     int64   // min.compaction.lag.ms: segments younger than this are not compacted
	MinCleanableDirtyRatio float64 // min.cleanable.dirty.ratio: uncompacted share that triggers compaction
}

const (
	day = 24 * 60 * 60 * 1000 // ms

	policyDelete        = "delete"
	policyCompact       = "compact"
	policyCompactDelete = "compact,delete"

	createTime    = "CreateTime"
	logAppendTime = "LogAppendTime"
)

// DefaultConfig returns Kafka's defaults: 1 GiB / 7 day segments, 7 day time
// retention and no size limit, delete policy, CreateTime, no forced fsync.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:           1 << 30,
		SegmentMs:              7 * day,
		RetentionMs:            7 * day,
		RetentionBytes:         -1,
		CleanupPolicy:          policyDelete,
		MaxMessageBytes:        1048588,
		TimestampType:          createTime,
		IndexIntervalBytes:     4096,
		FlushMessages:          math.MaxInt64,
		FlushMs:                math.MaxInt64,
		DeleteRetentionMs:      day,
		MinCompactionLagMs:     0,
		MinCleanableDirtyRatio: 0.5,
	}
}

// ConfigError is an invalid Config field, named by its Kafka config key. It
// unwraps to kerr.InvalidConfig.
type ConfigError struct {
	Key    string // the Kafka topic config, e.g. "segment.bytes"
	Value  string // the rejected value
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("storage: invalid %s=%s: %s", e.Key, e.Value, e.Reason)
}

func (e *ConfigError) Unwrap() error { return kerr.InvalidConfig }

// Validate reports the first field that Kafka would reject.
func (c Config) Validate() error {
	i64 := func(key string, v, lo, hi int64) error {
		if v < lo || v > hi {
			return &ConfigError{Key: key, Value: strconv.FormatInt(v, 10), Reason: fmt.Sprintf("want %d to %d", lo, hi)}
		}
		return nil
	}
	checks := []error{
		// Positions in the offset index are int32, so a segment cannot
		// grow past 2 GiB; 14 is Kafka's minimum (one empty batch fits).
		i64("segment.bytes", c.SegmentBytes, 14, math.MaxInt32),
		i64("segment.ms", c.SegmentMs, 1, math.MaxInt64),
		i64("retention.ms", c.RetentionMs, -1, math.MaxInt64),
		i64("retention.bytes", c.RetentionBytes, -1, math.MaxInt64),
		i64("max.message.bytes", int64(c.MaxMessageBytes), 0, math.MaxInt32),
		i64("index.interval.bytes", int64(c.IndexIntervalBytes), 0, math.MaxInt32),
		i64("flush.messages", c.FlushMessages, 1, math.MaxInt64),
		i64("flush.ms", c.FlushMs, 0, math.MaxInt64),
		i64("delete.retention.ms", c.DeleteRetentionMs, 0, math.MaxInt64),
		i64("min.compaction.lag.ms", c.MinCompactionLagMs, 0, math.MaxInt64),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	switch c.CleanupPolicy {
	case policyDelete, policyCompact, policyCompactDelete, "delete,compact":
	default:
		return &ConfigError{Key: "cleanup.policy", Value: c.CleanupPolicy, Reason: "want delete, compact or compact,delete"}
	}
	if c.TimestampType != createTime && c.TimestampType != logAppendTime {
		return &ConfigError{Key: "message.timestamp.type", Value: c.TimestampType, Reason: "want CreateTime or LogAppendTime"}
	}
	if math.IsNaN(c.MinCleanableDirtyRatio) || c.MinCleanableDirtyRatio < 0 || c.MinCleanableDirtyRatio > 1 {
		return &ConfigError{Key: "min.cleanable.dirty.ratio", Value: strconv.FormatFloat(c.MinCleanableDirtyRatio, 'g', -1, 64), Reason: "want 0 to 1"}
	}
	return nil
}

// compacts reports whether cleanup.policy includes compact.
func (c Config) compacts() bool { return c.CleanupPolicy != policyDelete }

// deletes reports whether cleanup.policy includes delete: only then do
// retention.ms and retention.bytes apply, as in Kafka.
func (c Config) deletes() bool { return c.CleanupPolicy != policyCompact }

func (c Config) logAppendTime() bool { return c.TimestampType == logAppendTime }
