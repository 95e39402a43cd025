package offsets

import (
	"slices"
	"testing"
)

func pairs(ps ...int64) []Pair {
	out := make([]Pair, 0, len(ps)/2)
	for i := 0; i+1 < len(ps); i += 2 {
		out = append(out, Pair{ps[i], ps[i+1]})
	}
	return out
}

func TestOffsetsEmitterRule(t *testing.T) {
	e := NewEmitter()
	steps := []struct {
		name  string
		batch []Pair
		want  []Pair
	}{
		{"first pair and last of batch", pairs(10, 0, 11, 1, 12, 2), pairs(10, 0, 12, 2)},
		{"contiguous batch: only its last", pairs(13, 3, 14, 4, 15, 5), pairs(15, 5)},
		{"gap inside a batch: both sides", pairs(16, 6, 20, 7, 21, 8), pairs(16, 6, 20, 7, 21, 8)},
		{"gap at a batch start: right side (left ended the last batch)", pairs(30, 9, 31, 10, 32, 11), pairs(30, 9, 32, 11)},
		{"gap right before the last", pairs(33, 12, 40, 13), pairs(33, 12, 40, 13)},
		{"two gaps in a row", pairs(41, 14, 43, 15, 45, 16, 46, 17), pairs(41, 14, 43, 15, 45, 16, 46, 17)},
		{"one-pair batch", pairs(47, 18), pairs(47, 18)},
		{"re-copy (upstream goes back)", pairs(45, 19, 46, 20, 47, 21, 48, 22), pairs(45, 19, 48, 22)},
		{"empty batch", nil, nil},
	}
	for _, s := range steps {
		if got := e.Batch(s.batch); !slices.Equal(got, s.want) {
			t.Errorf("%s: Batch(%v) = %v, want %v", s.name, s.batch, got, s.want)
		}
	}
	if got := NewEmitter().Batch(pairs(5, 5)); !slices.Equal(got, pairs(5, 5)) {
		t.Errorf("a restarted emitter must emit its first pair: %v", got)
	}
}

// TestOffsetsTranslateRules walks the rules of the brief on one partition:
// source offsets 10..14 at 100..104, a gap (15..19 compacted away), 20..22
// at 105..107.
func TestOffsetsTranslateRules(t *testing.T) {
	ix := NewIndex()
	if _, st := ix.Lookup(10); st != NoSyncs {
		t.Fatalf("empty index: %v", st)
	}
	for _, p := range pairs(22, 107, 10, 100, 20, 105, 14, 104, 10, 100) {
		ix.Add(p) // out of order and repeated
	}
	cases := []struct {
		u    int64
		want int64
		st   Status
		why  string
	}{
		{9, 0, BeforeHistory, "before the first sync"},
		{10, 100, Translated, "exact hit"},
		{12, 102, Translated, "inside a contiguous run"},
		{14, 104, Translated, "last record before the gap"},
		{15, 105, Translated, "in the gap: the first record after it"},
		{19, 105, Translated, "in the gap"},
		{20, 105, Translated, "first after the gap"},
		{21, 106, Translated, "run after the gap"},
		{22, 107, Translated, "the head record"},
		{23, 108, Translated, "one past the head: where the next record lands"},
		{24, 0, NotMirrored, "beyond the head"},
	}
	for _, c := range cases {
		d, st := ix.Lookup(c.u)
		if st != c.st || (st == Translated && d != c.want) {
			t.Errorf("Lookup(%d) = %d, %v; want %d, %v (%s)", c.u, d, st, c.want, c.st, c.why)
		}
		if d2, ok := ix.Translate(c.u); ok != (c.st == Translated) || (ok && d2 != c.want) {
			t.Errorf("Translate(%d) = %d, %v", c.u, d2, ok)
		}
	}
	if n := ix.Len(); n != 4 {
		t.Errorf("Len = %d, want 4 (the repeat is ignored)", n)
	}
}

func TestOffsetsMissingSyncsRefused(t *testing.T) {
	// 10 at 100, then 30 at 110: 9 target records between them without
	// syncs, so where 11..29 went is unknown.
	ix := NewIndex()
	ix.Add(Pair{10, 100})
	ix.Add(Pair{30, 110})
	ix.Add(Pair{31, 111})
	for u, want := range map[int64]Status{10: Translated, 11: MissingSyncs, 29: MissingSyncs, 30: Translated, 32: Translated} {
		if _, st := ix.Lookup(u); st != want {
			t.Errorf("Lookup(%d) = %v, want %v", u, st, want)
		}
	}
}

func TestOffsetsRecopyPrefersNewestCopy(t *testing.T) {
	// 100..200 at 1000..1100; the copier restarted at 170 and re-copied
	// 170..250 at 1101..1181.
	ix := NewIndex()
	for _, p := range pairs(100, 1000, 200, 1100, 170, 1101, 250, 1181) {
		ix.Add(p)
	}
	cases := map[int64]int64{
		100: 1000, // only copy
		169: 1069, // only copy; reading on re-delivers 170..200 once, unavoidably
		170: 1101, // the newest copy: no duplicates
		200: 1131,
		250: 1181,
		251: 1182, // head
	}
	for u, want := range cases {
		if d, ok := ix.Translate(u); !ok || d != want {
			t.Errorf("Translate(%d) = %d, %v; want %d", u, d, ok, want)
		}
	}
	// Until the re-copy reaches 200 again, 181..200 exist only as their
	// first copies: a consumer at 175 must resume at 181's first copy, or a
	// failover now would lose 181..200.
	partial := NewIndex()
	for _, p := range pairs(100, 1000, 200, 1100, 170, 1101, 180, 1111) {
		partial.Add(p)
	}
	for u, want := range map[int64]int64{169: 1069, 170: 1081, 175: 1081, 181: 1081, 200: 1100} {
		if d, ok := partial.Translate(u); !ok || d != want {
			t.Errorf("mid re-copy: Translate(%d) = %d, %v; want %d", u, d, ok, want)
		}
	}
	if _, st := partial.Lookup(201); st != NotMirrored {
		t.Errorf("mid re-copy: Lookup(201) = %v, want not_mirrored", st)
	}
}

func TestOffsetsTrimBefore(t *testing.T) {
	ix := NewIndex()
	for _, p := range pairs(10, 100, 14, 104, 20, 105, 40, 106, 50, 116) {
		ix.Add(p)
	}
	ix.TrimBefore(30)
	if got := ix.Syncs(); !slices.Equal(got, pairs(20, 105, 40, 106, 50, 116)) {
		t.Fatalf("after TrimBefore(30): %v", got)
	}
	for u, want := range map[int64]int64{21: 106, 30: 106, 45: 111} {
		if d, ok := ix.Translate(u); !ok || d != want {
			t.Errorf("Translate(%d) = %d, %v; want %d", u, d, ok, want)
		}
	}
	if _, st := ix.Lookup(19); st != BeforeHistory {
		t.Errorf("Lookup(19) after trim = %v", st)
	}
	ix.TrimBefore(1000)
	if got := ix.Syncs(); !slices.Equal(got, pairs(50, 116)) {
		t.Fatalf("trimming past the head keeps the head: %v", got)
	}
	if d, ok := ix.Translate(51); !ok || d != 117 {
		t.Errorf("head after trim: %d, %v", d, ok)
	}
}

func TestOffsetsIndexIgnoresInvalid(t *testing.T) {
	ix := NewIndex()
	ix.Add(Pair{-1, 5})
	ix.Add(Pair{5, -1})
	ix.Add(Pair{1<<63 - 1, 0})
	if ix.Len() != 0 {
		t.Fatalf("invalid offsets were kept: %v", ix.Syncs())
	}
	ix.Add(Pair{5, 7})
	ix.Add(Pair{6, 7}) // conflicting: the later one wins
	if got := ix.Syncs(); !slices.Equal(got, pairs(6, 7)) {
		t.Fatalf("conflict: %v", got)
	}
}

// TestOffsetsPositions: a transactional source partition whose last copied
// record (12 at 2) is followed by markers and aborted records. The
// Emitter's position syncs say where a group past them resumes; the Index
// translates up to a position and no further (the offset after it may yet
// be aborted), and a record copied there makes the position history.
func TestOffsetsPositions(t *testing.T) {
	e := NewEmitter()
	if _, ok := e.Position(5); ok {
		t.Fatal("a position before any pair")
	}
	e.Batch(pairs(10, 0, 11, 1, 12, 2))
	for _, s := range []struct {
		upstream int64
		want     Pair
		ok       bool
	}{
		{13, Pair{}, false}, // nothing skipped: the head rule covers 13
		{15, Pair{15, 3}, true},
		{15, Pair{}, false}, // already returned
		{17, Pair{17, 3}, true},
	} {
		if got, ok := e.Position(s.upstream); got != s.want || ok != s.ok {
			t.Fatalf("Position(%d) = %v, %v; want %v, %v", s.upstream, got, ok, s.want, s.ok)
		}
	}
	if got := e.Batch(pairs(20, 3, 21, 4)); !slices.Equal(got, pairs(20, 3, 21, 4)) {
		t.Fatalf("the first record after a position: Batch = %v, want both sides", got)
	}

	ix := NewIndex()
	ix.Add(Pair{10, 0})
	ix.Add(Pair{12, 2})
	check := func(when string, cases ...[3]int64) {
		t.Helper()
		for _, c := range cases {
			u, want, st := c[0], c[1], Status(c[2])
			if d, got := ix.Lookup(u); got != st || st == Translated && d != want {
				t.Errorf("%s: Lookup(%d) = %d, %v; want %d, %v", when, u, d, got, want, st)
			}
		}
	}
	ok, no := int64(Translated), int64(NotMirrored)
	ix.AddPosition(Pair{15, 3})
	check("at position 15", [3]int64{12, 2, ok}, [3]int64{13, 3, ok}, [3]int64{15, 3, ok}, [3]int64{16, 0, no})
	ix.AddPosition(Pair{17, 3})
	check("at position 17", [3]int64{16, 3, ok}, [3]int64{17, 3, ok}, [3]int64{18, 0, no})
	ix.AddPosition(Pair{15, 3})
	check("an older position arriving again is ignored", [3]int64{16, 3, ok}, [3]int64{17, 3, ok}, [3]int64{18, 0, no})
	ix.AddPosition(Pair{14, 2})
	check("a position behind the newest sync is ignored", [3]int64{13, 3, ok}, [3]int64{12, 2, ok})
	ix.Add(Pair{20, 3})
	check("a record copied at the position", [3]int64{18, 3, ok}, [3]int64{20, 3, ok}, [3]int64{21, 4, ok}, [3]int64{22, 0, no})
	ix.AddPosition(Pair{17, 3})
	check("a stale position does not replace a record", [3]int64{19, 3, ok}, [3]int64{21, 4, ok})
	if n := ix.Len(); n != 3 {
		t.Errorf("%d syncs held, want 3: %v", n, ix.Syncs())
	}
	if w := PositionToWire(Pair{15, 3}); w != (Pair{15, 2}) || PositionFromWire(w) != (Pair{15, 3}) {
		t.Errorf("a position on the wire: %v, back %v", w, PositionFromWire(w))
	}
}

// TestOffsetsPositionsReadByMM2: MM2's checkpoint connector reads kdr's
// offset syncs without knowing positions, and answers an offset u with the
// newest sync s at or below it: s.Downstream when u is s.Upstream, else
// s.Downstream+1. Written as PositionToWire gives them, positions make it
// read a record again at worst, never skip one.
func TestOffsetsPositionsReadByMM2(t *testing.T) {
	mm2 := func(syncs []Pair, u int64) (int64, bool) {
		var best Pair
		found := false
		for _, s := range syncs {
			if s.Upstream <= u && (!found || s.Upstream >= best.Upstream) {
				best, found = s, true
			}
		}
		if !found {
			return 0, false
		}
		if best.Upstream == u {
			return best.Downstream, true
		}
		return best.Downstream + 1, true
	}
	// Records 10..12 land at 0..2; 13 is a commit marker, 14..16 aborted
	// records and 17 their marker, passed in two fetches; 18 lands at 3.
	e := NewEmitter()
	var wire []Pair
	wire = append(wire, e.Batch(pairs(10, 0, 11, 1, 12, 2))...)
	for _, at := range []int64{14, 18} {
		if p, ok := e.Position(at); ok {
			wire = append(wire, PositionToWire(p))
		}
	}
	wire = append(wire, e.Batch(pairs(18, 3))...)
	for u := int64(10); u <= 19; u++ {
		truth := min(u-10, 3) // the first record at or after u
		if u == 19 {
			truth = 4
		}
		if d, ok := mm2(wire, u); !ok || d > truth {
			t.Errorf("MM2 reading %v translates %d to %d (ok %v); the first record at or after it is at %d", wire, u, d, ok, truth)
		}
	}
}

// TestOffsetsIncarnation: syncs of a re-created source topic (a new topic
// id, offsets from 0 again, copies after the deleted topic's on the target)
// replace the deleted topic's; a late sync of the deleted topic is ignored;
// syncs without an id (MM2's) count as the current topic's.
func TestOffsetsIncarnation(t *testing.T) {
	oldID, newID := [16]byte{1}, [16]byte{2}
	ix := NewIndex()
	add := func(id [16]byte, p Pair) {
		if ix.Incarnation(id) {
			ix.Add(p)
		}
	}
	for u := int64(0); u < 100; u++ {
		add(oldID, Pair{u, u})
	}
	if d, st := ix.Lookup(40); d != 40 || st != Translated {
		t.Fatalf("old topic: 40 → %d %v", d, st)
	}
	add(newID, Pair{0, 100})
	add(newID, Pair{29, 129})
	add(oldID, Pair{100, 130}) // late: ignored
	add([16]byte{}, Pair{30, 130})
	for _, c := range []struct{ u, d int64 }{{0, 100}, {10, 110}, {29, 129}, {30, 130}, {31, 131}} {
		if d, st := ix.Lookup(c.u); d != c.d || st != Translated {
			t.Errorf("new topic: %d → %d %v, want %d", c.u, d, st, c.d)
		}
	}
}
