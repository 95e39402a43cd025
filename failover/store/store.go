package store

import (
	"context"

	"github.com/kdr-io/kdr/failover/store/internal/model"
)

// The document and its parts. They are defined in an internal package so
// that the backends can share them; these aliases are the names to use.
type (
	// State is the failover state document of one topology, stored as
	// JSON: Topology, Active (the active cluster's name), Epoch (increases
	// on every promotion), Operation (in progress, nil when idle), Fenced
	// (clusters that must stay fenced), History (newest last, at most
	// MaxHistory events), LastDrill (opaque JSON), ConsumerOffsets (the
	// cluster with the groups' authoritative offsets, "" = Active) and
	// LastReceived (opaque JSON).
	State = model.State
	// Operation is a failover or switchover in progress: ID, Kind, From,
	// To, Step, StepIndex, Started and per-step Data.
	Operation = model.Operation
	// Event is one timeline entry: At, Kind, Step, Message, Epoch.
	Event = model.Event
	// Versioned is a State with its CAS token Version (Consul's
	// ModifyIndex, the file store's counter); 0 means absent.
	Versioned = model.Versioned
	// Lock is a held lock: Lost, Release, Holder.
	Lock = model.Lock
	// LockedError is the ErrLocked a backend returns, naming the holder.
	LockedError = model.LockedError
	// UnavailableError is the ErrUnavailable a backend returns, wrapping
	// the cause.
	UnavailableError = model.UnavailableError
	// ClusterRegistration announces a cluster's brokers for health checks.
	ClusterRegistration = model.ClusterRegistration
	// Health is a cluster's health: an aggregate Status and one
	// BrokerHealth per broker.
	Health = model.Health
	// BrokerHealth is one broker's check result.
	BrokerHealth = model.BrokerHealth
)

// MaxHistory is how many events State.History keeps (State.Record and every
// write drop older ones).
const MaxHistory = model.MaxHistory

// Health statuses.
const (
	StatusPassing  = model.StatusPassing
	StatusWarning  = model.StatusWarning
	StatusCritical = model.StatusCritical
	StatusUnknown  = model.StatusUnknown
)

// Sentinel errors; test with errors.Is.
var (
	ErrConflict    = model.ErrConflict    // CompareAndSwap lost
	ErrLocked      = model.ErrLocked      // another orchestrator holds the lock
	ErrUnavailable = model.ErrUnavailable // the store cannot be reached
)

// Store keeps one topology's failover state and its lock. Implementations
// are safe for concurrent use by multiple goroutines, and several Stores
// (in one process or many) on the same file or Consul prefix coordinate
// with each other.
type Store interface {
	// Get returns the current document, or Version 0 and a zero State if
	// there is none.
	Get(ctx context.Context) (Versioned, error)
	// CompareAndSwap writes s if the stored version is still version
	// (0: only if no document exists) and returns the new version. It
	// returns ErrConflict if another write came first. History is trimmed
	// to MaxHistory events.
	CompareAndSwap(ctx context.Context, s State, version uint64) (uint64, error)
	// Lock takes the topology's lock under holder's name, trying once: it
	// returns a *LockedError (ErrLocked) at once if someone else holds it.
	// AcquireLock retries for a while.
	Lock(ctx context.Context, holder string) (Lock, error)
	// Watch blocks until the document's version is greater than after,
	// then returns it; it returns ctx's error when ctx ends first.
	Watch(ctx context.Context, after uint64) (Versioned, error)
	// RegisterCluster announces a cluster's brokers so that the store
	// checks their health (Consul: a service with a TCP check per broker;
	// file: recorded in memory, not checked). Registering again replaces
	// the previous registration.
	RegisterCluster(ctx context.Context, c ClusterRegistration) error
	// ClusterHealth reports a registered cluster's broker checks (file:
	// unknown).
	ClusterHealth(ctx context.Context, cluster string) (Health, error)
	// Close releases the Store's resources. It does not release locks.
	Close() error
}
