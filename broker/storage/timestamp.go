package storage

// OffsetForTimestamp answers ListOffsets for a timestamp: the offset and
// timestamp of the first record (not batch) at or after the log start
// offset whose timestamp is >= ts, decompressing batches to find it. ok is
// false when no record is that recent.
func (l *Log) OffsetForTimestamp(ts int64) (offset int64, timestamp int64, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return -1, -1, false
	}
	bp := l.chunk()
	defer l.putChunk(bp)
	for _, s := range l.segs {
		// The first segment whose largest timestamp reaches ts holds
		// the answer unless every such record is below the log start.
		if s.size == 0 || s.maxTs < ts || s.next <= l.logStart {
			continue
		}
		r := newFileReader(s.f, s.size, 4096, *bp)
		offset, timestamp, ok, err := l.searchTime(s, r, ts)
		*bp = r.buf[:0]
		if err != nil {
			l.logger.Error("searching for a timestamp", "segment", s.base, "timestamp", ts, "err", err)
			return -1, -1, false
		}
		if ok {
			return offset, timestamp, true
		}
	}
	return -1, -1, false
}

// searchTime looks in one segment: the time index gives a batch before
// which nothing reaches ts, then batches whose maxTimestamp reaches ts are
// decoded record by record.
func (l *Log) searchTime(s *segment, r *fileReader, ts int64) (int64, int64, bool, error) {
	from := max(s.base+s.idx.relForTime(ts), l.logStart)
	pos, _, found, err := s.locate(r, from)
	if err != nil || !found {
		return -1, -1, false, err
	}
	for pos < s.size {
		h, err := r.header(pos)
		if err != nil {
			return -1, -1, false, err
		}
		if h.maxTimestamp >= ts && h.lastOffset() >= l.logStart && !h.isControl() {
			_, b, err := r.batch(pos)
			if err != nil {
				return -1, -1, false, err
			}
			offset, at := int64(-1), int64(-1)
			err = eachRecord(l.dec, b, &h, func(rec *record) bool {
				off, t := h.baseOffset+int64(rec.offsetDelta), recordTimestamp(&h, rec)
				if off >= l.logStart && t >= ts {
					offset, at = off, t
					return false
				}
				return true
			})
			if err != nil {
				return -1, -1, false, err
			}
			if offset >= 0 {
				return offset, at, true, nil
			}
		}
		pos += h.size()
	}
	return -1, -1, false, nil
}

// MaxTimestamp answers ListOffsets -3 (KIP-734): the offset and timestamp of
// the record with the largest timestamp (the first such record), or (-1, -1)
// for a log with no timestamped records.
func (l *Log) MaxTimestamp() (offset int64, timestamp int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return -1, -1
	}
	var best *segment
	for _, s := range l.segs {
		if s.size > 0 && s.maxTs >= 0 && (best == nil || s.maxTs > best.maxTs) {
			best = s
		}
	}
	if best == nil {
		return -1, -1
	}
	bp := l.chunk()
	defer l.putChunk(bp)
	r := newFileReader(best.f, best.size, 4096, *bp)
	defer func() { *bp = r.buf[:0] }()
	// maxTsOff is the base of the first batch that reached the maximum.
	pos, h, found, err := best.locate(r, best.maxTsOff)
	if err != nil || !found || h.maxTimestamp != best.maxTs {
		return best.maxTsOff, best.maxTs
	}
	_, b, err := r.batch(pos)
	if err != nil {
		return best.maxTsOff, best.maxTs
	}
	offset = h.baseOffset
	eachRecord(l.dec, b, &h, func(rec *record) bool {
		if recordTimestamp(&h, rec) == best.maxTs {
			offset = h.baseOffset + int64(rec.offsetDelta)
			return false
		}
		return true
	})
	return offset, best.maxTs
}
