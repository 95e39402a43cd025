// Package local is the single-node cluster.Store: commands are applied in
// process and the whole state is written to one snapshot file after each one.
// Metadata changes are rare (topic creation, config changes, producer-id
// blocks), so rewriting the file is cheap and keeps recovery trivial.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/internal/atomicfile"
)

// FileName is the snapshot file inside the metadata directory.
const FileName = "cluster-metadata.json"

// Store is a cluster.Store backed by a snapshot file.
type Store struct {
	path string
	fsm  *cluster.FSM

	mu     sync.Mutex // serialises Propose: apply + persist
	closed bool
}

var _ cluster.Store = (*Store)(nil)

// Open loads dir's snapshot, or starts a new cluster with clusterID when there
// is none.
func Open(dir, clusterID string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster/local: %w", err)
	}
	path := filepath.Join(dir, FileName)
	state := cluster.NewState(clusterID)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("cluster/local: %w", err)
	default:
		if err := json.Unmarshal(b, state); err != nil {
			return nil, fmt.Errorf("cluster/local: %s is corrupt (%v); restore it from a backup or move it away to start an empty cluster", path, err)
		}
		if state.Brokers == nil {
			state.Brokers = map[int32]cluster.Broker{}
		}
		if state.Topics == nil {
			state.Topics = map[string]*cluster.Topic{}
		}
	}
	return &Store{path: path, fsm: cluster.NewFSM(state)}, nil
}

// State returns the current metadata.
func (s *Store) State() *cluster.State { return s.fsm.State() }

// Subscribe registers l for every applied command.
func (s *Store) Subscribe(l cluster.Listener) { s.fsm.Subscribe(l) }

// Propose applies cmd and persists the result before returning. If the
// snapshot cannot be written the change is undone and the error returned, so
// nothing reported as done is lost on restart.
func (s *Store) Propose(ctx context.Context, cmd cluster.Command) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("cluster/local: store is closed")
	}
	prev := s.fsm.State()
	res, err := s.fsm.Apply(cmd)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(s.fsm.State(), "", "  ")
	if err == nil {
		err = atomicfile.Write(s.path, b, 0o644)
	}
	if err != nil {
		s.fsm.Restore(prev)
		return nil, fmt.Errorf("cluster/local: persisting metadata: %w", err)
	}
	return res, nil
}

// Close stops accepting proposals.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}
