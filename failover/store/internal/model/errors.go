package model

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrConflict is returned by CompareAndSwap when the document's version
	// is not the one given: another writer won.
	ErrConflict = errors.New("store: version conflict (the state changed since it was read)")
	// ErrLocked is returned by Lock when another holder has the lock. The
	// error is a *LockedError naming the holder when it is known.
	ErrLocked = errors.New("store: lock held by another orchestrator")
	// ErrUnavailable is returned when the store cannot be reached. The error
	// is an *UnavailableError wrapping the cause.
	ErrUnavailable = errors.New("store: coordination store unavailable")
)

// LockedError says who holds a lock. errors.Is(err, ErrLocked) is true.
type LockedError struct {
	Holder   string    // "" when unknown (e.g. Consul's lock-delay after a lost session)
	Since    time.Time // zero when unknown
	Resource string    // the lock file or key
	Reason   string    // set when Holder is empty
}

func (e *LockedError) Error() string {
	switch {
	case e.Holder != "" && !e.Since.IsZero():
		return fmt.Sprintf("store: %s is held by %q since %s", e.Resource, e.Holder, e.Since.UTC().Format(time.RFC3339))
	case e.Holder != "":
		return fmt.Sprintf("store: %s is held by %q", e.Resource, e.Holder)
	case e.Reason != "":
		return fmt.Sprintf("store: %s is not available: %s", e.Resource, e.Reason)
	}
	return fmt.Sprintf("store: %s is held by another orchestrator", e.Resource)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// UnavailableError is a store that could not be reached. errors.Is(err,
// ErrUnavailable) is true and errors.Unwrap gives the cause.
type UnavailableError struct {
	Backend string // "consul" or "file"
	Addr    string // the agent address or file path
	Op      string // what was attempted, e.g. "get kdr/demo/state"
	Hint    string // what to check
	Err     error
}

func (e *UnavailableError) Error() string {
	msg := fmt.Sprintf("%s at %s unreachable: %s: %v", e.Backend, e.Addr, e.Op, e.Err)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }
