package storage

import (
	"encoding/binary"
	"fmt"
	"math"
)

// AppendInfo describes a successful append.
type AppendInfo struct {
	// BaseOffset and LastOffset are the offsets assigned; for a duplicate,
	// the offsets the original append got.
	BaseOffset, LastOffset int64
	// LogAppendTime is the broker time (ms) stamped on the batches, -1
	// unless message.timestamp.type is LogAppendTime.
	LogAppendTime  int64
	LogStartOffset int64
	// Duplicate is set when the batches are an idempotent producer's
	// retry of batches already in the log; nothing was appended.
	Duplicate   bool
	RecordCount int
}

// AppendAsLeader validates and appends the record batches of one produce
// request for this partition (one or more concatenated batches), assigning
// offsets from the log end offset and stamping leaderEpoch. Every batch is
// checked before any is written, so an error appends nothing.
//
// Only batch headers are read (plus the records of compacted topics, whose
// keys must not be null); the bytes are written in one call. batches is not
// modified.
func (l *Log) AppendAsLeader(batches []byte, leaderEpoch int32) (AppendInfo, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return AppendInfo{}, ErrClosed
	}
	records, err := l.checkLeaderBatches(batches)
	if err != nil {
		return AppendInfo{}, err
	}
	leo := l.leo()
	info, err := l.checkSequences(batches, leo)
	if err != nil {
		return AppendInfo{}, err
	}
	if info.Duplicate {
		info.RecordCount = records
		return info, nil
	}

	// Stamp a copy: the caller's buffer stays as the client sent it.
	buf := append(l.wbuf[:0], batches...)
	nowMs := l.nowMs()
	stampTime := l.cfg.logAppendTime()
	off := leo
	for p := int64(0); p < int64(len(buf)); {
		b := buf[p:]
		size := int64(int32(binary.BigEndian.Uint32(b[offLength:]))) + lengthBase
		binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
		binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(leaderEpoch))
		if stampTime {
			binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(nowMs))
			attrs := binary.BigEndian.Uint16(b[offAttributes:]) | attrLogAppendTime
			binary.BigEndian.PutUint16(b[offAttributes:], attrs)
			setCRC(b[:size])
		}
		off += int64(int32(binary.BigEndian.Uint32(b[offLastDelta:]))) + 1
		p += size
	}
	if cap(buf) > 16<<20 {
		l.wbuf = nil // do not pin one huge request's buffer forever
	} else {
		l.wbuf = buf
	}
	if err := l.write(buf, leo, off-1, leo, nowMs, false); err != nil {
		return AppendInfo{}, err
	}
	info = AppendInfo{BaseOffset: leo, LastOffset: off - 1, LogAppendTime: -1, RecordCount: records}
	if stampTime {
		info.LogAppendTime = nowMs
	}
	l.mu.RLock()
	info.LogStartOffset = l.logStart
	l.mu.RUnlock()
	return info, l.afterWrite(int64(records), nowMs)
}

// checkLeaderBatches checks each batch on its own and returns the record
// count.
func (l *Log) checkLeaderBatches(batches []byte) (int, error) {
	if len(batches) == 0 {
		return 0, corrupt("no record batch")
	}
	records := 0
	for i, b := 0, batches; len(b) > 0; i++ {
		h, err := checkProduced(b)
		if err != nil {
			return 0, fmt.Errorf("batch %d: %w", i, err)
		}
		if h.size() > int64(l.cfg.MaxMessageBytes) {
			return 0, fmt.Errorf("%w: batch %d is %d bytes, max.message.bytes is %d", ErrMessageTooLarge, i, h.size(), l.cfg.MaxMessageBytes)
		}
		if h.isControl() {
			return 0, fmt.Errorf("%w: clients may not write control batches", ErrInvalidRecord)
		}
		if h.idempotent() && h.baseSequence < 0 {
			return 0, fmt.Errorf("%w: producer %d sent sequence %d", ErrInvalidRecord, h.producerID, h.baseSequence)
		}
		if l.cfg.compacts() {
			if err := l.checkKeys(b[:h.size()], &h); err != nil {
				return 0, fmt.Errorf("batch %d: %w", i, err)
			}
		}
		records += int(h.count)
		b = b[h.size():]
	}
	return records, nil
}

// checkKeys rejects a null key, which a compacted topic cannot keep; it has
// to decompress, the only per-record work an append may do.
func (l *Log) checkKeys(batch []byte, h *header) error {
	var bad error
	err := eachRecord(l.dec, batch, h, func(r *record) bool {
		if r.key == nil {
			bad = fmt.Errorf("%w: null key at offset delta %d on a compacted topic", ErrInvalidRecord, r.offsetDelta)
		}
		return bad == nil
	})
	if err != nil {
		return err
	}
	return bad
}

// checkSequences runs the idempotence checks of every batch, as if they got
// offsets from leo, staging the producer changes in l.staged. When every
// batch is a retry it returns the original offsets with Duplicate set; a mix
// of retries and new batches is out of order.
func (l *Log) checkSequences(batches []byte, leo int64) (AppendInfo, error) {
	l.staged = l.staged[:0]
	var first, last batchMeta
	dups, n := 0, 0
	next := leo
	for b := batches; len(b) > 0; n++ {
		h := parseHeader(b)
		b = b[h.size():]
		h.baseOffset = next
		if h.idempotent() {
			cur, known := stagedEntry(l.producers, l.staged, h.producerID)
			upd, dup, isDup, err := checkLeader(cur, known, &h)
			if err != nil {
				return AppendInfo{}, err
			}
			if isDup {
				if dups == 0 {
					first = dup
				}
				last, dups = dup, dups+1
				continue
			}
			l.staged = append(l.staged, producerUpdate{id: h.producerID, entry: upd})
		}
		next = h.lastOffset() + 1
	}
	switch {
	case dups == 0:
		return AppendInfo{}, nil
	case dups < n:
		return AppendInfo{}, fmt.Errorf("%w: %d of %d batches are retries of appended batches", ErrOutOfOrderSequence, dups, n)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return AppendInfo{BaseOffset: first.firstOff, LastOffset: last.lastOff, LogAppendTime: -1, LogStartOffset: l.logStart, Duplicate: true}, nil
}

// AppendAsFollower appends batches whose offsets the leader assigned
// (replication). They are stored verbatim. The first must start at or after
// the log end offset (after it when the leader's log was compacted) and each
// after the one before. Producer state and the epoch cache are updated; no
// sequence check can fail.
func (l *Log) AppendAsFollower(batches []byte) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if len(batches) == 0 {
		return nil
	}
	leo := l.leo()
	first := int64(-1)
	next, records := leo, int64(0)
	for i, b := 0, batches; len(b) > 0; i++ {
		h, err := checkStored(b)
		if err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		if h.baseOffset < next {
			return fmt.Errorf("%w: batch %d has base offset %d, expected at least %d", ErrOffsetOutOfRange, i, h.baseOffset, next)
		}
		if first < 0 {
			first = h.baseOffset
		}
		next, records = h.lastOffset()+1, records+int64(h.count)
		b = b[h.size():]
	}
	if next-1-first > math.MaxInt32 {
		return corrupt("batches span %d offsets, more than one segment can index", next-first)
	}
	l.staged = l.staged[:0]
	nowMs := l.nowMs()
	if err := l.write(batches, first, next-1, leo, nowMs, true); err != nil {
		return err
	}
	return l.afterWrite(records, nowMs)
}

// write rolls if needed, writes buf (whole batches for offsets first..last)
// at the end of the active segment in one call, and publishes the batches:
// segment state, staged producer changes (leader) or producer state from the
// headers (follower), and leader epochs.
func (l *Log) write(buf []byte, first, last, leo, nowMs int64, follower bool) error {
	if err := l.maybeRoll(int64(len(buf)), first, last, leo, nowMs); err != nil {
		return err
	}
	s := l.active()
	pos := s.size
	if _, err := s.f.WriteAt(buf, pos); err != nil {
		// Nothing past size is ever read; cut what did land so the
		// file does not keep a torn tail until the next append.
		s.f.Truncate(pos)
		return fmt.Errorf("storage: writing %s: %w", s.logPath(), err)
	}
	l.wb.offer(s, pos+int64(len(buf)))
	epochBefore := l.epochs.latest()
	l.mu.Lock()
	interval := l.cfg.IndexIntervalBytes
	for p := int64(0); p < int64(len(buf)); {
		h := parseHeader(buf[p:])
		s.track(pos+p, &h, interval, nowMs)
		l.epochs.assign(h.leaderEpoch, h.baseOffset)
		if follower && h.idempotent() {
			e, ok := l.producers[h.producerID]
			l.producers[h.producerID] = applyStored(e, ok, &h)
		}
		p += h.size()
	}
	for _, u := range l.staged {
		l.producers[u.id] = u.entry
	}
	l.mu.Unlock()
	if l.epochs.latest() != epochBefore || l.epochsDirty {
		l.persistEpochs()
	}
	return nil
}

// afterWrite applies flush.messages.
func (l *Log) afterWrite(records, nowMs int64) error {
	l.unflushed += records
	if l.unflushed >= l.cfg.FlushMessages {
		return l.flushLocked(nowMs)
	}
	return nil
}

// maybeRoll starts a new segment when the batches would make the active one
// exceed segment.bytes (or the int32 positions of its index), when their
// offsets would not fit its index, or when it is older than segment.ms.
func (l *Log) maybeRoll(size, first, last, leo, nowMs int64) error {
	s := l.active()
	if s.size == 0 {
		if !s.fits(last) {
			// Only a follower gets here: the leader's log skips more
			// offsets than this empty segment's index can span.
			return l.roll(first, nowMs)
		}
		return nil
	}
	switch {
	case s.size+size > l.cfg.SegmentBytes, s.size+size > math.MaxInt32:
	case !s.fits(last):
		return l.roll(max(leo, first), nowMs)
	case nowMs-s.rollTs > l.cfg.SegmentMs:
	default:
		return nil
	}
	return l.roll(leo, nowMs)
}
