// Package model holds the types of the failover coordination store. They
// live here, not in package store, so that the backends (filestore,
// consulstore) can use them while store.Open constructs the backends: store
// re-exports every name as an alias, and callers use those.
package model

import (
	"encoding/json"
	"time"
)

// MaxHistory is how many events State.History keeps; older ones are dropped
// on write.
const MaxHistory = 200

// State is the failover state document of one topology, stored as JSON.
type State struct {
	Topology  string          `json:"topology"`
	Active    string          `json:"active"`              // the active cluster's name
	Epoch     int64           `json:"epoch"`               // increases on every promotion
	Operation *Operation      `json:"operation,omitempty"` // in progress, nil when idle
	Fenced    []string        `json:"fenced,omitempty"`    // clusters that must stay fenced
	History   []Event         `json:"history,omitempty"`   // timeline, newest last (the last MaxHistory)
	LastDrill json.RawMessage `json:"last_drill,omitempty"`
	// ConsumerOffsets is the cluster whose consumer-group offsets are
	// authoritative for clients ("" means Active).
	ConsumerOffsets string `json:"consumer_offsets,omitempty"`
	// LastReceived is what the standby had received when it was last
	// promoted by force (opaque JSON written by package failover; failback
	// reads it to find the old primary's diverged records).
	LastReceived json.RawMessage `json:"last_received,omitempty"`
}

// Record appends e to the history, dropping the oldest events beyond
// MaxHistory.
func (s *State) Record(e Event) {
	s.History = append(s.History, e)
	s.TrimHistory()
}

// TrimHistory drops the oldest events beyond MaxHistory. Backends call it
// before every write.
func (s *State) TrimHistory() {
	if n := len(s.History); n > MaxHistory {
		s.History = append([]Event(nil), s.History[n-MaxHistory:]...)
	}
}

// Operation is a failover or switchover in progress: which step it is at
// and what the steps recorded so far.
type Operation struct {
	ID        string                     `json:"id"`
	Kind      string                     `json:"kind"`
	From      string                     `json:"from"`
	To        string                     `json:"to"`
	Step      string                     `json:"step"`
	StepIndex int                        `json:"step_index"`
	Started   time.Time                  `json:"started"`
	Data      map[string]json.RawMessage `json:"data,omitempty"`
}

// Event is one entry of the timeline.
type Event struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`
	Step    string    `json:"step,omitempty"`
	Message string    `json:"message,omitempty"`
	Epoch   int64     `json:"epoch"`
}

// Versioned is a State with its compare-and-swap token. Version is Consul's
// ModifyIndex or the file store's counter; 0 means the document is absent.
type Versioned struct {
	State   State
	Version uint64
}
