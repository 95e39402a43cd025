package storage

import "sort"

// tailBatches is how many of the active segment's latest batches are
// remembered (32 bytes each, 4 KiB in all).
const tailBatches = 128

// tailBatch is where one batch of the active segment sits.
type tailBatch struct {
	base, last int64 // first and last offset
	pos        int64
	size       int64
}

// batchTail remembers the active segment's latest batches, contiguous and
// ending at the segment's size, so that a fetch at the log's tail, where
// consumers and followers spend their time, finds its byte range without
// reading batch headers back from the file (a pread each: a tenth of a
// busy broker's CPU). Anything older goes through the offset index and the
// headers as before.
type batchTail struct {
	b     []tailBatch // a ring once full
	start int         // index of the oldest entry
}

func (t *batchTail) len() int { return len(t.b) }

// at is the i-th oldest entry.
func (t *batchTail) at(i int) *tailBatch { return &t.b[(t.start+i)%len(t.b)] }

func (t *batchTail) reset() { t.b, t.start = t.b[:0], 0 }

// add remembers a batch written at pos. Batches are tracked in file order
// and a rescan resets the tail before it starts, so the entries are
// contiguous.
func (t *batchTail) add(pos int64, h *header) {
	e := tailBatch{base: h.baseOffset, last: h.lastOffset(), pos: pos, size: h.size()}
	if len(t.b) < tailBatches {
		t.b = append(t.b, e)
		return
	}
	t.b[t.start] = e
	t.start = (t.start + 1) % len(t.b)
}

// covers reports whether the tail holds the batch a read at offset starts
// with, and so every batch it may return.
func (t *batchTail) covers(offset int64) bool {
	n := t.len()
	return n > 0 && offset >= t.at(0).base && offset <= t.at(n-1).last
}

// first is batches.first from memory, for an offset the tail covers.
func (t *batchTail) first(off int64) (pos, size, last int64, ok bool, err error) {
	n := t.len()
	i := sort.Search(n, func(i int) bool { return t.at(i).last >= off })
	if i == n {
		return 0, 0, 0, false, nil
	}
	e := t.at(i)
	return e.pos, e.size, e.last, true, nil
}

// boundary is batches.boundary from memory: from is a batch the tail holds.
func (t *batchTail) boundary(from, limit int64) int64 {
	n := t.len()
	stop := from
	for k := sort.Search(n, func(i int) bool { return t.at(i).pos >= from }); k < n; k++ {
		e := t.at(k)
		if e.pos+e.size > limit {
			break
		}
		stop = e.pos + e.size
	}
	return stop
}
