package naming

import "strings"

// Identity is MM2's IdentityReplicationPolicy: topics keep their names on the
// target, so a name cannot say where a topic came from and name-based cycle
// detection is impossible. kdr stops loops per record instead, with the
// kdr-origin header (see WithHop and Visited).
//
// Heartbeats are the exception, as in MM2: they are renamed like Prefix
// ("heartbeats" from east is "east.heartbeats") so that each cluster's
// heartbeats stay apart and still trace the replication paths. A topic counts
// as heartbeats if it is "heartbeats" or ends in "<sep>heartbeats". MM2 uses a
// looser test, any name ending in "heartbeats", which would also rename a
// user topic such as "service-heartbeats"; kdr keeps such topics as they are.
type Identity struct {
	// Separator is used only to name replicated heartbeats topics and
	// internal topics; "" means ".".
	Separator string
}

func (i Identity) prefix() Prefix    { return Prefix{Separator: i.Separator} }
func (i Identity) separator() string { return i.prefix().separator() }
func (i Identity) heartbeats(t string) bool {
	return t == HeartbeatsTopic || strings.HasSuffix(t, i.separator()+HeartbeatsTopic)
}

// RemoteTopic returns topic unchanged, except for heartbeats topics.
func (i Identity) RemoteTopic(sourceAlias, topic string) string {
	if i.heartbeats(topic) {
		return i.prefix().RemoteTopic(sourceAlias, topic)
	}
	return topic
}

// SourceAlias is known only for heartbeats topics; otherwise ok is false.
// (MM2 can be given a fixed source.cluster.alias to return; kdr has the
// provenance header instead.)
func (i Identity) SourceAlias(topic string) (string, bool) {
	if i.heartbeats(topic) {
		return i.prefix().SourceAlias(topic)
	}
	return "", false
}

// UpstreamTopic is known only for heartbeats topics.
func (i Identity) UpstreamTopic(topic string) (string, bool) {
	if i.heartbeats(topic) {
		return i.prefix().UpstreamTopic(topic)
	}
	return "", false
}

// OriginalTopic returns topic, or for a heartbeats topic "heartbeats".
func (i Identity) OriginalTopic(topic string) string {
	return originalTopic(i, topic)
}

// IsInternal is Prefix's rule with the same separator.
func (i Identity) IsInternal(topic string) bool {
	return i.prefix().IsInternal(topic)
}
