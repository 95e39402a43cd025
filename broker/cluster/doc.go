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
// Commands are encoded as a type byte followed by JSON. Type numbers are only
// ever added, never reused, so a node can refuse (rather than misread) a
// command from a newer version.
package cluster
