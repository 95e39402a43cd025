package storage

import (
	"fmt"
	"os"
)

// Maintain does the log's time-based and background work; the broker calls
// it periodically (log.retention.check.interval.ms). In order: roll the
// active segment if it is older than segment.ms; delete whole segments that
// are below the log start offset or, with cleanup.policy delete, older than
// retention.ms or beyond retention.bytes; fsync if flush.ms has passed;
// compact if cleanup.policy has compact and the dirty ratio calls for it.
func (l *Log) Maintain() error {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	nowMs := l.nowMs()
	compact, err := l.maintainSegments(nowMs)
	if err != nil || !compact {
		return err
	}
	return l.compact(nowMs)
}

func (l *Log) maintainSegments(nowMs int64) (compact bool, err error) {
	n, reason, compact, err := l.maintainLocked(nowMs)
	if err != nil || l.isClosed() {
		return false, err
	}
	// Without writeMu: on a busy disk the deletion's fsyncs and unlinks
	// held appends for 50-90 ms a segment (docs/benchmarks.md).
	if err := l.deleteFront(n, reason); err != nil {
		return false, err
	}
	return compact, nil
}

// maintainLocked does under writeMu what needs it: the time-based rolls and
// flush, choosing how many segments retention deletes, and reading whether
// the log compacts.
func (l *Log) maintainLocked(nowMs int64) (n int, reason string, compact bool, err error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return 0, "", false, nil
	}
	if a := l.active(); a.size > 0 && nowMs-a.rollTs > l.cfg.SegmentMs {
		if err := l.roll(l.leo(), nowMs); err != nil {
			return 0, "", false, err
		}
	}
	n, reason, rollActive := l.deletable(nowMs)
	if rollActive {
		// Like Kafka: an idle topic's only segment must age out too.
		if err := l.roll(l.leo(), nowMs); err != nil {
			return 0, "", false, err
		}
		n = len(l.segs) - 1
	}
	if l.unflushed > 0 && nowMs-l.lastFlushMs >= l.cfg.FlushMs {
		if err := l.flushLocked(nowMs); err != nil {
			return 0, "", false, err
		}
	}
	if l.epochsDirty {
		l.persistEpochs()
	}
	return n, reason, l.cfg.compacts(), nil
}

func (l *Log) isClosed() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.closed
}

// deletable returns how many segments from the front may go and why. The
// active segment never goes, but when retention.ms has expired every segment
// including a non-empty active one, rollActive asks the caller to roll first
// and delete them all.
func (l *Log) deletable(nowMs int64) (n int, reason string, rollActive bool) {
	segs, last := l.segs, len(l.segs)-1
	// DeleteRecords moved the log start offset past whole segments.
	for n < last && segs[n+1].base <= l.logStart {
		n, reason = n+1, "log start offset"
	}
	if !l.cfg.deletes() {
		return n, reason, false
	}
	if ms := l.cfg.RetentionMs; ms >= 0 {
		k := n
		for k <= last && nowMs-segmentTime(segs[k]) > ms {
			k++
		}
		if k > last {
			if segs[last].size > 0 {
				return last + 1, "retention.ms", true
			}
			k = last
		}
		if k > n {
			n, reason = k, "retention.ms"
		}
	}
	if limit := l.cfg.RetentionBytes; limit >= 0 {
		var total int64
		for _, s := range segs[n:] {
			total += s.size
		}
		excess, k := total-limit, n
		for k < last && excess-segs[k].size >= 0 {
			excess -= segs[k].size
			k++
		}
		if k > n {
			n, reason = k, "retention.bytes"
		}
	}
	return n, reason, false
}

// segmentTime is what retention.ms measures a segment's age from: its
// largest record timestamp, or the file's modification time when it has
// none (as Kafka does).
func segmentTime(s *segment) int64 {
	if s.maxTs >= 0 {
		return s.maxTs
	}
	if st, err := s.f.Stat(); err == nil {
		return st.ModTime().UnixMilli()
	}
	return 0
}

// DeleteRecordsBefore moves the log start offset up to offset (the
// DeleteRecords API), persists it, and deletes the segments entirely below
// it. offset may be at most the log end offset. It returns the new log
// start offset.
func (l *Log) DeleteRecordsBefore(offset int64) (logStartOffset int64, err error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	n, err := l.moveLogStart(offset)
	if err != nil {
		return -1, err
	}
	if n < 0 {
		return l.LogStartOffset(), nil
	}
	return offset, l.deleteFront(n, "DeleteRecords")
}

// moveLogStart persists and sets the log start offset for
// DeleteRecordsBefore and returns how many whole segments lie below it; -1
// when the log start is already there.
func (l *Log) moveLogStart(offset int64) (int, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return -1, ErrClosed
	}
	if leo := l.leo(); offset < 0 || offset > leo {
		return -1, fmt.Errorf("%w: cannot delete before %d, the log end offset is %d", ErrOffsetOutOfRange, offset, leo)
	}
	if offset <= l.logStart {
		return -1, nil
	}
	if err := writeOffsetFile(l.path(logStartFile), offset); err != nil {
		return -1, fmt.Errorf("storage: %w", err)
	}
	l.mu.Lock()
	l.logStart = offset
	changed := l.epochs.truncateFromStart(offset)
	l.mu.Unlock()
	if changed {
		l.persistEpochs()
	}
	n := 0
	for n < len(l.segs)-1 && l.segs[n+1].base <= offset {
		n++
	}
	return n, nil
}

// TruncateTo removes every batch holding an offset >= offset, for a
// follower whose log diverged from its leader's. offset is normally a batch
// boundary; inside a batch, the whole batch goes and the log end offset
// becomes its base offset. An offset at or past the log end offset changes
// nothing; one below the log start offset empties the log and restarts it
// there, as TruncateFullyAndStartAt.
func (l *Log) TruncateTo(offset int64) error {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if offset >= l.leo() {
		return nil
	}
	if offset < 0 {
		return fmt.Errorf("%w: cannot truncate to %d", ErrOffsetOutOfRange, offset)
	}
	if offset < l.logStart || offset <= l.segs[0].base {
		return l.truncateFully(offset)
	}
	i := l.segmentIndex(offset)
	s, gone := l.segs[i], l.segs[i+1:]
	buf := make([]byte, 0, 4096)
	pos, _, found, err := s.locate(newFileReader(s.f, s.size, 4096, buf), offset)
	if err != nil {
		return err
	}
	if !found {
		pos = s.size
	}
	nowMs := l.nowMs()
	l.mu.Lock()
	l.segs = l.segs[: i+1 : i+1]
	err = s.truncateAt(pos, buf, l.cfg.IndexIntervalBytes, nowMs)
	epochsChanged := l.epochs.truncateFromEnd(s.next)
	l.mu.Unlock()
	for _, g := range gone {
		if rerr := g.remove(); err == nil {
			err = rerr
		}
	}
	if err != nil {
		return err
	}
	if err := l.lowerRecoveryPoint(s.next); err != nil {
		return err
	}
	if epochsChanged {
		l.persistEpochs()
	}
	l.cleanerOffset = min(l.cleanerOffset, s.next)
	return l.rebuildProducers()
}

// TruncateFullyAndStartAt deletes every segment and restarts the log empty
// at offset, which becomes both the log start and log end offset (a
// follower that fell behind its leader's log start offset).
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if offset < 0 {
		return fmt.Errorf("%w: cannot restart at %d", ErrOffsetOutOfRange, offset)
	}
	return l.truncateFully(offset)
}

func (l *Log) truncateFully(offset int64) error {
	if err := writeOffsetFile(l.path(logStartFile), offset); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if err := l.lowerRecoveryPoint(offset); err != nil {
		return err
	}
	old := l.segs
	for _, s := range old {
		if err := s.remove(); err != nil {
			return err
		}
	}
	s, err := createSegment(l.dir, offset)
	if err != nil {
		return err
	}
	snaps, err := listOffsets(l.dir, snapshotSuffix)
	if err != nil {
		return err
	}
	for _, off := range snaps {
		if err := removeFiles(offsetName(l.dir, off, snapshotSuffix)); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
	}
	l.mu.Lock()
	l.segs = []*segment{s}
	l.logStart = offset
	l.epochs.entries = nil
	l.producers = map[int64]producerEntry{}
	l.mu.Unlock()
	l.persistEpochs()
	l.cleanerOffset = offset
	if err := os.Remove(l.path(cleanerFile)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// rebuildProducers recomputes the producer table after a truncation: the
// newest snapshot at or below the log end offset plus the batches after it.
func (l *Log) rebuildProducers() error {
	snapOff, table, err := loadSnapshot(l.dir, l.leo())
	if err != nil {
		return err
	}
	from := snapOff
	if from < 0 {
		from = l.segs[0].base
	}
	if err := l.replayProducers(table, from, snapOff); err != nil {
		return err
	}
	l.mu.Lock()
	l.producers = table
	l.mu.Unlock()
	return nil
}
