// Package naming decides what mirrored topics are called and which topics
// and groups a flow mirrors, following MirrorMaker 2 so that kdr and MM2
// agree on names when they run side by side or one replaces the other.
//
// # Policies
//
// Prefix (MM2's DefaultReplicationPolicy) puts the source cluster's alias in
// front of the topic name, so names record their path and cycles can be
// seen in them. With clusters east, west and central:
//
//	on east        on west               on central (from west)
//	orders    →    east.orders     →     west.east.orders
//	heartbeats →   east.heartbeats →     west.east.heartbeats
//
//	SourceAlias("west.east.orders")   = west, true
//	UpstreamTopic("west.east.orders") = east.orders, true
//	OriginalTopic("west.east.orders") = orders
//	SourceChain("west.east.orders")   = [west east]
//
// Active-active east⇄west with Prefix: east's orders goes to west as
// east.orders and stops there (back to east would be a cycle); west's orders
// goes to east as west.orders. Consumers that want both read "orders" and
// "<other>.orders" (a pattern such as `(.*\.)?orders`).
//
// Hub-and-spoke: spokes s1 and s2 mirror to hub, which holds s1.orders and
// s2.orders. A hub→s1 flow may send s2.orders (as hub.s2.orders) but never
// s1.orders, whose name says it came from s1.
//
// Identity (MM2's IdentityReplicationPolicy) keeps names, which suits one-way
// migrations and consumers that must not change topic names, but a name then
// says nothing about where it came from. MM2 cannot prevent cycles under it;
// kdr can, per record, with the provenance header kdr-origin (ProvenanceHeader):
// each flow appends its source alias (WithHop) and drops records that the
// target has already had (Visited). Heartbeats are still prefixed, as in MM2.
//
// # Filters
//
// Filter holds MM2-style include/exclude regex lists, fully anchored as MM2's
// are. DefaultTopicFilter and DefaultGroupFilter are MM2's defaults:
//
//	topics  .*   exclude  .*[\-\.]internal, .*\.replica, __.*
//	groups  .*   exclude  console-consumer-.*, connect-.*, __.*
//
// Rules.ShouldReplicate combines a policy and a topic filter with MM2's
// internal-topic, heartbeats and cycle rules and says why a topic is or is
// not mirrored.
//
// # Where kdr departs from MM2
//
//   - Identity renames only "heartbeats" and "<anything><sep>heartbeats";
//     MM2 renames any topic whose name ends in "heartbeats".
//   - ShouldReplicate refuses a flow whose source and target are the same
//     cluster; MM2 leaves that to its configuration checks.
//   - Patterns are Go RE2, not Java regex: lookaround, backreferences and
//     possessive quantifiers are rejected with a *PatternError.
//
// Everything else — the separator, DotInternalTopics, the parsing of
// "east.", ".orders" and dotted local names, which topics are internal — is
// MM2's behaviour, documented on the methods.
package naming
