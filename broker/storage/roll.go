package storage

import (
	"errors"
	"fmt"

	"github.com/kdr-io/kdr/internal/atomicfile"
)

// roll makes a new, empty active segment at base; callers hold writeMu.
// The old segment is sealed and its index written, and a producer snapshot
// is taken at its end. Making all that durable is left to the background
// (flush.go): appends go on while the disk syncs, and recovery re-reads what
// the recovery point does not cover yet.
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
	// Written here, fsynced by the flush, which goes by path: by then a
	// truncation may have changed the index, so the flush must not write
	// it from memory.
	if err := old.writeIndex(false); err != nil {
		return err
	}
	snap := encodeSnapshot(old.next, l.producers)
	s, err := createSegment(l.dir, base)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	l.unflushed, l.lastFlushMs = 0, nowMs
	l.scheduleFlush(old.next, snap)
	return nil
}

// deleteFront removes the first n segments, never the active one, and
// moves the log start offset up to the first offset left. Callers hold
// cleanMu, which keeps the front of the log still, and not writeMu: it is
// taken only to swap the segment list, so appends do not wait for the
// checkpoint's fsyncs or the unlinks. Readers that already hold a FileSlice
// of a removed segment keep reading it through their own descriptor.
func (l *Log) deleteFront(n int, reason string) error {
	l.mu.RLock()
	n = min(n, len(l.segs)-1)
	newStart := l.logStart
	if n > 0 {
		newStart = max(l.logStart, l.segs[n].base)
	}
	changed := newStart != l.logStart
	l.mu.RUnlock()
	if n <= 0 {
		return nil
	}
	if changed {
		// Persist first: a crash must not bring deleted offsets back
		// as readable.
		if err := writeOffsetFile(l.path(logStartFile), newStart); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
	}
	l.writeMu.Lock()
	gone := l.segs[:n:n]
	l.mu.Lock()
	l.segs = append([]*segment(nil), l.segs[n:]...)
	l.logStart = newStart
	epochsChanged := l.epochs.truncateFromStart(newStart)
	l.mu.Unlock()
	if epochsChanged {
		l.persistEpochs()
	}
	l.writeMu.Unlock()
	var errs []error
	for _, s := range gone {
		l.logger.Info("deleting segment", "segment", s.base, "bytes", s.size, "reason", reason, "log_start_offset", newStart)
		errs = append(errs, s.remove())
	}
	errs = append(errs, atomicfile.SyncDir(l.dir))
	return errors.Join(errs...)
}
