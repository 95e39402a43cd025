package consulstore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/kdr-io/kdr/failover/store/internal/model"
)

// Lock creates a session and acquires P/lock with it, once. On success two
// goroutines keep the lock: one renews the session every TTL/3, one watches
// P/lock with blocking queries; Lost closes when the session is gone, the
// key no longer names it, or Consul was unreachable for a whole TTL (after
// which Consul may have invalidated the session).
func (s *Store) Lock(ctx context.Context, holder string) (model.Lock, error) {
	key := s.Key("lock")
	cctx, cancel := s.call(ctx)
	defer cancel()
	id, _, err := s.client.Session().Create(&api.SessionEntry{
		Name:      fmt.Sprintf("kdr failover lock %s (%s)", s.cfg.Topology, holder),
		TTL:       s.cfg.SessionTTL.String(),
		Behavior:  api.SessionBehaviorRelease,
		LockDelay: s.cfg.LockDelay,
	}, (&api.WriteOptions{}).WithContext(cctx))
	if err != nil {
		return nil, s.fail(ctx, "create session for "+key, err)
	}
	host, _ := os.Hostname()
	rec, _ := json.Marshal(model.LockRecord{Holder: holder, Host: host, PID: os.Getpid(), Acquired: time.Now().UTC()})
	ok, _, err := s.client.KV().Acquire(&api.KVPair{Key: key, Value: rec, Session: id}, (&api.WriteOptions{}).WithContext(cctx))
	if err != nil || !ok {
		s.destroySession(id)
	}
	if err != nil {
		return nil, s.fail(ctx, "acquire "+key, err)
	}
	if !ok {
		return nil, s.lockedError(ctx, key)
	}
	l := &sessionLock{s: s, key: key, id: id, holder: holder, lost: make(chan struct{}), lastContact: time.Now()}
	l.ctx, l.stop = context.WithCancel(context.Background())
	l.wg.Add(2)
	go l.renew()
	go l.monitor()
	return l, nil
}

// lockedError says who holds key.
func (s *Store) lockedError(ctx context.Context, key string) error {
	locked := &model.LockedError{Resource: "consul key " + key}
	cctx, cancel := s.call(ctx)
	defer cancel()
	pair, _, err := s.client.KV().Get(key, (&api.QueryOptions{}).WithContext(cctx))
	switch {
	case err != nil:
		locked.Reason = "holder unknown: " + err.Error()
	case pair == nil || pair.Session == "":
		locked.Reason = fmt.Sprintf("a session holding it was invalidated moments ago; Consul keeps it free for the lock-delay (%s)", s.cfg.LockDelay)
	default:
		var rec model.LockRecord
		if json.Unmarshal(pair.Value, &rec) == nil && rec.Holder != "" {
			locked.Holder, locked.Since = rec.Holder, rec.Acquired
		} else {
			locked.Reason = "held by session " + pair.Session
		}
	}
	return locked
}

// destroySession is best effort, with its own timeout: the session's TTL
// cleans up if it fails.
func (s *Store) destroySession(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	_, err := s.client.Session().Destroy(id, (&api.WriteOptions{}).WithContext(ctx))
	return err
}

// sessionLock is a lock held through a Consul session.
type sessionLock struct {
	s      *Store
	key    string
	id     string
	holder string

	ctx  context.Context // ends on Release
	stop context.CancelFunc
	wg   sync.WaitGroup

	lost     chan struct{}
	lostOnce sync.Once

	mu          sync.Mutex
	lastContact time.Time // last successful renewal or lock query
	released    bool
}

var _ model.Lock = (*sessionLock)(nil)

func (l *sessionLock) Lost() <-chan struct{} { return l.lost }
func (l *sessionLock) Holder() string        { return l.holder }

func (l *sessionLock) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

func (l *sessionLock) isLost() bool {
	select {
	case <-l.lost:
		return true
	default:
		return false
	}
}

func (l *sessionLock) contact() {
	l.mu.Lock()
	l.lastContact = time.Now()
	l.mu.Unlock()
}

// outOfContact reports whether Consul has not answered for a whole TTL.
func (l *sessionLock) outOfContact() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Since(l.lastContact) >= l.s.cfg.SessionTTL
}

// wait pauses for d or until Release; false means released.
func (l *sessionLock) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-l.ctx.Done():
		return false
	case <-l.lost:
		return false
	case <-t.C:
		return true
	}
}

// renew keeps the session alive.
func (l *sessionLock) renew() {
	defer l.wg.Done()
	for l.wait(l.s.cfg.SessionTTL / 3) {
		ctx, cancel := context.WithTimeout(l.ctx, l.s.cfg.Timeout)
		entry, _, err := l.s.client.Session().Renew(l.id, (&api.WriteOptions{}).WithContext(ctx))
		cancel()
		switch {
		case err == nil && entry == nil: // the session is gone
			l.markLost()
			return
		case err == nil:
			l.contact()
		case l.outOfContact():
			l.markLost()
			return
		}
	}
}

// monitor watches the lock key: it must stay held by the session.
func (l *sessionLock) monitor() {
	defer l.wg.Done()
	wait := l.s.cfg.SessionTTL
	var waitIndex uint64
	for l.ctx.Err() == nil && !l.isLost() {
		ctx, cancel := context.WithTimeout(l.ctx, wait+wait/16+l.s.cfg.Timeout)
		q := &api.QueryOptions{WaitIndex: waitIndex, WaitTime: wait}
		pair, meta, err := l.s.client.KV().Get(l.key, q.WithContext(ctx))
		cancel()
		if err != nil {
			if l.ctx.Err() != nil {
				return
			}
			if l.outOfContact() {
				l.markLost()
				return
			}
			if !l.wait(time.Second) {
				return
			}
			continue
		}
		l.contact()
		if pair == nil || pair.Session != l.id {
			l.markLost()
			return
		}
		if meta.LastIndex < waitIndex {
			waitIndex = 0
		} else {
			waitIndex = meta.LastIndex
		}
	}
}

// Release stops the renewals, releases the key and destroys the session.
func (l *sessionLock) Release(ctx context.Context) error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	l.mu.Unlock()

	l.stop()
	l.wg.Wait()
	wasLost := l.isLost()
	defer l.markLost()

	cctx, cancel := l.s.call(ctx)
	defer cancel()
	var releaseErr error
	if !wasLost {
		if _, _, err := l.s.client.KV().Release(&api.KVPair{Key: l.key, Session: l.id}, (&api.WriteOptions{}).WithContext(cctx)); err != nil {
			releaseErr = l.s.fail(ctx, "release "+l.key, err)
		}
	}
	destroyErr := l.s.destroySession(l.id)
	switch {
	case wasLost:
		return nil
	case releaseErr != nil:
		return releaseErr
	case destroyErr != nil:
		return l.s.fail(ctx, "destroy session "+l.id, destroyErr)
	}
	return nil
}
