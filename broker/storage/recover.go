package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/kdr-io/kdr/internal/atomicfile"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Open opens the log in dir, creating the directory for a new partition or
// recovering an existing one.
//
// After a clean Close the indexes, producer snapshot and checkpoints are
// trusted. Otherwise every segment past the recovery point (the active one
// at least) is re-read batch by batch, checking lengths and CRCs, and cut at
// the first torn or corrupt batch; the segments before it are on disk, so
// only the part after their last index entry is checked. Any missing or
// inconsistent index is rebuilt. The producer table is the newest snapshot
// plus the batches after it, and the leader epoch cache is the checkpoint
// plus any newer epochs in those batches.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	l := &Log{dir: dir, cfg: cfg, logger: opts.Logger, now: opts.Now, dec: kgo.DefaultDecompressor(), wb: opts.Writeback, onFlush: opts.OnFlush, flushLimit: opts.FlushLimit}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			s.close()
		}
		return nil, err
	}
	return l, nil
}

func (l *Log) recover() error {
	clean := exists(l.path(cleanShutdownFile))
	if err := removeLeftovers(l.dir); err != nil {
		return err
	}
	bases, err := listOffsets(l.dir, logSuffix)
	if err != nil {
		return err
	}
	startCkpt, hasStart := readOffsetFile(l.path(logStartFile))
	l.flush.onDisk = -1
	if rp, ok := readOffsetFile(l.path(recoveryPointFile)); ok {
		l.flush.onDisk = rp
	}
	nowMs := l.nowMs()
	buf := make([]byte, 0, 1<<20)
	if err := l.openSegments(bases, clean, startCkpt, buf, nowMs); err != nil {
		return err
	}
	// Every segment before the active one is on disk now: Close flushed
	// them, or recovery re-read and fsynced the ones past the recovery
	// point.
	l.flush.point = l.active().base
	l.flushedTo.Store(l.flush.point)
	// With one segment nothing is trusted anyway: a new partition costs
	// no fsync here.
	if !clean && len(l.segs) > 1 && l.flush.onDisk < l.flush.point {
		if err := l.writeRecoveryPoint(l.flush.point); err != nil {
			return err
		}
	}
	// What the file held when it opened is the kernel's to write back.
	l.active().handed = l.active().size
	leo := l.leo()
	l.logStart = l.segs[0].base
	if hasStart && startCkpt > l.logStart {
		l.logStart = min(startCkpt, leo)
	}

	entries, epochsOK := readEpochs(l.path(epochFile))
	l.epochs.entries = entries
	epochsChanged := l.epochs.truncateFromEnd(leo)
	epochsChanged = l.epochs.truncateFromStart(l.logStart) || epochsChanged

	snapOff, table, err := loadSnapshot(l.dir, leo)
	if err != nil {
		return err
	}
	l.producers = table
	from := snapOff
	if !epochsOK || from < 0 {
		from = l.segs[0].base
	}
	latest := l.epochs.latest()
	err = l.walkHeaders(from, buf, func(h *header) {
		l.epochs.assign(h.leaderEpoch, h.baseOffset)
		if h.idempotent() && h.baseOffset >= snapOff {
			e, ok := l.producers[h.producerID]
			l.producers[h.producerID] = applyStored(e, ok, h)
		}
	})
	if err != nil {
		return err
	}
	// A missing checkpoint with nothing to put in it stays missing: a new
	// partition costs no fsync here.
	if (!epochsOK && len(l.epochs.entries) > 0) || epochsChanged || l.epochs.latest() != latest {
		l.persistEpochs()
	}

	l.cleanerOffset, _ = readOffsetFile(l.path(cleanerFile))
	l.cleanerOffset = min(l.cleanerOffset, leo)
	l.lastFlushMs = nowMs
	if clean {
		// From here on a crash must be noticed by the next Open.
		if err := removeFiles(l.path(cleanShutdownFile)); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		if err := atomicfile.SyncDir(l.dir); err != nil {
			return err
		}
	}
	return nil
}

// openSegments opens and checks every segment. After a crash, a segment is
// trusted only if it ends at or before the recovery point; every other one is
// re-read batch by batch. A segment cut short ends the log: the ones after it
// are deleted, as are segments overlapping their predecessor.
func (l *Log) openSegments(bases []int64, clean bool, startCkpt int64, buf []byte, nowMs int64) error {
	if len(bases) == 0 {
		s, err := createSegment(l.dir, startCkpt)
		if err != nil {
			return err
		}
		l.segs = []*segment{s}
		return nil
	}
	for i, base := range bases {
		if n := len(l.segs); n > 0 && base < l.segs[n-1].next {
			l.logger.Warn("deleting segments that overlap their predecessor", "segment", base, "previous_end", l.segs[n-1].next)
			return l.deleteSegmentFiles(bases[i:])
		}
		s, err := openSegment(l.dir, base)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
		last := i == len(bases)-1
		flushed := clean || (!last && bases[i+1] <= l.flush.onDisk)
		cut, err := l.recoverSegment(s, last, clean, flushed, buf, nowMs)
		if err != nil {
			return err
		}
		if cut > 0 {
			l.logger.Warn("truncated torn or corrupt tail of segment", "segment", base, "bytes", cut, "log_end_offset", s.next)
			if !last {
				return l.deleteSegmentFiles(bases[i+1:])
			}
		}
	}
	return nil
}

// recoverSegment loads or rebuilds one segment's index and re-reads what the
// index does not cover; a segment not known to be flushed is re-read whole,
// and fsynced if it is not the last. It returns how many bytes of the file
// were cut.
func (l *Log) recoverSegment(s *segment, last, clean, flushed bool, buf []byte, nowMs int64) (int64, error) {
	rebuild := !flushed
	if !rebuild {
		st, err := s.f.Stat()
		if err != nil {
			return 0, fmt.Errorf("storage: %w", err)
		}
		idx, ok := readIndex(s.indexPath(), s.timeIndexPath(), st.Size())
		if ok {
			s.idx = idx
		} else {
			rebuild = true
			if st.Size() > 0 {
				l.logger.Info("rebuilding missing or inconsistent index", "segment", s.base)
			}
		}
	}
	if rebuild {
		s.idx = segIndex{rewrite: true}
	}
	cut, err := s.rescan(buf, l.cfg.IndexIntervalBytes, !clean || rebuild, nowMs)
	if err != nil {
		return 0, err
	}
	if !last && (cut > 0 || s.idx.rewrite) {
		// An inactive segment is not written again, so its index must
		// be complete now.
		s.seal()
		if err := s.writeIndex(true); err != nil {
			return 0, err
		}
	}
	if !last && !flushed {
		if err := s.f.Sync(); err != nil {
			return 0, fmt.Errorf("storage: fsync %s: %w", s.logPath(), err)
		}
	}
	return cut, nil
}

func (l *Log) deleteSegmentFiles(bases []int64) error {
	var errs []error
	for _, b := range bases {
		errs = append(errs, removeFiles(offsetName(l.dir, b, logSuffix), offsetName(l.dir, b, indexSuffix), offsetName(l.dir, b, timeIndexSuffix)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return atomicfile.SyncDir(l.dir)
}

// walkHeaders calls fn with the header of every batch, from the one
// holding offset from to the end of the log.
func (l *Log) walkHeaders(from int64, buf []byte, fn func(h *header)) error {
	for _, s := range l.segs {
		if s.next <= from || s.size == 0 {
			continue
		}
		_, pos := s.idx.positionOf(from - s.base)
		r := newFileReader(s.f, s.size, 1<<20, buf)
		for pos < s.size {
			h, err := r.header(pos)
			if err != nil {
				return fmt.Errorf("storage: reading segment %d at %d: %w", s.base, pos, err)
			}
			pos += h.size()
			if h.lastOffset() >= from {
				fn(&h)
			}
		}
		buf = r.buf
	}
	return nil
}

// replayProducers applies the batches at or after producersFrom (a
// snapshot's offset) to table, reading from offset from.
func (l *Log) replayProducers(table map[int64]producerEntry, from, producersFrom int64) error {
	return l.walkHeaders(from, nil, func(h *header) {
		if h.idempotent() && h.baseOffset >= producersFrom {
			e, ok := table[h.producerID]
			table[h.producerID] = applyStored(e, ok, h)
		}
	})
}
