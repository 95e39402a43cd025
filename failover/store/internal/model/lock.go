package model

import (
	"context"
	"time"
)

// Lock is a held mutual-exclusion lock on a topology's failover. Its methods
// are safe for concurrent use.
type Lock interface {
	// Lost is closed when the lock is no longer held: lost (a Consul
	// session invalidated, the agent unreachable for a TTL) or released.
	// An orchestrator stops acting on the topology when it closes.
	Lost() <-chan struct{}
	// Release gives the lock up. Releasing a lost lock cleans up and
	// returns nil; releasing twice is a no-op.
	Release(ctx context.Context) error
	// Holder is the name the lock was taken under.
	Holder() string
}

// LockRecord is what a lock's key or file holds while it is held, so that
// ErrLocked can name the holder.
type LockRecord struct {
	Holder   string    `json:"holder"`
	Host     string    `json:"host,omitempty"`
	PID      int       `json:"pid,omitempty"`
	Acquired time.Time `json:"acquired"`
}
