package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"
)

// FileSlice is the bytes [pos, pos+size) of one segment file: whole batches
// only. It holds its own descriptor, so it stays readable when retention or
// compaction removes or replaces the segment after Read returned. (A
// TruncateTo of the same bytes shortens the file, and the read then fails.)
// The caller must Close it, which gives the descriptor back to the segment.
type FileSlice struct {
	f    *os.File
	pos  int64
	size int64
	rd   *descriptors // where f goes back on Close
	gen  uint64       // f's generation in rd
}

// Size is the number of bytes in the slice; 0 means nothing to read.
func (s *FileSlice) Size() int { return int(s.size) }

// WriteTo copies the slice to w. With a *net.TCPConn as w, io.Copy of an
// *io.LimitedReader over an *os.File becomes sendfile(2).
func (s *FileSlice) WriteTo(w io.Writer) (int64, error) {
	if s.size == 0 {
		return 0, nil
	}
	if s.f == nil {
		return 0, ErrClosed
	}
	if _, err := s.f.Seek(s.pos, io.SeekStart); err != nil {
		return 0, fmt.Errorf("storage: %w", err)
	}
	return io.Copy(w, io.LimitReader(s.f, s.size))
}

// ReadAll appends the slice's bytes to dst (one pread).
func (s *FileSlice) ReadAll(dst []byte) ([]byte, error) {
	if s.size == 0 {
		return dst, nil
	}
	if s.f == nil {
		return dst, ErrClosed
	}
	n := len(dst)
	dst = slices.Grow(dst, int(s.size))[:n+int(s.size)]
	if _, err := s.f.ReadAt(dst[n:], s.pos); err != nil {
		return dst[:n], fmt.Errorf("storage: reading %s: %w", s.f.Name(), err)
	}
	return dst, nil
}

// Close releases the descriptor; it is idempotent.
func (s *FileSlice) Close() error {
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	return s.rd.put(f, s.gen)
}

// Read returns whole batches of one segment starting with the batch that
// holds offset: at most maxBytes of them, and none holding an offset at or
// beyond maxOffset (the broker passes the high watermark). When the first
// batch alone exceeds maxBytes it is returned anyway if minOneBatch is set
// (KIP-74). Reading at the log end offset returns an empty slice; an offset
// below the log start offset or past the log end offset is
// ErrOffsetOutOfRange.
func (l *Log) Read(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) (*FileSlice, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	leo := l.leo()
	if offset < l.logStart || offset > leo {
		return nil, fmt.Errorf("%w: offset %d, the log holds [%d, %d]", ErrOffsetOutOfRange, offset, l.logStart, leo)
	}
	if offset >= maxOffset || offset == leo {
		return &FileSlice{}, nil
	}
	bp := l.chunk()
	defer l.putChunk(bp)
	// Compaction leaves gaps: when no batch holds offset the read starts
	// at the next batch, possibly in a later segment.
	for i := l.segmentIndex(offset); i < len(l.segs); i++ {
		s := l.segs[i]
		if s.next <= offset || s.size == 0 {
			continue
		}
		r := newFileReader(s.f, s.size, 4096, *bp)
		out, err := l.readSegment(s, r, offset, maxBytes, maxOffset, minOneBatch)
		*bp = r.buf[:0]
		if out != nil || err != nil {
			return out, err
		}
	}
	return &FileSlice{}, nil
}

// readSegment is Read within one segment; it returns nil, nil when no
// batch of s ends at or after offset.
func (l *Log) readSegment(s *segment, r *fileReader, offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) (*FileSlice, error) {
	bs := batches{s: s, r: r, inTail: s.tail.covers(offset)}
	pos, stop, found, err := bs.span(offset, maxBytes, maxOffset, minOneBatch)
	if err != nil || !found {
		return nil, err
	}
	if stop == pos {
		return &FileSlice{}, nil
	}
	f, gen, err := s.rd.get(s.logPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: segment %d is gone", ErrOffsetOutOfRange, s.base)
	} else if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return &FileSlice{f: f, pos: pos, size: stop - pos, rd: &s.rd, gen: gen}, nil
}

// batches locates a segment's batches for a read: from the active
// segment's tail in memory when it covers the read (inTail), otherwise
// through the offset index and the batch headers in the file, read with r.
type batches struct {
	s      *segment
	r      *fileReader
	inTail bool
}

// first returns the first batch whose last offset is >= off: its position,
// size and last offset; ok is false when every batch ends before off.
func (b batches) first(off int64) (pos, size, last int64, ok bool, err error) {
	if b.inTail {
		return b.s.tail.first(off)
	}
	pos, h, ok, err := b.s.locate(b.r, off)
	return pos, h.size(), h.lastOffset(), ok, err
}

// boundary returns the end of the last whole batch in [from, limit], or
// from when the batch at from does not end by limit.
func (b batches) boundary(from, limit int64) (int64, error) {
	if b.inTail {
		return b.s.tail.boundary(from, limit), nil
	}
	return b.s.lastBoundary(b.r, from, limit)
}

// span is a read's byte range [start, stop): from the first batch ending at
// or after offset, whole batches within maxBytes, none holding maxOffset or
// beyond, and the first batch alone if nothing fits and minOneBatch is set.
// found is false when no batch ends at or after offset.
func (b batches) span(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) (start, stop int64, found bool, err error) {
	pos, first, last, found, err := b.first(offset)
	if err != nil || !found {
		return 0, 0, false, err
	}
	if last >= maxOffset {
		return pos, pos, true, nil
	}
	end := b.s.size
	if maxOffset < b.s.next {
		// maxOffset is a batch boundary; the batch holding it starts
		// where the readable part ends.
		p, _, _, ok, err := b.first(maxOffset)
		if err != nil {
			return 0, 0, false, err
		}
		if ok {
			end = p
		}
	}
	stop = pos
	if limit := min(pos+int64(maxBytes), end); limit > pos {
		if stop, err = b.boundary(pos, limit); err != nil {
			return 0, 0, false, err
		}
	}
	if stop == pos && minOneBatch {
		stop = pos + first
	}
	return pos, stop, true, nil
}

// segmentIndex returns the index of the segment holding offset: the last
// one whose base is <= offset, or 0.
func (l *Log) segmentIndex(offset int64) int {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset })
	return max(i-1, 0)
}

func (l *Log) putChunk(b *[]byte) {
	if cap(*b) <= 1<<20 {
		l.chunks.Put(b)
	}
}
