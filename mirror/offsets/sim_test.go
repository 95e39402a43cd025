package offsets

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// chooser is the simulator's source of decisions: a seeded PRNG in the
// randomized tests, the fuzzer's bytes in FuzzTranslate.
type chooser interface{ IntN(n int) int }

// byteChooser reads decisions from fuzz input; once exhausted it answers 0.
type byteChooser struct {
	b []byte
	i int
}

func (c *byteChooser) IntN(n int) int {
	if c.i >= len(c.b) {
		return 0
	}
	v := int(c.b[c.i])
	c.i++
	return v % n
}

// simOpts selects what can go wrong in a simulated copy.
type simOpts struct {
	restarts bool // a new Emitter between batches (the copier restarted)
	recopy   bool // restarts may rewind and copy some records again
	lose     bool // a batch's syncs may be lost (crash after the target's ack); the copier restarts at that batch
}

// sim is one partition copied by a simulated copier: the source's offsets
// (with gaps, as compaction, transaction markers and retention leave them),
// the target log it produced, and every sync its Emitters returned and it
// managed to write. After a batch followed by a gap the copier may pass
// some of the gap and write a position (Emitter.Position), as a worker does
// when a fetch went past transaction markers.
type sim struct {
	source []int64
	log    []Pair
	syncs  []Pair
	pos    []bool // syncs[i] is a position
	endPos int64  // the position written after the last record, if any
	lost   bool   // some syncs were lost
	// truth's precomputed answers
	ups, sufMin []int64
}

func runSim(c chooser, o simOpts, nrec int) *sim {
	s := &sim{}
	up := int64(c.IntN(50))
	for range nrec {
		s.source = append(s.source, up)
		switch k := c.IntN(10); {
		case k < 6:
			up++ // contiguous
		case k < 9:
			up += 2 + int64(c.IntN(3)) // a marker or a few compacted records
		default:
			up += 2 + int64(c.IntN(200)) // a long compacted stretch
		}
	}
	down := int64(c.IntN(50))
	e := NewEmitter()
	losses, rewinds := 3, 6
	for cur := 0; cur < len(s.source); {
		n := min(1+c.IntN(12), len(s.source)-cur)
		pairs := make([]Pair, n)
		for i := range pairs {
			pairs[i] = Pair{Upstream: s.source[cur+i], Downstream: down}
			down++
		}
		s.log = append(s.log, pairs...)
		syncs := e.Batch(pairs)
		if o.lose && losses > 0 && cur+n < len(s.source) && c.IntN(6) == 0 {
			// Acknowledged, but the copier died before writing the syncs
			// and before committing its position: it copies the batch again.
			losses--
			s.lost = true
			e = NewEmitter()
			continue
		}
		s.syncs = append(s.syncs, syncs...)
		s.pos = append(s.pos, make([]bool, len(syncs))...)
		s.endPos = 0 // a position is only the head while no record follows it
		cur += n
		last := pairs[n-1].Upstream
		next := last + 7 // past the end: the offsets after the last record hold markers
		if cur < len(s.source) {
			next = s.source[cur]
		}
		if next > last+1 && c.IntN(2) == 0 {
			// The copier read past the gap, in one to three fetches, up to
			// at most the next record.
			at := last + 1
			for range 1 + c.IntN(3) {
				at = min(at+1+int64(c.IntN(int(next-last-1))), next)
				if p, ok := e.Position(at); ok {
					s.syncs, s.pos = append(s.syncs, p), append(s.pos, true)
					if cur == len(s.source) {
						s.endPos = p.Upstream
					}
				}
			}
		}
		if o.restarts && c.IntN(5) == 0 {
			e = NewEmitter()
			if o.recopy && rewinds > 0 {
				rewinds--
				cur -= c.IntN(min(cur, 15) + 1)
			}
		}
	}
	return s
}

// truth is the brute-force answer from the whole target log: the earliest
// target position from which every upstream offset ≥ u is read at its last
// copy (without re-copies: the first record at or after u), or, past every
// record, the head.
func (s *sim) truth(u int64) (int64, bool) {
	if s.sufMin == nil {
		s.ups, s.sufMin = sufMinLastPos(s.log)
	}
	if i := sort.Search(len(s.ups), func(i int) bool { return s.ups[i] >= u }); i < len(s.ups) {
		return s.sufMin[i], true
	}
	if last := s.log[len(s.log)-1]; u == last.Upstream+1 || u > last.Upstream && u <= s.endPos {
		return last.Downstream + 1, true
	}
	return 0, false
}

// add gives ix the i-th sync, as the SyncStore would.
func (s *sim) add(ix *Index, i int) {
	if s.pos[i] {
		ix.AddPosition(s.syncs[i])
		return
	}
	ix.Add(s.syncs[i])
}

// sufMinLastPos lists the distinct upstream offsets of log, ascending, and
// for each the smallest last-copy position among it and all above it.
func sufMinLastPos(log []Pair) (ups, sufMin []int64) {
	lastPos := map[int64]int64{}
	for _, p := range log {
		lastPos[p.Upstream] = p.Downstream
	}
	for up := range lastPos {
		ups = append(ups, up)
	}
	slices.Sort(ups)
	sufMin = make([]int64, len(ups))
	for i := len(ups) - 1; i >= 0; i-- {
		sufMin[i] = lastPos[ups[i]]
		if i+1 < len(ups) {
			sufMin[i] = min(sufMin[i], sufMin[i+1])
		}
	}
	return ups, sufMin
}

// deliver feeds the syncs to ix in an order and with repeats chosen by c,
// checking the index every so often on the way (check receives whether all
// syncs are in).
func (s *sim) deliver(c chooser, ix *Index, check func(all bool)) {
	order := make([]int, len(s.syncs))
	for i := range order {
		order[i] = i
	}
	for range c.IntN(len(order) + 1) {
		order = append(order, order[c.IntN(len(order))])
	}
	for i := len(order) - 1; i > 0; i-- {
		j := c.IntN(i + 1)
		order[i], order[j] = order[j], order[i]
	}
	step := max(1, len(order)/4)
	for i, k := range order {
		s.add(ix, k)
		if (i+1)%step == 0 && i+1 < len(order) {
			check(false)
		}
	}
	check(true)
}

// checkSim checks ix against the simulated log for every offset around the
// copied range. Once all syncs are in, every answer must be exact, and,
// unless syncs were lost, every offset from the first copied record to one
// past the head must translate.
//
// Before that, with partial syncs, an answer must never make a consumer miss
// a record: every upstream offset ≥ u must have a copy at or after it. That
// holds whatever the order when nothing was re-copied, and with re-copies
// when syncs arrive in the order they were written (as the SyncStore reads
// them); out of order, a contiguous-looking pair of syncs may hide a re-copy
// whose syncs are still to come, so partial checks are skipped then (pass
// partial false).
func checkSim(t *testing.T, s *sim, ix *Index, all, partial bool) {
	t.Helper()
	if !all && !partial {
		return
	}
	first := s.log[0].Upstream
	for _, u := range s.offsetsToCheck(all) {
		d, st := ix.Lookup(u)
		want, wok := s.truth(u)
		if st == Translated && wok && d > want && u <= s.source[len(s.source)-1] {
			t.Fatalf("Lookup(%d) = %d, but a record at or after %d has its last copy at %d: a consumer would miss it (all syncs in: %v)\nlog %v\nsyncs %v\nindex %v",
				u, d, u, want, all, s.log, s.syncs, ix.Syncs())
		}
		if !all {
			continue
		}
		switch {
		case s.lost:
			// Where syncs were lost, the records between two syncs can look
			// like a contiguous run when they were a re-copied batch; an
			// answer there may re-deliver (never skip, checked above), and
			// refusing is allowed.
		case st == Translated && (!wok || d != want):
			t.Fatalf("Lookup(%d) = %d, want %d (ok %v)\nlog %v\nsyncs %v\nindex %v", u, d, want, wok, s.log, s.syncs, ix.Syncs())
		case u < first:
			// History the index never saw: refusing is right, unless a
			// later copy covers it.
			if st != Translated && st != BeforeHistory {
				t.Fatalf("Lookup(%d) below the first record %d: %v, want before_history", u, first, st)
			}
		case wok && st != Translated:
			t.Fatalf("Lookup(%d) = %v, want %d\nlog %v\nsyncs %v\nindex %v", u, st, want, s.log, s.syncs, ix.Syncs())
		case !wok && st != NotMirrored:
			t.Fatalf("Lookup(%d) past the head = %v, want not_mirrored", u, st)
		}
	}
}

// offsetsToCheck is every offset from below the source's first to past its
// last, or, for a partial check, the offsets where answers change: each
// source offset and its neighbours.
func (s *sim) offsetsToCheck(all bool) []int64 {
	var us []int64
	if all {
		for u := s.source[0] - 2; u <= max(s.source[len(s.source)-1], s.endPos)+2; u++ {
			us = append(us, u)
		}
		return us
	}
	for _, o := range s.source {
		us = append(us, o-1, o, o+1)
	}
	if s.endPos > 0 {
		us = append(us, s.endPos, s.endPos+1)
	}
	return append(us, s.source[len(s.source)-1]+2)
}

func TestOffsetsSimulated(t *testing.T) {
	cases := []struct {
		name string
		o    simOpts
	}{
		{"gaps", simOpts{}},
		{"restarts", simOpts{restarts: true}},
		{"recopy", simOpts{restarts: true, recopy: true}},
		{"lost_syncs", simOpts{restarts: true, recopy: true, lose: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(400) {
				r := rand.New(rand.NewPCG(seed, 7))
				s := runSim(r, tc.o, 1+r.IntN(150))
				ix := NewIndex()
				s.deliver(r, ix, func(all bool) { checkSim(t, s, ix, all, !tc.o.recopy) })
				if !s.lost && !tc.o.recopy && ix.Len() > 2*len(s.syncs) {
					t.Fatalf("seed %d: index holds %d syncs of %d", seed, ix.Len(), len(s.syncs))
				}
			}
		})
	}
}

// TestOffsetsSimulatedInOrder feeds syncs in the order they were written, as
// the SyncStore reads them, and checks that the index keeps only what it
// needs: a gap-free partition ends with at most two syncs.
func TestOffsetsSimulatedInOrder(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 11))
		s := runSim(r, simOpts{restarts: true, recopy: seed%2 == 0, lose: seed%4 == 0}, 1+r.IntN(150))
		ix := NewIndex()
		for i := range s.syncs {
			s.add(ix, i)
			checkSim(t, s, ix, i == len(s.syncs)-1, true)
		}
		if built := buildParts(ix.syncs); !slices.Equal(ix.parts, built) {
			t.Fatalf("seed %d: parts kept up in order %v differ from rebuilt %v", seed, ix.parts, built)
		}
	}
	ix := NewIndex()
	e := NewEmitter()
	for b := range int64(1000) {
		for _, p := range e.Batch([]Pair{{b * 2, b*2 + 100}, {b*2 + 1, b*2 + 101}}) {
			ix.Add(p)
		}
	}
	if ix.Len() != 2 {
		t.Fatalf("gap-free copy of 2000 records left %d syncs, want 2: %v", ix.Len(), ix.Syncs())
	}
	if d, ok := ix.Translate(777); !ok || d != 877 {
		t.Fatalf("Translate(777) = %d, %v", d, ok)
	}
}

func FuzzTranslate(f *testing.F) {
	f.Add([]byte{0, 3, 9, 1, 200, 4, 4, 0, 9, 9, 17, 2}, uint8(0))
	f.Add([]byte("a compacted topic, restarted and re-copied"), uint8(3))
	f.Add([]byte{9, 9, 9, 9, 0, 0, 0, 5, 5, 5, 1, 2, 3, 4, 5, 6, 7, 8}, uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		o := simOpts{restarts: mode&1 != 0, recopy: mode&2 != 0, lose: mode&4 != 0}
		c := &byteChooser{b: data}
		s := runSim(c, o, 1+c.IntN(120))
		ix := NewIndex()
		s.deliver(c, ix, func(all bool) { checkSim(t, s, ix, all, !o.recopy) })
		if !o.recopy {
			return
		}
		in := NewIndex()
		for i := range s.syncs {
			s.add(in, i)
			checkSim(t, s, in, i == len(s.syncs)-1, true)
		}
	})
}

// BenchmarkOffsetsLookup translates on a partition of a compacted topic
// where every record borders a gap, so every record has a sync: the worst
// case for the index's size.
func BenchmarkOffsetsLookup(b *testing.B) {
	ix := NewIndex()
	e := NewEmitter()
	const n = 1 << 20
	for i := range int64(n / 64) {
		batch := make([]Pair, 64)
		for j := range batch {
			k := i*64 + int64(j)
			batch[j] = Pair{Upstream: 3 * k, Downstream: k}
		}
		for _, p := range e.Batch(batch) {
			ix.Add(p)
		}
	}
	b.ReportMetric(float64(ix.Len()), "syncs")
	b.ResetTimer()
	for i := range b.N {
		if _, ok := ix.Translate(int64(i*7919) % (3 * (n - 1))); !ok {
			b.Fatal("not translated")
		}
	}
}
