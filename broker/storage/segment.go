package storage

import (
	"errors"
	"fmt"
	"math"
	"os"
)

// segment is one .log file and its indexes. Its fields are guarded by the
// Log's locks (see doc.go); the file itself is appended to only while the
// segment is the last one.
type segment struct {
	dir  string
	base int64    // base offset: the file name
	f    *os.File // read-write; reads use pread, appends pwrite at size
	size int64    // bytes of whole batches; nothing after size is ever read
	next int64    // offset after the last batch; base while empty

	maxTs    int64 // largest batch maxTimestamp, -1 if none
	maxTsOff int64 // base offset of the first batch reaching maxTs
	rollTs   int64 // ms the segment got its first batch, for segment.ms; -1 while empty
	sinceIdx int64 // bytes appended since the last offset index entry

	idx  segIndex
	rd   descriptors // read descriptors kept for FileSlices
	tail batchTail   // the latest batches, while the segment is active
	// handed: bytes before it were handed to Writeback, or were in the file
	// when it was opened. dropped: bytes before it were queued for
	// drop-behind. Both guarded by the log's writeMu alone.
	handed, dropped int64
}

func (s *segment) logPath() string       { return offsetName(s.dir, s.base, logSuffix) }
func (s *segment) indexPath() string     { return offsetName(s.dir, s.base, indexSuffix) }
func (s *segment) timeIndexPath() string { return offsetName(s.dir, s.base, timeIndexSuffix) }

// createSegment starts an empty segment at base, replacing any files of
// that name (a segment removed by truncation may be created again).
func createSegment(dir string, base int64) (*segment, error) {
	s := &segment{dir: dir, base: base, next: base, maxTs: -1, maxTsOff: base, rollTs: -1}
	if err := removeFiles(s.indexPath(), s.timeIndexPath()); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	f, err := os.OpenFile(s.logPath(), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	s.f = f
	return s, nil
}

// openSegment opens an existing segment; its state is unknown until the
// caller loads or rebuilds the index and calls rescan.
func openSegment(dir string, base int64) (*segment, error) {
	s := &segment{dir: dir, base: base, next: base, maxTs: -1, maxTsOff: base, rollTs: -1}
	f, err := os.OpenFile(s.logPath(), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	s.f = f
	return s, nil
}

// track accounts for a batch written at pos: end offset, size, largest
// timestamp, and the index entries index.interval.bytes calls for.
func (s *segment) track(pos int64, h *header, interval int32, nowMs int64) {
	if s.rollTs < 0 {
		s.rollTs = nowMs
	}
	if h.maxTimestamp > s.maxTs {
		s.maxTs, s.maxTsOff = h.maxTimestamp, h.baseOffset
	}
	if s.sinceIdx > int64(interval) {
		s.idx.offsets = append(s.idx.offsets, offsetEntry{rel: int32(h.baseOffset - s.base), pos: int32(pos)})
		if s.maxTs >= 0 {
			s.idx.maybeAddTime(s.maxTs, s.maxTsOff-s.base)
		}
		s.sinceIdx = 0
	}
	s.sinceIdx += h.size()
	s.next = h.lastOffset() + 1
	s.size = pos + h.size()
	s.tail.add(pos, h)
}

// seal adds the time index entry that records the segment's largest
// timestamp, for when it stops being active or the log closes.
func (s *segment) seal() {
	if s.maxTs >= 0 {
		s.idx.maybeAddTime(s.maxTs, s.maxTsOff-s.base)
	}
	s.tail = batchTail{} // reads of a sealed segment are rarely at its end
}

// fits reports whether a batch spanning [first, last] can go in this
// segment without its relative offsets overflowing the index's int32.
func (s *segment) fits(last int64) bool { return last-s.base <= math.MaxInt32 }

// locate returns the position and header of the first batch whose last
// offset is >= off; found is false when every batch ends before off.
func (s *segment) locate(r *fileReader, off int64) (pos int64, h header, found bool, err error) {
	_, pos = s.idx.positionOf(off - s.base)
	for pos < s.size {
		if h, err = r.header(pos); err != nil {
			return 0, h, false, err
		}
		if h.lastOffset() >= off {
			return pos, h, true, nil
		}
		pos += h.size()
	}
	return pos, header{}, false, nil
}

// lastBoundary returns the end of the last whole batch in [from, limit],
// or from when the batch at from does not end by limit. from and every index
// position are batch boundaries, so the walk starts at the closest one.
func (s *segment) lastBoundary(r *fileReader, from, limit int64) (int64, error) {
	pos := max(from, s.idx.atPosition(limit))
	for pos < limit {
		h, err := r.header(pos)
		if err != nil {
			return 0, err
		}
		if pos+h.size() > limit {
			break
		}
		pos += h.size()
	}
	return pos, nil
}

// rescan rebuilds the segment's state by reading from its last offset index
// entry (from the start when there is none) to the end of the file. With
// validate it checks each batch's CRC. At the first torn or invalid batch it
// truncates the file and reports how many bytes it cut.
func (s *segment) rescan(buf []byte, interval int32, validate bool, nowMs int64) (int64, error) {
	st, err := s.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("storage: %w", err)
	}
	fileSize := st.Size()
	r := newFileReader(s.f, fileSize, 1<<20, buf)
	start, next := int64(0), s.base
	if n := len(s.idx.offsets); n > 0 {
		e := s.idx.offsets[n-1]
		h, err := r.header(int64(e.pos))
		if err != nil || h.baseOffset != s.base+int64(e.rel) {
			s.idx.reset() // the entry points at no batch: rebuild from 0
		} else {
			// Batches before the entry end at or before its base
			// (compaction may have left a gap).
			start, next = int64(e.pos), h.baseOffset
		}
	}
	s.size, s.next, s.sinceIdx, s.rollTs = start, next, 0, -1
	s.maxTs, s.maxTsOff = -1, s.base
	s.tail.reset()
	if n := len(s.idx.times); n > 0 {
		s.maxTs, s.maxTsOff = s.idx.times[n-1].ts, s.base+int64(s.idx.times[n-1].rel)
	}
	if start > 0 {
		// segment.ms counts from the first batch; its timestamp is the
		// best record of when the segment was started.
		if h, err := r.header(0); err == nil && h.maxTimestamp >= 0 {
			s.rollTs = min(h.maxTimestamp, nowMs)
		}
	}
	pos := start
	for pos < fileSize {
		h, b, err := r.batch(pos)
		if err == nil && validate {
			_, err = checkStored(b)
		}
		if err == nil && (h.count < 0 || h.lastDelta < 0 || int64(h.count) > int64(h.lastDelta)+1) {
			err = corrupt("record count %d, last offset delta %d", h.count, h.lastDelta)
		}
		if err == nil && (h.baseOffset < s.next || !s.fits(h.lastOffset())) {
			err = corrupt("base offset %d after %d in segment %d", h.baseOffset, s.next, s.base)
		}
		if err != nil {
			if errors.Is(err, errShort) || errors.Is(err, ErrCorruptMessage) {
				break
			}
			return 0, err
		}
		if pos == 0 && h.maxTimestamp >= 0 {
			s.rollTs = min(h.maxTimestamp, nowMs)
		}
		s.track(pos, &h, interval, nowMs)
		pos = s.size
	}
	// Time entries past the last batch would point at missing offsets.
	s.idx.truncate(s.size, s.next-s.base)
	if pos == fileSize {
		return 0, nil
	}
	if err := s.f.Truncate(pos); err != nil {
		return 0, fmt.Errorf("storage: truncating %s: %w", s.logPath(), err)
	}
	return fileSize - pos, nil
}

// truncateAt cuts the file at pos, a batch boundary, and rebuilds the state
// from the index entries that remain.
func (s *segment) truncateAt(pos int64, buf []byte, interval int32, nowMs int64) error {
	rel := s.next - s.base
	if pos < s.size {
		r := newFileReader(s.f, s.size, headerLen, buf)
		h, err := r.header(pos)
		if err != nil {
			return err
		}
		rel = h.baseOffset - s.base
	}
	s.idx.truncate(pos, rel)
	if err := s.f.Truncate(pos); err != nil {
		return fmt.Errorf("storage: truncating %s: %w", s.logPath(), err)
	}
	_, err := s.rescan(buf, interval, false, nowMs)
	s.handed, s.dropped = min(s.handed, s.size), min(s.dropped, s.size)
	return err
}

// writeIndex writes the index files, fsyncing them when sync is set.
func (s *segment) writeIndex(sync bool) error {
	return s.idx.write(s.indexPath(), s.timeIndexPath(), sync)
}

func (s *segment) close() error { return errors.Join(s.f.Close(), s.rd.replaced(true)) }

// remove closes the segment and deletes its files.
func (s *segment) remove() error {
	return errors.Join(s.close(), removeFiles(s.logPath(), s.indexPath(), s.timeIndexPath()))
}
