package cluster

import (
	"sync"
	"sync/atomic"
)

// Listener is told of every applied command, in apply order, with the states
// before and after. It runs on the applying goroutine and must not propose.
type Listener func(prev, next *State)

// FSM applies commands to the current State. Apply calls must be serialised
// by the caller (one store, one applier); State may be called from any
// goroutine at any time.
type FSM struct {
	cur atomic.Pointer[State]

	mu        sync.Mutex
	listeners []Listener
}

// NewFSM starts from s.
func NewFSM(s *State) *FSM {
	f := &FSM{}
	s.reindex()
	f.cur.Store(s)
	return f
}

// State returns the current state. It never changes after it is returned.
func (f *FSM) State() *State { return f.cur.Load() }

// Subscribe adds a listener for applied commands.
func (f *FSM) Subscribe(l Listener) {
	f.mu.Lock()
	f.listeners = append(f.listeners, l)
	f.mu.Unlock()
}

// Apply applies cmd. A failed command leaves the state as it was but still
// counts as applied (Index advances) so replicas agree on the index.
func (f *FSM) Apply(cmd Command) (any, error) {
	prev := f.cur.Load()
	next := prev.clone()
	next.Index++
	res, err := cmd.apply(next)
	if err != nil {
		failed := prev.clone()
		failed.Index++
		failed.reindex()
		f.cur.Store(failed)
		return nil, err
	}
	next.reindex()
	f.cur.Store(next)
	f.mu.Lock()
	ls := append([]Listener(nil), f.listeners...)
	f.mu.Unlock()
	for _, l := range ls {
		l(prev, next)
	}
	return res, nil
}

// Restore replaces the state wholesale (snapshot install) and tells
// listeners.
func (f *FSM) Restore(s *State) {
	s.reindex()
	prev := f.cur.Swap(s)
	f.mu.Lock()
	ls := append([]Listener(nil), f.listeners...)
	f.mu.Unlock()
	for _, l := range ls {
		l(prev, s)
	}
}
