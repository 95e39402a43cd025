package naming

import (
	"errors"
	"fmt"
	"strings"
)

// Policy maps topic names between clusters, as MM2's ReplicationPolicy does.
// Implementations are immutable values, safe for concurrent use.
type Policy interface {
	// RemoteTopic names topic from cluster sourceAlias on the target
	// (MM2 formatRemoteTopic).
	RemoteTopic(sourceAlias, topic string) string
	// OriginalTopic strips every hop from a remote topic's name; a topic that
	// is not remote is returned unchanged (MM2 originalTopic).
	OriginalTopic(topic string) string
	// SourceAlias names the cluster topic was replicated from, if the name
	// says (MM2 topicSource; ok=false where MM2 returns null).
	SourceAlias(topic string) (alias string, ok bool)
	// IsInternal reports whether topic must never be replicated
	// (MM2 isInternalTopic).
	IsInternal(topic string) bool
}

// UpstreamPolicy is a Policy that can also name a remote topic's immediate
// upstream topic (MM2 upstreamTopic), which cycle detection needs to walk a
// multi-hop name. Prefix and Identity implement it; for a Policy that does
// not, only the nearest hop is checked.
type UpstreamPolicy interface {
	Policy
	// UpstreamTopic returns the topic's name on the cluster it was
	// replicated from; ok=false if the name does not say.
	UpstreamTopic(topic string) (upstream string, ok bool)
}

var (
	_ UpstreamPolicy = Prefix{}
	_ UpstreamPolicy = Identity{}
)

// HeartbeatsTopic is MM2's heartbeats topic; replicated, it keeps this name
// as its original topic (east.heartbeats, west.east.heartbeats).
const HeartbeatsTopic = "heartbeats"

// IsHeartbeats reports whether topic is a heartbeats topic under p: its
// original name is "heartbeats" (MM2 isHeartbeatsTopic).
func IsHeartbeats(p Policy, topic string) bool {
	return p.OriginalTopic(topic) == HeartbeatsTopic
}

// SourceChain lists the clusters topic's name says it passed through, nearest
// first: under Prefix, "west.east.orders" gives [west east] (it is on some
// cluster now, came from west, which had it from east). A topic that is not
// remote gives nil.
func SourceChain(p Policy, topic string) []string {
	up, walk := p.(UpstreamPolicy)
	var chain []string
	// A policy whose upstream names do not shrink could loop; no chain is
	// longer than the name.
	for range len(topic) + 1 {
		alias, ok := p.SourceAlias(topic)
		if !ok {
			break
		}
		chain = append(chain, alias)
		if !walk {
			break
		}
		next, ok := up.UpstreamTopic(topic)
		if !ok || next == topic {
			break
		}
		topic = next
	}
	return chain
}

// ErrInvalidAlias is wrapped by ValidateAlias's errors.
var ErrInvalidAlias = errors.New("naming: invalid cluster alias")

// maxAliasLen keeps "<alias>.checkpoints.internal" within Kafka's 249-byte
// topic-name limit.
const maxAliasLen = 249 - len(".checkpoints.internal")

// ValidateAlias reports whether alias can name a cluster under p: it must be
// non-empty, at most 228 bytes, made of the characters legal in topic names
// (ASCII letters, digits, '.', '_', '-'), and must not contain p's separator
// (MM2 would then split "us.west.orders" as coming from "us"). Commas, being
// illegal, can never corrupt the kdr-origin header.
func ValidateAlias(p Policy, alias string) error {
	if alias == "" {
		return fmt.Errorf("%w: empty", ErrInvalidAlias)
	}
	if len(alias) > maxAliasLen {
		return fmt.Errorf("%w: %q is %d bytes, the limit is %d", ErrInvalidAlias, alias, len(alias), maxAliasLen)
	}
	for i := 0; i < len(alias); i++ {
		c := alias[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q has %q at byte %d; use letters, digits, '.', '_' or '-'", ErrInvalidAlias, alias, c, i)
		}
	}
	if s, ok := p.(interface{ separator() string }); ok && strings.Contains(alias, s.separator()) {
		return fmt.Errorf("%w: %q contains the separator %q", ErrInvalidAlias, alias, s.separator())
	}
	return nil
}

// chainString renders a chain for reasons: "west, east".
func chainString(chain []string) string {
	return strings.Join(chain, ", ")
}
