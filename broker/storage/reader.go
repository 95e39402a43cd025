package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// errShort means a batch runs past the readable end of a file: a torn write
// during recovery, corruption anywhere else.
var errShort = errors.New("storage: batch runs past the end of the segment")

// fileReader reads batches and batch headers from a segment file through a
// chunk buffer, so that walking many small batches costs one pread per chunk
// rather than one per header.
type fileReader struct {
	f      *os.File
	end    int64 // nothing at or after end is read
	chunk  int
	buf    []byte // buf[:n] holds the file from bufPos
	bufPos int64
	n      int
}

func newFileReader(f *os.File, end int64, chunk int, buf []byte) *fileReader {
	return &fileReader{f: f, end: end, chunk: chunk, buf: buf[:0]}
}

// bytes returns the file's bytes [pos, pos+n), valid until the next call.
func (r *fileReader) bytes(pos int64, n int) ([]byte, error) {
	if pos < 0 || int64(n) > r.end-pos {
		return nil, errShort
	}
	if pos >= r.bufPos && pos+int64(n) <= r.bufPos+int64(r.n) {
		return r.buf[pos-r.bufPos : pos-r.bufPos+int64(n)], nil
	}
	want := int(min(int64(max(n, r.chunk)), r.end-pos))
	if cap(r.buf) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	got, err := r.f.ReadAt(r.buf, pos)
	r.bufPos, r.n = pos, got
	if got < n {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, errShort
		}
		return nil, fmt.Errorf("storage: reading %s: %w", r.f.Name(), err)
	}
	return r.buf[:n], nil
}

// header returns the header of the batch at pos, checking only that the
// batch's length is sane and that it fits before end.
func (r *fileReader) header(pos int64) (header, error) {
	b, err := r.bytes(pos, headerLen)
	if err != nil {
		return header{}, err
	}
	h := parseHeader(b)
	if h.length < headerLen-lengthBase || h.size() > r.end-pos {
		return h, errShort
	}
	if h.magic != 2 {
		return h, corrupt("magic %d at position %d", h.magic, pos)
	}
	return h, nil
}

// batch returns the whole batch at pos and its header, without checking the
// CRC.
func (r *fileReader) batch(pos int64) (header, []byte, error) {
	h, err := r.header(pos)
	if err != nil {
		return h, nil, err
	}
	b, err := r.bytes(pos, int(h.size()))
	return h, b, err
}
