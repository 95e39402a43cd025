package raftstore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/kdr-io/kdr/broker/cluster"
)

// maxKeptResults bounds the results kept for forwarded proposals still
// waiting; a waiter further behind than this falls back to the leader's copy.
const maxKeptResults = 4096

// applyResult is what the FSM returns for one log entry; raft hands it to the
// proposer's ApplyFuture on the leader.
type applyResult struct {
	result any
	err    error
}

// snapshotFile is the snapshot's content. AppliedIndex is the raft index of
// the last command in State, so a forwarded proposal waiting for an index can
// tell it was covered by an installed snapshot.
type snapshotFile struct {
	AppliedIndex uint64         `json:"applied_index"`
	State        *cluster.State `json:"state"`
}

// fsm adapts cluster.FSM to raft.FSM. raft calls Apply, Snapshot and Restore
// from one goroutine; the other methods may be called from any.
type fsm struct {
	state       *cluster.FSM
	logger      *slog.Logger
	undecodable atomic.Uint64

	mu       sync.Mutex
	applied  uint64        // raft index of the last command applied
	notify   chan struct{} // closed and replaced whenever applied moves
	tracking int           // forwarded proposals in flight on this node
	results  map[uint64]applyResult
}

var _ raft.FSM = (*fsm)(nil)

func newFSM(clusterID string, logger *slog.Logger) *fsm {
	return &fsm{
		state:   cluster.NewFSM(cluster.NewState(clusterID)),
		logger:  logger,
		notify:  make(chan struct{}),
		results: map[uint64]applyResult{},
	}
}

// Apply decodes and applies one command. An entry this version cannot decode
// is logged, counted and skipped rather than stopping the node.
func (f *fsm) Apply(l *raft.Log) any {
	var r applyResult
	cmd, err := cluster.Decode(l.Data)
	if err != nil {
		f.undecodable.Add(1)
		f.logger.Error("raftstore: skipping a log entry this node cannot decode", "index", l.Index, "err", err)
		r.err = fmt.Errorf("%w: %w", ErrUnknownCommand, err)
	} else {
		r.result, r.err = f.state.Apply(cmd)
	}
	f.mu.Lock()
	f.applied = l.Index
	if f.tracking > 0 {
		f.results[l.Index] = r
		if len(f.results) > maxKeptResults {
			for idx := range f.results {
				if idx+maxKeptResults < l.Index {
					delete(f.results, idx)
				}
			}
		}
	}
	close(f.notify)
	f.notify = make(chan struct{})
	f.mu.Unlock()
	return r
}

// Snapshot captures the current state; States are immutable, so Persist can
// encode it while Apply goes on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &fsmSnapshot{snapshotFile{AppliedIndex: f.applied, State: f.state.State()}}, nil
}

// Restore replaces the state with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var sf snapshotFile
	if err := json.NewDecoder(rc).Decode(&sf); err != nil {
		return fmt.Errorf("raftstore: decoding snapshot: %w", err)
	}
	if sf.State == nil {
		return fmt.Errorf("raftstore: snapshot has no state")
	}
	if sf.State.Brokers == nil {
		sf.State.Brokers = map[int32]cluster.Broker{}
	}
	if sf.State.Topics == nil {
		sf.State.Topics = map[string]*cluster.Topic{}
	}
	f.state.Restore(sf.State)
	f.mu.Lock()
	f.applied = sf.AppliedIndex
	close(f.notify)
	f.notify = make(chan struct{})
	f.mu.Unlock()
	return nil
}

// appliedIndex returns the raft index of the last applied command.
func (f *fsm) appliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// track starts keeping results for a forwarded proposal; call the returned
// func when done with it.
func (f *fsm) track() (untrack func()) {
	f.mu.Lock()
	f.tracking++
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.tracking--
		if f.tracking == 0 {
			clear(f.results)
		}
		f.mu.Unlock()
	}
}

// take returns and forgets the result kept for index.
func (f *fsm) take(index uint64) (applyResult, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.results[index]
	delete(f.results, index)
	return r, ok
}

// waitApplied blocks until the command at index is applied here, ctx ends or
// done is closed.
func (f *fsm) waitApplied(ctx context.Context, done <-chan struct{}, index uint64) error {
	for {
		f.mu.Lock()
		applied, ch := f.applied, f.notify
		f.mu.Unlock()
		if applied >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("raftstore: command committed at index %d but this node has applied only up to %d: %w", index, applied, ctx.Err())
		case <-done:
			return ErrClosed
		}
	}
}

type fsmSnapshot struct{ file snapshotFile }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.file); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftstore: writing snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
