package storage

import (
	"errors"
	"fmt"

	"github.com/kdr-io/kdr/internal/atomicfile"
)

// roll makes a new, empty active segment at base; callers hold writeMu.
// The old segment is sealed, its index written and everything fsynced, and
// the producer table is snapshotted, so that recovery after a crash needs to
// re-read only the new segment.
//
// An empty active segment is replaced rather than kept (a follower whose
// leader's log skips offsets).
func (l *Log) roll(base, nowMs int64) error {
	old := l.active()
	if old.size == 0 {
		if old.base == base {
			return nil
		}
		s, err := createSegment(l.dir, base)
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.segs[len(l.segs)-1] = s
		l.mu.Unlock()
		return errors.Join(old.remove(), atomicfile.SyncDir(l.dir))
	}
	l.mu.Lock()
	old.seal()
	l.mu.Unlock()
	if err := old.writeIndex(true); err != nil {
		return err
	}
	if err := old.f.Sync(); err != nil {
		return fmt.Errorf("storage: fsync %s: %w", old.logPath(), err)
	}
	if err := writeSnapshot(l.dir, old.next, l.producers); err != nil {
		return err
	}
	s, err := createSegment(l.dir, base)
	if err != nil {
		return err
	}
	if err := atomicfile.SyncDir(l.dir); err != nil {
		s.remove()
		return err
	}
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	l.unflushed, l.lastFlushMs = 0, nowMs
	return nil
}

// deleteFront removes the first n segments, never the active one, and
// moves the log start offset up to the first offset left; callers hold
// cleanMu and writeMu. Readers that already hold a FileSlice of a removed
// segment keep reading it through their own descriptor.
func (l *Log) deleteFront(n int, reason string) error {
	n = min(n, len(l.segs)-1)
	if n <= 0 {
		return nil
	}
	newStart := max(l.logStart, l.segs[n].base)
	if newStart != l.logStart {
		// Persist first: a crash must not bring deleted offsets back
		// as readable.
		if err := writeOffsetFile(l.path(logStartFile), newStart); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
	}
	gone := l.segs[:n:n]
	l.mu.Lock()
	l.segs = append([]*segment(nil), l.segs[n:]...)
	l.logStart = newStart
	epochsChanged := l.epochs.truncateFromStart(newStart)
	l.mu.Unlock()
	if epochsChanged {
		l.persistEpochs()
	}
	var errs []error
	for _, s := range gone {
		l.logger.Info("deleting segment", "segment", s.base, "bytes", s.size, "reason", reason, "log_start_offset", newStart)
		errs = append(errs, s.remove())
	}
	errs = append(errs, atomicfile.SyncDir(l.dir))
	return errors.Join(errs...)
}
