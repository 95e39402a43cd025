// Package filestore is the file backend of the failover coordination store:
// one JSON file per topology, for orchestrators on one machine.
//
// # Files
//
// For a state file P (by default <state dir>/failover/<topology>.json):
//
//	P             the document, replaced atomically (temp file, fsync,
//	              rename, fsync of the directory):
//	              {"format":1,"version":7,"updated":"2026-…Z","state":{…State…}}
//	P.lock        the orchestrator lock: flock(2) held for as long as the
//	              Lock is; holds the holder's LockRecord as JSON
//	P.write.lock  serialises compare-and-swap: flock(2) held while one
//	              writer reads the version and replaces P
//
// version counts writes from 1; a missing P is version 0. Lock files are
// never removed (removing a flock'ed file lets two processes lock two
// different inodes). Readers need no lock: rename is atomic.
//
// The kernel drops a dead process's flocks, so a crashed orchestrator never
// leaves the topology locked.
package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kdr-io/kdr/failover/store/internal/model"
	"github.com/kdr-io/kdr/internal/atomicfile"
)

// formatVersion is the "format" field of the file.
const formatVersion = 1

// DefaultPollInterval is how often Watch looks at the file.
const DefaultPollInterval = 200 * time.Millisecond

// Store is a state file. Its methods are safe for concurrent use; several
// Stores on one file, in one process or many, coordinate through flock.
type Store struct {
	path         string
	topology     string
	pollInterval time.Duration

	mu       sync.Mutex
	clusters map[string]model.ClusterRegistration
	closed   bool
}

// Option configures a Store.
type Option func(*Store)

// WithPollInterval sets how often Watch checks the file (default 200 ms).
func WithPollInterval(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.pollInterval = d
		}
	}
}

// file is the on-disk document.
type file struct {
	Format  int         `json:"format"`
	Version uint64      `json:"version"`
	Updated time.Time   `json:"updated"`
	State   model.State `json:"state"`
}

// New opens the state file at path for topology, creating its directory.
// The file itself is created by the first CompareAndSwap.
func New(path, topology string, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, errors.New("filestore: empty state file path")
	}
	s := &Store{path: path, topology: topology, pollInterval: DefaultPollInterval,
		clusters: map[string]model.ClusterRegistration{}}
	for _, o := range opts {
		o(s)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, s.unavailable("create directory", err)
	}
	return s, nil
}

// Path is the state file.
func (s *Store) Path() string { return s.path }

func (s *Store) unavailable(op string, err error) error {
	return &model.UnavailableError{Backend: "file", Addr: s.path, Op: op, Err: err,
		Hint: "check failover.coordination.path and its permissions"}
}

// Get reads the document.
func (s *Store) Get(ctx context.Context) (model.Versioned, error) {
	if err := ctx.Err(); err != nil {
		return model.Versioned{}, err
	}
	f, err := s.read()
	if err != nil {
		return model.Versioned{}, err
	}
	return model.Versioned{State: f.State, Version: f.Version}, nil
}

func (s *Store) read() (file, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return file{}, nil
	}
	if err != nil {
		return file{}, s.unavailable("read", err)
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return file{}, fmt.Errorf("filestore: %s is not a state file: %w", s.path, err)
	}
	if f.Format != formatVersion {
		return file{}, fmt.Errorf("filestore: %s has format %d, this kdr reads format %d", s.path, f.Format, formatVersion)
	}
	return f, nil
}

// CompareAndSwap replaces the document if its version is still version.
func (s *Store) CompareAndSwap(ctx context.Context, st model.State, version uint64) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	st.TrimHistory()
	lf, err := os.OpenFile(s.path+".write.lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, s.unavailable("open write lock", err)
	}
	defer lf.Close() // drops the flock too
	if _, err := flock(lf, true); err != nil {
		return 0, s.unavailable("lock for write", err)
	}
	cur, err := s.read()
	if err != nil {
		return 0, err
	}
	if cur.Version != version {
		return 0, fmt.Errorf("%w: %s is at version %d, not %d", model.ErrConflict, s.path, cur.Version, version)
	}
	next := file{Format: formatVersion, Version: version + 1, Updated: time.Now().UTC(), State: st}
	b, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return 0, fmt.Errorf("filestore: encode state: %w", err)
	}
	if err := atomicfile.Write(s.path, append(b, '\n'), 0o644); err != nil {
		return 0, s.unavailable("write", err)
	}
	return next.Version, nil
}

// Watch polls the file until its version exceeds after.
func (s *Store) Watch(ctx context.Context, after uint64) (model.Versioned, error) {
	ticker := time.NewTicker(s.pollInterval)
	defer ticker.Stop()
	var last fs.FileInfo
	for {
		fi, err := os.Stat(s.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			last = nil
		case err != nil:
			return model.Versioned{}, s.unavailable("stat", err)
		case last == nil || !os.SameFile(fi, last) || !fi.ModTime().Equal(last.ModTime()) || fi.Size() != last.Size():
			last = fi
			v, err := s.Get(ctx)
			if err != nil {
				return model.Versioned{}, err
			}
			if v.Version > after {
				return v, nil
			}
		}
		select {
		case <-ctx.Done():
			return model.Versioned{}, ctx.Err()
		case <-ticker.C:
		}
	}
}

// RegisterCluster records the registration; nothing checks the brokers.
func (s *Store) RegisterCluster(ctx context.Context, c model.ClusterRegistration) error {
	if c.Cluster == "" {
		return errors.New("filestore: cluster registration without a cluster name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Brokers = append([]string(nil), c.Brokers...)
	s.clusters[c.Cluster] = c
	return nil
}

// ClusterHealth reports every registered broker as unknown: the file store
// has no health checks.
func (s *Store) ClusterHealth(ctx context.Context, cluster string) (model.Health, error) {
	s.mu.Lock()
	c := s.clusters[cluster]
	s.mu.Unlock()
	h := model.Health{Cluster: cluster, Status: model.StatusUnknown}
	for _, b := range c.Brokers {
		h.Brokers = append(h.Brokers, model.BrokerHealth{Address: b, Status: model.StatusUnknown,
			Output: "the file coordination backend does not check broker health"})
	}
	return h, nil
}

// Close is a no-op: the Store holds no open files between calls.
func (s *Store) Close() error { return nil }
