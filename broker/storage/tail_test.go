package storage

import (
	"math/rand/v2"
	"testing"
)

// checkTailAgrees reads l's active segment at many offsets, sizes and
// bounds, and expects the range found from the tail, wherever it covers the
// offset, to be the one the index and the headers in the file give.
func checkTailAgrees(t *testing.T, l *Log, rng *rand.Rand) (answered int) {
	t.Helper()
	l.mu.RLock()
	defer l.mu.RUnlock()
	s := l.active()
	r := newFileReader(s.f, s.size, 4096, nil)
	for range 3000 {
		offset := s.base + rng.Int64N(s.next-s.base+1)
		maxOffset := offset + rng.Int64N(s.next-offset+1)
		if rng.IntN(3) == 0 {
			maxOffset = s.next
		}
		maxBytes := rng.Int32N(6000)
		minOne := rng.IntN(2) == 0
		if !s.tail.covers(offset) {
			continue
		}
		answered++
		start, stop, found, err := batches{s: s, inTail: true}.span(offset, maxBytes, maxOffset, minOne)
		wantStart, wantStop, wantFound, wantErr := batches{s: s, r: r}.span(offset, maxBytes, maxOffset, minOne)
		if err != nil || wantErr != nil || !found || !wantFound {
			t.Fatalf("span(%d, %d, %d, %v): tail found %v (%v), file found %v (%v)", offset, maxBytes, maxOffset, minOne, found, err, wantFound, wantErr)
		}
		if stop == start && wantStop == wantStart {
			continue // both empty; where is of no matter
		}
		if start != wantStart || stop != wantStop {
			t.Fatalf("read at %d, %d bytes, below %d, minOne %v: tail [%d, %d), file [%d, %d)", offset, maxBytes, maxOffset, minOne, start, stop, wantStart, wantStop)
		}
	}
	return answered
}

func TestStorageTailAgreesWithFile(t *testing.T) {
	cfg := testConfig()
	cfg.IndexIntervalBytes = 300
	dir := t.TempDir()
	l := openLog(t, dir, cfg, nil)
	rng := rand.New(rand.NewPCG(7, 8))
	appendSome := func(n int) {
		for range n {
			mustAppend(t, l, makeBatch(t, vals(1+rng.IntN(5), "v"), batchOpts{}), 0)
		}
	}

	appendSome(40) // fewer than the tail holds
	if n := checkTailAgrees(t, l, rng); n == 0 {
		t.Fatal("the tail answered no read")
	}
	appendSome(300) // the ring wrapped
	if n := checkTailAgrees(t, l, rng); n == 0 {
		t.Fatal("the tail answered no read after wrapping")
	}
	if got := l.active().tail.len(); got != tailBatches {
		t.Fatalf("tail holds %d batches, want %d", got, tailBatches)
	}

	// Truncation (a follower after a leader change) rebuilds the tail
	// from the last index entry.
	if err := l.TruncateTo(l.LogEndOffset() - 50); err != nil {
		t.Fatal(err)
	}
	checkTailAgrees(t, l, rng)
	appendSome(20)
	checkTailAgrees(t, l, rng)

	// So does a restart.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, cfg, nil)
	checkTailAgrees(t, l, rng)
	appendSome(200)
	if n := checkTailAgrees(t, l, rng); n == 0 {
		t.Fatal("the tail answered no read after the restart")
	}
}

// TestStorageTailDroppedOnRoll: a rolled segment forgets its tail, and the
// new active segment starts its own.
func TestStorageTailDroppedOnRoll(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	l := openLog(t, t.TempDir(), cfg, nil)
	for range 100 {
		mustAppend(t, l, makeBatch(t, vals(3, "v"), batchOpts{}), 0)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.segs) < 3 {
		t.Fatalf("%d segments, want several", len(l.segs))
	}
	for _, s := range l.segs[:len(l.segs)-1] {
		if s.tail.len() != 0 {
			t.Fatalf("rolled segment %d keeps %d tail batches", s.base, s.tail.len())
		}
	}
	a := l.active()
	if a.tail.len() == 0 || a.tail.at(0).pos != 0 || a.tail.at(a.tail.len()-1).pos+a.tail.at(a.tail.len()-1).size != a.size {
		t.Fatalf("active segment's tail does not span it: %d batches, size %d", a.tail.len(), a.size)
	}
}
