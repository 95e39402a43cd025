package store

import (
	"context"
	"errors"
	"time"
)

// LockOptions say how long AcquireLock waits for a held lock.
type LockOptions struct {
	// Wait is how long to keep retrying while the lock is held by someone
	// else (0: try once, like Store.Lock). ctx's deadline also bounds it.
	Wait time.Duration
	// Retry is the pause between attempts (default 250 ms).
	Retry time.Duration
}

// AcquireLock takes s's lock, retrying while it is held (ErrLocked) until
// opts.Wait has passed or ctx ends; then it returns the last ErrLocked.
// Other errors (ErrUnavailable) are returned at once.
func AcquireLock(ctx context.Context, s Store, holder string, opts LockOptions) (Lock, error) {
	if opts.Retry <= 0 {
		opts.Retry = 250 * time.Millisecond
	}
	deadline := time.Now().Add(opts.Wait)
	for {
		l, err := s.Lock(ctx, holder)
		if err == nil || !errors.Is(err, ErrLocked) || !time.Now().Before(deadline) {
			return l, err
		}
		timer := time.NewTimer(min(opts.Retry, time.Until(deadline)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, err
		case <-timer.C:
		}
	}
}
