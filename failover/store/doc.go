// Package store is the failover coordination store: where the failover
// orchestrator keeps each topology's state document (which cluster is
// active, the epoch, the operation in progress, the timeline) and takes the
// lock that makes one orchestrator act at a time.
//
// Two backends implement Store:
//
//   - filestore: a JSON file under kdr's state dir, compare-and-swap via a
//     version counter inside the file, a flock(2) lock on a sibling file.
//     The default; it coordinates processes on one machine.
//   - consulstore: Consul's KV store (compare-and-swap on ModifyIndex,
//     blocking queries for Watch), a session lock, an "active" pointer key
//     for consul-template, and a service with TCP checks per cluster so
//     that Consul health-checks the brokers.
//
// Open picks one from the topology's failover.coordination block.
//
// # Protocol
//
// Every change is read-modify-write: Get, change the State, CompareAndSwap
// with the Version read. ErrConflict means another writer got in between:
// Get again and redo the change (or give up). The lock is advisory and
// orthogonal: the orchestrator takes it for the length of an operation and
// stops when Lost closes, but writes stay guarded by compare-and-swap, so a
// holder that lost its lock without noticing cannot overwrite a newer state.
//
// # Errors
//
// ErrConflict, ErrLocked (a *LockedError naming the holder) and
// ErrUnavailable (an *UnavailableError wrapping the cause and saying what to
// check) are the sentinels; test with errors.Is. A call on a stopped Consul
// agent returns ErrUnavailable within the store's call timeout (5 s by
// default); it never hangs.
package store
