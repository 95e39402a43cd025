// Package group is a Kafka group coordinator for the classic group protocol:
// it runs join and sync phases, generations, session and rebalance timeouts,
// static membership (KIP-345), and stores committed offsets and group
// metadata in the internal __consumer_offsets topic, in Kafka's own record
// format, through the Log interface.
//
// Assignment is client-side, as in Kafka: the coordinator picks a protocol
// all members support, hands the leader the member list, and distributes the
// leader's assignment. Range, round-robin, sticky and cooperative-sticky
// clients all work on that contract.
//
// Concurrency: Coordinator.mu guards the map of groups and loaded
// partitions; each group has its own mutex, taken after Coordinator.mu when
// both are held. Join and sync requests block on per-member channels, never
// while holding a lock. Timers run their callbacks on their own goroutines
// and take the group lock.
package group
