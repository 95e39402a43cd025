// Package cluster holds a kdr cluster's metadata — brokers, topics, their
// partitions' replica assignments, leaders, leader epochs and ISRs, topic
// configuration overrides, and the producer-id allocator — and the commands
// that change it.
//
// Every change is a Command applied by the FSM to an immutable State, which
// produces the next State. Readers take the current *State without locks and
// never see it change under them. A Store decides how commands become
// durable and ordered: the local store (sub-package local) applies them on one
// node and persists a snapshot file; a raft-backed store replicates the same
// commands to every broker so all brokers apply the same sequence.
//
// In a replicated cluster the metadata leader also runs the Controller: it
// tracks broker heartbeats and proposes FenceBroker, UnfenceBroker and
// ElectLeaders, while partition leaders propose AlterPartition to change
// their ISR. Those commands keep Kafka's invariants in State: a fenced
// broker leads nothing; every leader change bumps the partition's leader
// epoch and every change its partition epoch; an out-of-sync replica leads
// only through an unclean election, which a topic must allow
// (unclean.leader.election.enable) or an operator must ask for.
//
// SetFence is the cluster-wide write fence of a failover (State.Fence):
// while it is set the brokers refuse client produce requests. Its epoch only
// grows, so an older failover's orchestrator cannot undo a newer one's.
//
// Commands are encoded as a type byte followed by JSON. Type numbers are only
// ever added, never reused, so a node can refuse (rather than misread) a
// command from a newer version.
package cluster
