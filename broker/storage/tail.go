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

// span is readSegment's answer from memory: the byte range [start, stop)
// to return for a read at offset, or ok false when offset is older than
// the tail (or past it). Its rules are readSegment's: the first batch with
// an offset at or after offset, nothing holding maxOffset or beyond, whole
// batches within maxBytes, the first batch alone with minOneBatch.
func (t *batchTail) span(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) (start, stop int64, ok bool) {
	n := t.len()
	if n == 0 || offset < t.at(0).base {
		return 0, 0, false
	}
	// The first batch ending at or after offset.
	i := sort.Search(n, func(i int) bool { return t.at(i).last >= offset })
	if i == n {
		return 0, 0, false
	}
	first := t.at(i)
	if first.last >= maxOffset {
		return first.pos, first.pos, true
	}
	// The batch holding maxOffset (if any) starts where the readable part
	// ends.
	end := t.at(n-1).pos + t.at(n-1).size
	if j := sort.Search(n-i, func(k int) bool { return t.at(i+k).last >= maxOffset }); j < n-i {
		end = t.at(i + j).pos
	}
	limit := min(first.pos+int64(maxBytes), end)
	stop = first.pos
	for k := i; k < n; k++ {
		e := t.at(k)
		if e.pos+e.size > limit {
			break
		}
		stop = e.pos + e.size
	}
	if stop == first.pos && minOneBatch {
		stop = first.pos + first.size
	}
	return first.pos, stop, true
}
