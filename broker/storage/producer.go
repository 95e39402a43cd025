package storage

import (
	"fmt"
	"math"
)

// producerBatches is how many recent batches are remembered per producer:
// a producer has at most 5 requests in flight, so a retry of any of them is
// recognized as a duplicate (Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN).
const producerBatches = 5

// batchMeta identifies one appended idempotent batch.
type batchMeta struct {
	firstSeq, lastSeq int32
	firstOff, lastOff int64
}

// producerEntry is what the log knows about one producer ID.
type producerEntry struct {
	epoch   int16
	n       int // valid entries in batches, oldest first
	batches [producerBatches]batchMeta
}

func (e *producerEntry) last() (batchMeta, bool) {
	if e.n == 0 {
		return batchMeta{}, false
	}
	return e.batches[e.n-1], true
}

func (e *producerEntry) add(m batchMeta) {
	if e.n == producerBatches {
		copy(e.batches[:], e.batches[1:])
		e.n--
	}
	e.batches[e.n] = m
	e.n++
}

// duplicate returns the remembered batch with the same sequence range.
func (e *producerEntry) duplicate(firstSeq, lastSeq int32) (batchMeta, bool) {
	for _, m := range e.batches[:e.n] {
		if m.firstSeq == firstSeq && m.lastSeq == lastSeq {
			return m, true
		}
	}
	return batchMeta{}, false
}

// inSequence reports whether next follows last, wrapping at MaxInt32.
func inSequence(last, next int32) bool {
	return next == last+1 || (last == math.MaxInt32 && next == 0)
}

// checkLeader decides what an idempotent batch from a client does to its
// producer's entry (known is false for a producer never seen): isDup is set
// for a retry of a remembered batch, dup being the original, otherwise the
// updated entry is returned or the error that rejects the batch. Kafka's
// ProducerAppendInfo.checkProducerEpoch and checkSequence, minus
// transactions.
func checkLeader(cur producerEntry, known bool, h *header) (next producerEntry, dup batchMeta, isDup bool, err error) {
	firstSeq, lastSeq := h.baseSequence, h.lastSequence()
	if known && h.producerEpoch == cur.epoch {
		if m, ok := cur.duplicate(firstSeq, lastSeq); ok {
			return cur, m, true, nil
		}
	}
	switch {
	case known && h.producerEpoch < cur.epoch:
		return cur, dup, false, fmt.Errorf("%w: producer %d epoch %d, current epoch is %d", ErrInvalidProducerEpoch, h.producerID, h.producerEpoch, cur.epoch)
	case !known || h.producerEpoch > cur.epoch:
		if firstSeq != 0 {
			return cur, dup, false, fmt.Errorf("%w: producer %d epoch %d starts at sequence %d, want 0", ErrOutOfOrderSequence, h.producerID, h.producerEpoch, firstSeq)
		}
		next = producerEntry{epoch: h.producerEpoch}
	default:
		last, ok := cur.last()
		if !ok && firstSeq != 0 || ok && !inSequence(last.lastSeq, firstSeq) {
			return cur, dup, false, fmt.Errorf("%w: producer %d sent sequence %d after %d", ErrOutOfOrderSequence, h.producerID, firstSeq, last.lastSeq)
		}
		next = cur
	}
	next.add(batchMeta{firstSeq: firstSeq, lastSeq: lastSeq, firstOff: h.baseOffset, lastOff: h.lastOffset()})
	return next, dup, false, nil
}

// applyStored updates a producer's entry from a batch already in the log
// (follower appends, recovery), without judging it: the leader did.
func applyStored(cur producerEntry, known bool, h *header) producerEntry {
	if !known || h.producerEpoch != cur.epoch {
		cur = producerEntry{epoch: h.producerEpoch}
	}
	if !h.isControl() && h.baseSequence >= 0 {
		cur.add(batchMeta{firstSeq: h.baseSequence, lastSeq: h.lastSequence(), firstOff: h.baseOffset, lastOff: h.lastOffset()})
	}
	return cur
}

// producerUpdate is an entry change staged by an append and applied to the
// Log's table only once the batches are written.
type producerUpdate struct {
	id    int64
	entry producerEntry
}

// stagedEntry returns the entry for id as the append being validated sees
// it: a change staged by an earlier batch of the same append wins.
func stagedEntry(table map[int64]producerEntry, staged []producerUpdate, id int64) (producerEntry, bool) {
	for i := len(staged) - 1; i >= 0; i-- {
		if staged[i].id == id {
			return staged[i].entry, true
		}
	}
	e, ok := table[id]
	return e, ok
}
