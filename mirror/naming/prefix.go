package naming

import (
	"strings"

	"github.com/kdr-io/kdr/mirror/mm2"
)

// Prefix is MM2's DefaultReplicationPolicy: a topic from cluster "east"
// becomes "east.orders" on the target, and "west.east.orders" one hop further.
// The zero value uses ".".
type Prefix struct {
	// Separator goes between alias and topic; "" means "." (MM2
	// replication.policy.separator).
	Separator string
	// DotInternalTopics names internal topics with "." whatever Separator is
	// (MM2 replication.policy.internal.topic.separator.enabled=false). By
	// default, as in MM2, they use Separator: "mm2-offset-syncs_west_internal".
	DotInternalTopics bool
}

func (p Prefix) separator() string {
	if p.Separator == "" {
		return "."
	}
	return p.Separator
}

func (p Prefix) internalSeparator() string {
	if p.DotInternalTopics {
		return "."
	}
	return p.separator()
}

// RemoteTopic returns "<sourceAlias><sep><topic>". Heartbeats are renamed
// like any topic: "heartbeats" from east is "east.heartbeats".
func (p Prefix) RemoteTopic(sourceAlias, topic string) string {
	return sourceAlias + p.separator() + topic
}

// SourceAlias returns the text before the first separator. As in MM2 (which
// splits with Java's String.split, dropping trailing empty pieces) the topic
// is remote only if something other than separators follows the first one:
// "east.orders" → east; "east." and "east.." are not remote; ".orders" is
// remote from the empty alias (such names are internal anyway). A local topic
// with a dot in its name ("payments.v1") looks remote from "payments"; that is
// MM2's behaviour too, and why aliases must not contain the separator.
func (p Prefix) SourceAlias(topic string) (string, bool) {
	sep := p.separator()
	alias, rest, found := strings.Cut(topic, sep)
	if !found || onlySeparators(rest, sep) {
		return "", false
	}
	return alias, true
}

// onlySeparators reports whether s is zero or more repeats of sep.
func onlySeparators(s, sep string) bool {
	for s != "" {
		var ok bool
		if s, ok = strings.CutPrefix(s, sep); !ok {
			return false
		}
	}
	return true
}

// UpstreamTopic strips the first hop: "west.east.orders" → "east.orders".
func (p Prefix) UpstreamTopic(topic string) (string, bool) {
	alias, ok := p.SourceAlias(topic)
	if !ok {
		return "", false
	}
	return topic[len(alias)+len(p.separator()):], true
}

// OriginalTopic strips every hop: "west.east.orders" → "orders". Note that
// under "." a dotted local name loses its dotted parts too ("a.b.c" → "c"),
// exactly as MM2 computes it.
func (p Prefix) OriginalTopic(topic string) string {
	return originalTopic(p, topic)
}

func originalTopic(p UpstreamPolicy, topic string) string {
	for range len(topic) + 1 {
		up, ok := p.UpstreamTopic(topic)
		if !ok || up == topic {
			break
		}
		topic = up
	}
	return topic
}

// IsInternal reports Kafka's, Connect's and MM2's internal topics: a "__" or
// "." prefix, a "-internal" or ".internal" suffix, or "<sep>internal" for
// the configured internal separator (see mm2.IsInternalTopic).
func (p Prefix) IsInternal(topic string) bool {
	return mm2.IsInternalTopic(topic) || strings.HasSuffix(topic, p.internalSeparator()+"internal")
}

// OffsetSyncsTopic names the offset-syncs topic for target cluster alias with
// this policy's internal separator ("mm2-offset-syncs.<alias>.internal" by
// default, = mm2.OffsetSyncsTopic).
func (p Prefix) OffsetSyncsTopic(alias string) string {
	s := p.internalSeparator()
	return "mm2-offset-syncs" + s + alias + s + "internal"
}

// CheckpointsTopic names the checkpoints topic for source cluster alias
// ("<alias>.checkpoints.internal" by default, = mm2.CheckpointsTopic).
func (p Prefix) CheckpointsTopic(alias string) string {
	s := p.internalSeparator()
	return alias + s + "checkpoints" + s + "internal"
}
