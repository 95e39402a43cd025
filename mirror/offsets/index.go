package offsets

import (
	"cmp"
	"math"
	"slices"
	"sync"
)

// Status says whether an upstream offset could be translated, and if not,
// why. Its String is the reason label of
// kdr_mirror_translation_failures_total.
type Status uint8

const (
	// Translated: the offset was translated exactly.
	Translated Status = iota
	// NoSyncs: nothing of the partition has been mirrored yet, or no sync
	// for it has been read.
	NoSyncs
	// BeforeHistory: the offset lies before the oldest sync kept (records
	// mirrored before the syncs' retention, or never mirrored because the
	// flow started later).
	BeforeHistory
	// NotMirrored: the offset lies beyond the mirror's head; the records
	// there have not been copied (or their syncs not read) yet.
	NotMirrored
	// MissingSyncs: the answer lies where syncs the Emitter would have
	// written are missing (a copier that crashed between the target's
	// acknowledgement and writing its syncs, or syncs written by a copier
	// that thins them out, such as MM2). kdr refuses to guess there.
	MissingSyncs
)

var statusNames = [...]string{"ok", "no_syncs", "before_history", "not_mirrored", "missing_syncs"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// Statuses lists every Status, for pre-creating metric series.
func Statuses() []Status {
	return []Status{Translated, NoSyncs, BeforeHistory, NotMirrored, MissingSyncs}
}

// Index holds one partition's syncs and translates. Safe for concurrent use.
//
// Syncs are kept in downstream order, the order of the target log. They
// may arrive in any order and be repeated; see the package documentation
// for the rules and for what the order changes when records were re-copied.
type Index struct {
	mu    sync.Mutex
	syncs []Pair // sorted by Downstream, one per Downstream
	parts []part // the timeline built from syncs; nil when syncs changed
	// position, when set, is the newest sync and a copier's position
	// rather than a copied record (AddPosition).
	position    Pair
	hasPosition bool
	// topicID is the source topic's id the syncs describe (Incarnation);
	// retired are the ids of deleted topics of the name, whose late syncs
	// are ignored.
	topicID [16]byte
	retired [][16]byte
}

// Incarnation says which incarnation of the source topic the next sync
// describes, by its topic id. A topic deleted and created again under the
// same name has a new id, and its offsets start again: the syncs of the
// one before describe another log (on the target, records before the new
// topic's), and kept they would translate the new topic's offsets to the
// old topic's copies. So a new id drops every sync held. It reports false
// for the id of a topic the index already left behind: a late sync of
// the deleted topic, to be ignored. A zero id (a sync written by MM2, or
// by a kdr before syncs carried ids) is taken for the current one.
func (ix *Index) Incarnation(id [16]byte) bool {
	if id == ([16]byte{}) {
		return true
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	switch {
	case id == ix.topicID:
		return true
	case slices.Contains(ix.retired, id):
		return false
	case ix.topicID != [16]byte{}:
		ix.retired = append(ix.retired, ix.topicID)
		ix.syncs, ix.parts, ix.hasPosition = nil, nil, false
	}
	ix.topicID = id
	return true
}

// NewIndex returns an empty Index.
func NewIndex() *Index { return &Index{} }

// linear reports whether b continues a's contiguous run: every record
// between them was mirrored with the same offset shift.
func linear(a, b Pair) bool {
	return b.Downstream > a.Downstream && b.delta() == a.delta()
}

func valid(p Pair) bool {
	return p.Upstream >= 0 && p.Downstream >= 0 && p.Upstream < math.MaxInt64 && p.Downstream < math.MaxInt64
}

// Add records one sync. A sync already held is ignored. Two different
// upstream offsets for one downstream offset mean that the target partition
// was recreated or has another writer, which kdr does not support; the one
// added last is kept.
//
// A sync appended after the newest one that continues a contiguous run
// replaces the run's previous end, so a partition copied without gaps holds
// a handful of syncs however long it runs. Syncs arriving out of order are
// inserted and kept. Offsets outside [0, MaxInt64) are not Kafka offsets;
// such a pair is ignored.
func (ix *Index) Add(p Pair) {
	if !valid(p) {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.hasPosition && p.Downstream >= ix.position.Downstream {
		ix.hasPosition = false
		if p.Downstream > ix.position.Downstream {
			// A record copied past the position, whose own place's sync
			// has not arrived (or was lost): the position is no record, and
			// kept it would link to p as if it were one. Without it the
			// stretch between is a hole, refused rather than guessed.
			ix.dropPosition()
		}
	}
	n := len(ix.syncs)
	if n == 0 || p.Downstream > ix.syncs[n-1].Downstream {
		switch {
		case n >= 2 && linear(ix.syncs[n-2], ix.syncs[n-1]) && linear(ix.syncs[n-1], p):
			// The run goes on: move its end. Its stretch is the last part.
			ix.syncs[n-1] = p
			if ix.parts != nil {
				ix.parts[len(ix.parts)-1].max = p.Upstream
			}
		default:
			ix.syncs = append(ix.syncs, p)
			if ix.parts != nil || n == 0 {
				ix.parts = extendParts(ix.parts, ix.syncs, n)
			}
		}
		return
	}
	i, found := ix.find(p.Downstream)
	switch {
	case found && ix.syncs[i] == p:
		return
	case found:
		ix.syncs[i] = p
	default:
		ix.syncs = slices.Insert(ix.syncs, i, p)
	}
	ix.parts = nil
}

// AddPosition records a sync that is a copier's position (Emitter.Position)
// rather than a copied record: the source offsets below p.Upstream that
// follow the previous sync hold nothing to copy, and the next record copied
// lands at p.Downstream. It translates the offsets up to p.Upstream like a
// sync on the far side of a gap. Unlike a record's sync it says nothing of
// p.Upstream+1, which may yet turn out to be a marker or an aborted record:
// while it is the newest sync, offsets past it are NotMirrored rather than
// the head. A position behind the newest sync is ignored (what it says is
// known from the syncs after it, unless the sync of the record copied at
// its place was lost, which leaves a hole refused as MissingSyncs); a
// position further on replaces an older one, whatever the order they
// arrive in. The sync of the record copied at p.Downstream replaces it; a
// sync further on removes it, as it is no record to link to.
func (ix *Index) AddPosition(p Pair) {
	if !valid(p) {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.hasPosition && p.Downstream > ix.position.Downstream {
		ix.dropPosition() // an older position is no record either
	}
	n := len(ix.syncs)
	switch {
	case n == 0 || p.Downstream > ix.syncs[n-1].Downstream:
		ix.syncs = append(ix.syncs, p)
		if ix.parts != nil || n == 0 {
			ix.parts = extendParts(ix.parts, ix.syncs, n)
		}
	case ix.hasPosition && ix.syncs[n-1] == ix.position && p.Downstream == ix.position.Downstream && p.Upstream > ix.position.Upstream:
		ix.syncs[n-1] = p
		ix.parts = nil
	default:
		return
	}
	ix.position, ix.hasPosition = p, true
}

// dropPosition removes the position from the syncs. Called with mu held.
func (ix *Index) dropPosition() {
	if i, found := ix.find(ix.position.Downstream); found && ix.syncs[i] == ix.position {
		ix.syncs = slices.Delete(ix.syncs, i, i+1)
		ix.parts = nil
	}
}

// find is where the sync at target offset d is, or would go, in the syncs.
// Called with mu held.
func (ix *Index) find(d int64) (int, bool) {
	return slices.BinarySearchFunc(ix.syncs, d, func(s Pair, d int64) int { return cmp.Compare(s.Downstream, d) })
}

// Len is the number of syncs held.
func (ix *Index) Len() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return len(ix.syncs)
}

// Syncs returns a copy of the syncs held, in downstream order.
func (ix *Index) Syncs() []Pair {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return slices.Clone(ix.syncs)
}

// TrimBefore forgets syncs below upstream, typically the source partition's
// log start offset after retention: it drops the oldest syncs (in target
// order) as long as their successor is also below upstream. The newest sync
// below upstream is kept, so a run that crosses upstream still translates
// every offset from upstream on. Offsets below the kept sync then report
// BeforeHistory.
func (ix *Index) TrimBefore(upstream int64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	k := 0
	for k+1 < len(ix.syncs) && ix.syncs[k+1].Upstream < upstream {
		k++
	}
	if k > 0 && ix.syncs[0].Upstream < upstream {
		ix.syncs = slices.Delete(ix.syncs, 0, k)
		ix.parts = nil
	}
}

// Translate returns the downstream offset a consumer should resume from to
// read exactly the records at or after upstream: the target offset of the
// first mirrored record whose source offset is ≥ upstream, or, just past the
// head, where the next mirrored record will land. ok is false when that is
// not known exactly; Lookup says why.
func (ix *Index) Translate(upstream int64) (downstream int64, ok bool) {
	d, st := ix.Lookup(upstream)
	return d, st == Translated
}

// Lookup is Translate with the reason for a failure. The downstream offset
// is meaningful only when the Status is Translated.
func (ix *Index) Lookup(upstream int64) (int64, Status) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if len(ix.syncs) == 0 {
		return 0, NoSyncs
	}
	if ix.parts == nil {
		ix.parts = buildParts(ix.syncs)
	}
	return lookup(ix.syncs, ix.parts, upstream, !ix.hasPosition)
}
