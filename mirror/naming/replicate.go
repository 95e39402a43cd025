package naming

import (
	"fmt"
	"slices"
)

// Rules decide which topics a flow replicates, as MM2's
// MirrorSourceConnector.shouldReplicateTopic does.
type Rules struct {
	Policy Policy // nil means Prefix{}
	// Topics selects topics (MM2 topics / topics.exclude). Build it with
	// DefaultTopicFilter or NewFilter; the zero Filter selects nothing.
	Topics Filter
	// FilterHeartbeats subjects heartbeats topics to Topics too (MM2
	// heartbeats.replication.enabled=false). By default they are replicated
	// whatever Topics says.
	FilterHeartbeats bool
}

// ShouldReplicate applies Rules with policy p and MM2's default topic filter.
// See Rules.ShouldReplicate.
func ShouldReplicate(p Policy, sourceAlias, targetAlias, topic string) (bool, string) {
	return Rules{Policy: p, Topics: DefaultTopicFilter()}.ShouldReplicate(sourceAlias, targetAlias, topic)
}

// ShouldReplicate reports whether topic, read on cluster sourceAlias, should
// be mirrored to cluster targetAlias, and why. The checks, in order:
//
//  1. source and target differ;
//  2. the topic is not internal (Policy.IsInternal: __consumer_offsets,
//     mm2-offset-syncs.west.internal, east.checkpoints.internal, ...);
//  3. the topic filter selects it, or it is a heartbeats topic ("heartbeats",
//     "east.heartbeats") and FilterHeartbeats is off;
//  4. it is not a cycle: its name does not say it has already been on the
//     target, at any depth. Under Prefix, "west.east.orders" (on central,
//     mirrored east→west→central) is a cycle to east and to west, and fine
//     to a fourth cluster. Only the target is checked, as in MM2: the same
//     topic may go back to its immediate source's neighbours, and
//     "east.orders" read on east itself is not a cycle to west.
//
// Under Identity, names carry no source (heartbeats apart), so step 4 passes
// and loops must be stopped per record with the kdr-origin header (Visited).
//
// Examples, Prefix with "." and the default filter:
//
//	east → west  orders                 true   (becomes east.orders)
//	west → east  east.orders            false  cycle: came from east
//	west → central east.orders          true   (becomes west.east.orders)
//	central → east west.east.orders     false  cycle: east is in [west east]
//	central → west west.east.orders     false  cycle: west is in [west east]
//	east → west  heartbeats             true   heartbeats topic
//	west → east  east.heartbeats        false  cycle
//	east → west  __consumer_offsets     false  internal
//	east → west  orders.replica         false  excluded by the topic filter
func (r Rules) ShouldReplicate(sourceAlias, targetAlias, topic string) (bool, string) {
	p := r.Policy
	if p == nil {
		p = Prefix{}
	}
	if sourceAlias == targetAlias {
		return false, fmt.Sprintf("source and target are the same cluster %q", targetAlias)
	}
	if p.IsInternal(topic) {
		return false, fmt.Sprintf("%q is an internal topic (Kafka, Connect or MM2)", topic)
	}
	heartbeats := IsHeartbeats(p, topic)
	why := "selected by the topic filter"
	if !r.Topics.Match(topic) {
		if !heartbeats || r.FilterHeartbeats {
			return false, fmt.Sprintf("%q is excluded by the topic filter", topic)
		}
		why = "heartbeats topic, replicated whatever the topic filter says"
	}
	chain := SourceChain(p, topic)
	if slices.Contains(chain, targetAlias) {
		return false, fmt.Sprintf("cycle: the name %q says it has been on %q (came from %s); replicating it there would loop",
			topic, targetAlias, chainString(chain))
	}
	if isIdentity(p) && !heartbeats {
		why += "; identity naming cannot see cycles in names, the " + ProvenanceHeader + " header stops loops per record"
	}
	return true, why
}

func isIdentity(p Policy) bool {
	switch p.(type) {
	case Identity, *Identity:
		return true
	}
	return false
}
