package offsets

// Pair is one mirrored record: its offset on the source and on the target.
type Pair struct{ Upstream, Downstream int64 }

// delta is the pair's offset shift; a run of contiguous records shares it.
func (p Pair) delta() int64 { return p.Downstream - p.Upstream }

// Emitter decides which offset syncs one partition's copy writes. Not safe
// for concurrent use.
//
// It emits the first pair it sees, both sides of every discontinuity (the
// last pair before and the first pair after any point where
// Downstream-Upstream changes: an upstream gap from compaction, transaction
// markers or retention, or a copier that went back and re-copied), and the
// last pair of every batch. Between two consecutive syncs an Index therefore
// sees either one contiguous run or two adjacent records, and the newest
// sync always tells where the next record will land. A restarted copier
// starts a new Emitter; its first pair is emitted, and the old one's last
// pair was (as the last of its batch), so both sides of a restart are
// synced too.
//
// The cost: a batch costs at least one sync (a 30-byte record for a typical
// topic name), plus two per gap. A compacted source topic with gaps between
// most records gets a sync for most records; that is the price of exact
// translation there.
type Emitter struct {
	last     Pair
	started  bool
	position Pair // the last position returned
}

// NewEmitter returns an Emitter for one partition, as after a (re)start.
func NewEmitter() *Emitter { return &Emitter{} }

// Batch takes the pairs of one acknowledged produce batch, in order, and
// returns the syncs to write (a subset of the pairs, in order). It returns
// nil for an empty batch.
func (e *Emitter) Batch(pairs []Pair) []Pair {
	if len(pairs) == 0 {
		return nil
	}
	var out []Pair
	emit := func(p Pair) {
		if n := len(out); n == 0 || out[n-1] != p {
			out = append(out, p)
		}
	}
	for i, p := range pairs {
		switch {
		case !e.started:
			e.started = true
			emit(p)
		case p.delta() != e.last.delta():
			// The left side is already out when it ended the previous
			// batch; emit drops it if it was just emitted here.
			if i > 0 {
				emit(e.last)
			}
			emit(p)
		}
		e.last = p
	}
	emit(e.last)
	return out
}

// Position takes the copier's position once every pair before it was
// acknowledged and returned by Batch: the source offsets from the last
// pair's up to upstream hold nothing to copy (transaction markers, aborted
// records, records removed by compaction or retention). When that skips
// offsets, it returns the sync to write as a position (Index.AddPosition):
// upstream and the target offset where the next record will land. Without
// it a group committed past the last copied record, as every consumer of a
// transactional topic at its head is, would not be translated until the
// next record is copied. It returns false before the first pair, when
// nothing is skipped, and for a position already returned.
func (e *Emitter) Position(upstream int64) (Pair, bool) {
	p := Pair{Upstream: upstream, Downstream: e.last.Downstream + 1}
	if !e.started || upstream <= e.last.Upstream+1 || p == e.position {
		return Pair{}, false
	}
	e.position = p
	return p, true
}
