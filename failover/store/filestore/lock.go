package filestore

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"time"

	"github.com/kdr-io/kdr/failover/store/internal/model"
)

// Lock takes the flock on P.lock without waiting and writes the holder into
// it. A held lock is never lost while the process lives.
func (s *Store) Lock(ctx context.Context, holder string) (model.Lock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := s.path + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, s.unavailable("open lock", err)
	}
	ok, err := flock(f, false)
	if err != nil {
		f.Close()
		return nil, s.unavailable("lock", err)
	}
	if !ok {
		f.Close()
		locked := &model.LockedError{Resource: path}
		if b, err := os.ReadFile(path); err == nil {
			var rec model.LockRecord
			if json.Unmarshal(b, &rec) == nil {
				locked.Holder, locked.Since = rec.Holder, rec.Acquired
			}
		}
		return nil, locked
	}
	host, _ := os.Hostname()
	rec, _ := json.Marshal(model.LockRecord{Holder: holder, Host: host, PID: os.Getpid(), Acquired: time.Now().UTC()})
	if err := writeRecord(f, rec); err != nil {
		f.Close()
		return nil, s.unavailable("write lock holder", err)
	}
	return &fileLock{f: f, holder: holder, lost: make(chan struct{})}, nil
}

func writeRecord(f *os.File, b []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt(b, 0)
	return err
}

// fileLock is a held flock.
type fileLock struct {
	holder string
	lost   chan struct{}

	mu sync.Mutex
	f  *os.File // nil once released
}

var _ model.Lock = (*fileLock)(nil)

func (l *fileLock) Lost() <-chan struct{} { return l.lost }
func (l *fileLock) Holder() string        { return l.holder }

// Release clears the holder record and drops the flock.
func (l *fileLock) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	defer close(l.lost)
	truncErr := f.Truncate(0)
	unlockErr := funlock(f)
	closeErr := f.Close()
	for _, err := range []error{unlockErr, closeErr, truncErr} {
		if err != nil {
			return err
		}
	}
	return nil
}
