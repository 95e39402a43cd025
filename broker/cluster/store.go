package cluster

import "context"

// Store orders and persists metadata commands. Implementations: local (one
// node, a snapshot file) and, for replicated clusters, raft.
//
// Propose returns after the command is applied on this node, with the
// command's result or its error (an *Error for Kafka-level failures).
// State and Subscribe may be used concurrently with Propose.
type Store interface {
	State() *State
	Propose(ctx context.Context, cmd Command) (any, error)
	Subscribe(l Listener)
	Close() error
}
