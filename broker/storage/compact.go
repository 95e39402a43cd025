package storage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/kdr-io/kdr/internal/atomicfile"
	"github.com/twmb/franz-go/pkg/kgo"
)

// compact runs one compaction pass when the dirty ratio calls for it;
// callers hold cleanMu only, so appends and reads go on meanwhile.
//
// The cleanable segments are the inactive ones, up to the first that is
// younger than min.compaction.lag.ms. Segments from the cleaner checkpoint on
// are dirty; the pass runs when dirty bytes / cleanable bytes reaches
// min.cleanable.dirty.ratio. It keeps, per key, only the record with the
// largest offset anywhere in the log (so records in the active segment
// shadow older ones too), drops tombstones from segments whose newest record
// is older than delete.retention.ms, and rewrites each segment in place:
// offsets are unchanged (gaps are fine), each surviving batch keeps its
// header fields and codec with only its kept records, and a batch left empty
// is dropped unless it is its producer's last (kept, empty, so the
// producer's sequence survives a restart). Control batches stay as they are.
func (l *Log) compact(nowMs int64) error {
	l.mu.RLock()
	segs := slices.Clone(l.segs)
	activeSize := l.active().size
	cfg := l.cfg
	lastBatch := make(map[int64]int64, len(l.producers))
	for id, e := range l.producers {
		if m, ok := e.last(); ok {
			lastBatch[id] = m.lastOff
		}
	}
	l.mu.RUnlock()

	end := 0
	for end < len(segs)-1 && (segs[end].size == 0 || nowMs-segmentTime(segs[end]) >= cfg.MinCompactionLagMs) {
		end++
	}
	var dirty, total int64
	for _, s := range segs[:end] {
		total += s.size
		if s.base >= l.cleanerOffset {
			dirty += s.size
		}
	}
	if dirty == 0 || float64(dirty)/float64(total) < cfg.MinCleanableDirtyRatio {
		return nil
	}
	c := &cleaner{l: l, lastBatch: lastBatch, interval: cfg.IndexIntervalBytes, nowMs: nowMs, buf: make([]byte, 0, 1<<20)}
	if err := c.latestOffsets(segs, activeSize); err != nil {
		return err
	}
	for i, s := range segs[:end] {
		dropTombstones := nowMs-segmentTime(s) > cfg.DeleteRetentionMs
		if err := c.clean(s, i == 0, dropTombstones); err != nil {
			return err
		}
	}
	l.cleanerOffset = segs[end].base
	if err := writeOffsetFile(l.path(cleanerFile), l.cleanerOffset); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// cleaner holds one compaction pass's state.
type cleaner struct {
	l         *Log
	keys      map[string]int64 // key → offset of its latest record
	lastBatch map[int64]int64  // producer ID → last offset of its last batch
	interval  int32
	nowMs     int64
	buf       []byte
	comps     [codecZstd + 1]kgo.Compressor
	cbuf      bytes.Buffer
	kept      [][]byte
	w         *bufio.Writer // reused for every segment of the pass
}

// latestOffsets fills keys from every record of every segment, the active
// one read up to activeSize.
func (c *cleaner) latestOffsets(segs []*segment, activeSize int64) error {
	c.keys = make(map[string]int64)
	for i, s := range segs {
		size := activeSize // the active segment's size is read under mu only
		if i < len(segs)-1 {
			size = s.size
		}
		r := newFileReader(s.f, size, 1<<20, c.buf)
		for pos := int64(0); pos < size; {
			h, b, err := r.batch(pos)
			if err != nil {
				return fmt.Errorf("storage: compaction reading segment %d at %d: %w", s.base, pos, err)
			}
			pos += h.size()
			if h.isControl() {
				continue
			}
			err = eachRecord(c.l.dec, b, &h, func(rec *record) bool {
				if rec.key != nil {
					c.keys[string(rec.key)] = h.baseOffset + int64(rec.offsetDelta)
				}
				return true
			})
			if err != nil {
				c.l.logger.Warn("compaction skips an undecodable batch", "segment", s.base, "offset", h.baseOffset, "err", err)
			}
		}
		c.buf = r.buf
	}
	return nil
}

// clean rewrites one segment into <name>.cleaned and swaps it in; a segment
// with nothing to drop is left alone. An emptied segment is deleted unless it
// is the first (its base offset anchors the log start).
func (c *cleaner) clean(s *segment, first, dropTombstones bool) error {
	cleanedPath := s.logPath() + cleanedSuffix
	f, err := os.OpenFile(cleanedPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	ns := &segment{dir: s.dir, base: s.base, next: s.base, maxTs: -1, maxTsOff: s.base, rollTs: -1}
	if c.w == nil {
		c.w = bufio.NewWriterSize(f, 1<<20)
	}
	w := c.w
	w.Reset(f)
	r := newFileReader(s.f, s.size, 1<<20, c.buf)
	changed := false
	for pos := int64(0); pos < s.size; {
		h, b, err := r.batch(pos)
		if err != nil {
			f.Close()
			return fmt.Errorf("storage: compaction reading segment %d at %d: %w", s.base, pos, err)
		}
		pos += h.size()
		out, keep, err := c.filter(b, &h, dropTombstones)
		if err != nil {
			c.l.logger.Warn("compaction keeps an undecodable batch as is", "segment", s.base, "offset", h.baseOffset, "err", err)
			out, keep = b, true
		}
		if !keep || &out[0] != &b[0] {
			changed = true // dropped or rebuilt
		}
		if !keep {
			continue
		}
		nh := parseHeader(out)
		ns.track(ns.size, &nh, c.interval, c.nowMs)
		if _, err := w.Write(out); err != nil {
			f.Close()
			return fmt.Errorf("storage: %w", err)
		}
	}
	c.buf = r.buf
	if !changed {
		f.Close()
		return removeFiles(cleanedPath)
	}
	ns.seal()
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = ns.idx.write(s.indexPath()+cleanedSuffix, s.timeIndexPath()+cleanedSuffix, true)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("storage: writing %s: %w", cleanedPath, err)
	}
	ns.f = f
	return c.swap(s, ns, first)
}

// swap puts the cleaned segment in place of s. Index files are removed
// before the log is renamed, so a crash in between leaves a log without an
// index (rebuilt on Open), never a log with another log's index. The renames
// happen under mu so that no reader pairs the new file with old positions;
// the directory fsync that makes them durable does not need the lock.
func (c *cleaner) swap(s, ns *segment, first bool) error {
	l := c.l
	err := c.swapLocked(s, ns, first)
	if err != nil {
		return err
	}
	return atomicfile.SyncDir(l.dir)
}

func (c *cleaner) swapLocked(s, ns *segment, first bool) error {
	l := c.l
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if ns.size == 0 && !first {
		i := slices.Index(l.segs, s)
		l.segs = slices.Delete(l.segs, i, i+1)
		return errors.Join(ns.f.Close(), s.remove(),
			removeFiles(s.logPath()+cleanedSuffix, s.indexPath()+cleanedSuffix, s.timeIndexPath()+cleanedSuffix))
	}
	err := removeFiles(s.indexPath(), s.timeIndexPath())
	for _, p := range []string{s.logPath(), s.indexPath(), s.timeIndexPath()} {
		if err == nil {
			err = os.Rename(p+cleanedSuffix, p)
		}
	}
	if err != nil {
		ns.f.Close()
		return fmt.Errorf("storage: swapping in cleaned segment %d: %w", s.base, err)
	}
	old := s.f
	s.f, s.size, s.next, s.maxTs, s.maxTsOff, s.sinceIdx, s.idx = ns.f, ns.size, ns.next, ns.maxTs, ns.maxTsOff, ns.sinceIdx, ns.idx
	return errors.Join(old.Close(), s.rd.replaced(false))
}

// filter returns the batch with only the records compaction keeps, whether
// anything is kept, and b itself when every record is.
func (c *cleaner) filter(b []byte, h *header, dropTombstones bool) ([]byte, bool, error) {
	if h.isControl() {
		return b, true, nil
	}
	c.kept = c.kept[:0]
	maxTs := int64(-1)
	err := eachRecord(c.l.dec, b, h, func(rec *record) bool {
		off := h.baseOffset + int64(rec.offsetDelta)
		keep := rec.key == nil || c.keys[string(rec.key)] == off
		if keep && rec.value == nil && dropTombstones {
			keep = false
		}
		if keep {
			c.kept = append(c.kept, rec.raw)
			maxTs = max(maxTs, recordTimestamp(h, rec))
		}
		return true
	})
	switch {
	case err != nil:
		return nil, false, err
	case len(c.kept) == int(h.count):
		return b, true, nil
	case len(c.kept) == 0:
		if h.idempotent() && c.lastBatch[h.producerID] == h.lastOffset() {
			return emptyBatch(b), true, nil
		}
		return nil, false, nil
	}
	payload := slices.Concat(c.kept...)
	if codec := h.codec(); codec != 0 {
		comp, err := c.compressor(codec)
		if err != nil {
			return nil, false, err
		}
		c.cbuf.Reset()
		out, used := comp.Compress(&c.cbuf, payload)
		if int8(used) != codec {
			return nil, false, fmt.Errorf("storage: recompressing with codec %d failed", codec)
		}
		payload = out
	}
	out := make([]byte, headerLen, headerLen+len(payload))
	copy(out, b[:headerLen])
	out = append(out, payload...)
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)-lengthBase))
	binary.BigEndian.PutUint32(out[offRecordCount:], uint32(len(c.kept)))
	if !h.isLogAppendTime() {
		binary.BigEndian.PutUint64(out[offMaxTimestamp:], uint64(maxTs))
	}
	setCRC(out)
	return out, true, nil
}

// emptyBatch is b's header with no records: it keeps the offset range and
// the producer's sequence range. With no records there is nothing to
// compress, so the codec bits are cleared.
func emptyBatch(b []byte) []byte {
	out := append([]byte(nil), b[:headerLen]...)
	binary.BigEndian.PutUint32(out[offLength:], headerLen-lengthBase)
	binary.BigEndian.PutUint32(out[offRecordCount:], 0)
	attrs := binary.BigEndian.Uint16(out[offAttributes:]) &^ attrCodecMask
	binary.BigEndian.PutUint16(out[offAttributes:], attrs)
	setCRC(out)
	return out
}

func (c *cleaner) compressor(codec int8) (kgo.Compressor, error) {
	if c.comps[codec] != nil {
		return c.comps[codec], nil
	}
	var cc kgo.CompressionCodec
	switch codec {
	case 1:
		cc = kgo.GzipCompression()
	case 2:
		cc = kgo.SnappyCompression()
	case 3:
		cc = kgo.Lz4Compression()
	case 4:
		cc = kgo.ZstdCompression()
	default:
		return nil, corrupt("unknown compression codec %d", codec)
	}
	comp, err := kgo.DefaultCompressor(cc)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	c.comps[codec] = comp
	return comp, nil
}
