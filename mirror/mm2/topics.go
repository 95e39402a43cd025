package mm2

import "strings"

// HeartbeatsTopic is the topic heartbeats are emitted to on a flow's target.
// Replicated onward it becomes <alias>.heartbeats (by the naming policy).
const HeartbeatsTopic = "heartbeats"

const (
	offsetSyncsPrefix = "mm2-offset-syncs."
	internalSuffix    = ".internal"
	checkpointsSuffix = ".checkpoints.internal"
)

// OffsetSyncsTopic names the topic holding a flow's offset syncs for target
// cluster targetAlias: "mm2-offset-syncs.<target>.internal". MM2 keeps it on
// the source cluster by default (offset-syncs.topic.location=source).
func OffsetSyncsTopic(targetAlias string) string {
	return offsetSyncsPrefix + targetAlias + internalSuffix
}

// CheckpointsTopic names the topic, on the target, holding checkpoints of
// groups from source cluster sourceAlias: "<source>.checkpoints.internal".
func CheckpointsTopic(sourceAlias string) string {
	return sourceAlias + checkpointsSuffix
}

// IsOffsetSyncsTopic reports whether name is an offset-syncs topic and, if
// so, for which target alias.
func IsOffsetSyncsTopic(name string) (targetAlias string, ok bool) {
	rest, ok := strings.CutPrefix(name, offsetSyncsPrefix)
	if !ok {
		return "", false
	}
	alias, ok := strings.CutSuffix(rest, internalSuffix)
	if !ok || alias == "" {
		return "", false
	}
	return alias, true
}

// IsCheckpointsTopic reports whether name is a checkpoints topic and, if so,
// for which source alias.
func IsCheckpointsTopic(name string) (sourceAlias string, ok bool) {
	alias, ok := strings.CutSuffix(name, checkpointsSuffix)
	if !ok || alias == "" {
		return "", false
	}
	return alias, true
}

// IsInternalTopic reports whether MM2 (with the default "." separator)
// treats name as internal and never replicates it:
//
//   - Kafka's internal topics: a "__" or "." prefix (__consumer_offsets,
//     __transaction_state);
//   - Connect's and MM2's topics: a "-internal" or ".internal" suffix. Every
//     topic MM2 creates with the "mm2-" prefix ends so (mm2-offset-syncs.*,
//     mm2-configs.*, mm2-offsets.*, mm2-status.*), as do the checkpoints
//     topics, so the suffix rule covers them; a user topic merely starting
//     with "mm2-" is not internal, in MM2 or here.
//
// Heartbeats topics are not internal: MM2 replicates them on purpose (even
// when the topic filter excludes them) so each cluster's heartbeats show the
// paths records travel. A naming policy with another separator adds
// "<sep>internal"; see package mirror/naming.
func IsInternalTopic(name string) bool {
	return strings.HasPrefix(name, "__") || strings.HasPrefix(name, ".") ||
		strings.HasSuffix(name, "-internal") || strings.HasSuffix(name, internalSuffix)
}
