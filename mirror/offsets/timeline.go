package offsets

import (
	"math"
	"slices"
	"sort"
)

// part is one piece of the target log's history as the syncs tell it,
// in target order: a stretch of syncs linked one to the next, or a hole
// between two syncs that are not.
//
// Two syncs a, b (a before b on the target) are linked when b continues a's
// contiguous run (linear) or b is the record right after a with a higher
// upstream offset (the two sides of an upstream gap, which the Emitter
// always syncs). Within a stretch upstream offsets rise, so it maps every
// upstream offset in [min, max] to one target position.
//
// Where the target goes on right after a but upstream goes back (a restarted
// copier re-copying), a new stretch starts. Where b is further on without
// being linear, syncs are missing and the records between are unknown: a
// hole. A hole might hold any upstream offset up to the highest one synced
// after it (a copier that crashed there had gone on past its last sync and
// was restarted further back; what it copied beyond the restart point is
// copied again later). The history before the first sync is a hole too,
// assumed to hold offsets below the first sync's.
type part struct {
	hole     bool
	lo, hi   int   // a stretch is syncs[lo..hi]; a hole lies between syncs[lo] and syncs[hi] (lo = -1: before the first)
	min, max int64 // a stretch's upstream range; for the first hole, the offsets below the first sync
}

func adjacentForward(a, b Pair) bool {
	return b.Downstream == a.Downstream+1 && b.Upstream > a.Upstream
}

// buildParts splits syncs (sorted by Downstream) into parts.
func buildParts(s []Pair) []part {
	var parts []part
	for i := range s {
		parts = extendParts(parts, s, i)
	}
	return parts
}

// extendParts adds s[i], the newest sync, to the parts of s[:i]. Adding in
// target order costs O(1) a sync, so an Index fed in order never rebuilds.
func extendParts(parts []part, s []Pair, i int) []part {
	p := s[i]
	if i == 0 {
		if p.Upstream > 0 {
			parts = append(parts, part{hole: true, lo: -1, hi: 0, min: math.MinInt64, max: p.Upstream - 1})
		}
		return append(parts, part{lo: 0, hi: 0, min: p.Upstream, max: p.Upstream})
	}
	if prev := s[i-1]; linear(prev, p) || adjacentForward(prev, p) {
		last := &parts[len(parts)-1]
		last.hi, last.max = i, p.Upstream
		return parts
	} else if p.Downstream != prev.Downstream+1 {
		parts = append(parts, part{hole: true, lo: i - 1, hi: i})
	}
	return append(parts, part{lo: i, hi: i, min: p.Upstream, max: p.Upstream})
}

// lookup translates u. A record's newest copy is the one to resume from,
// since everything after it on the target follows it; so the answer is the
// earliest target position that still precedes the last copy of every
// upstream offset ≥ u. Walking the parts from the newest, each stretch adds
// its range to what later parts cover; the earliest part holding an offset
// ≥ u that no later stretch covers is where to resume. If that part is a
// hole, the answer is unknown. Without re-copies this is simply the first
// mirrored record at or after u. head says whether the newest sync is a
// copied record, so that the offset right after it is the head.
func lookup(s []Pair, parts []part, u int64, head bool) (int64, Status) {
	cov := make(cover, 0, len(parts))
	best := -1
	var pos int64
	top := int64(math.MinInt64) // the highest offset synced after part i
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		if p.hole {
			hmax := top
			if p.lo < 0 {
				hmax = p.max
			}
			if u <= hmax {
				if _, ok := cov.firstFree(u, hmax); ok {
					best = i
				}
			}
			continue
		}
		if d, ok := residual(s[p.lo:p.hi+1], cov, max(u, p.min)); ok {
			best, pos = i, d
		}
		cov.add(p.min, p.max)
		top = max(top, p.max)
	}
	switch {
	case best < 0:
		// Nothing mirrored at or after u. Just past the newest sync is the
		// head: the next record mirrored lands right after it.
		last := s[len(s)-1]
		if head && u > last.Upstream && u-1 == last.Upstream {
			return last.Downstream + 1, Translated
		}
		return 0, NotMirrored
	case !parts[best].hole:
		return pos, Translated
	case parts[best].lo < 0:
		return 0, BeforeHistory
	default:
		return 0, MissingSyncs
	}
}

// residual finds, in stretch st, the first record at or after upstream v
// whose upstream offset no later stretch covers, and returns its target
// offset.
func residual(st []Pair, cov cover, v int64) (int64, bool) {
	top := st[len(st)-1].Upstream
	for v <= top {
		d, w := at(st, v)
		end, covered := cov.spanEnd(w)
		if !covered {
			return d, true
		}
		if end >= top {
			return 0, false
		}
		v = end + 1
	}
	return 0, false
}

// at returns the target offset of the first record of stretch st with
// upstream offset ≥ v, and that record's upstream offset. v must lie in
// [st[0].Upstream, st[len-1].Upstream].
func at(st []Pair, v int64) (downstream, upstream int64) {
	i := sort.Search(len(st), func(i int) bool { return st[i].Upstream >= v })
	hi := st[i]
	if hi.Upstream == v {
		return hi.Downstream, v
	}
	lo := st[i-1]
	if linear(lo, hi) {
		return lo.Downstream + (v - lo.Upstream), v
	}
	return hi.Downstream, hi.Upstream // v fell in a gap: the record after it
}

// cover is a set of upstream offsets: sorted, disjoint, non-touching spans.
type cover []span

type span struct{ lo, hi int64 }

// spanEnd reports whether v is covered and where its span ends.
func (c cover) spanEnd(v int64) (int64, bool) {
	i := sort.Search(len(c), func(i int) bool { return c[i].hi >= v })
	if i < len(c) && c[i].lo <= v {
		return c[i].hi, true
	}
	return 0, false
}

// firstFree returns the smallest offset in [lo, hi] not covered.
func (c cover) firstFree(lo, hi int64) (int64, bool) {
	end, covered := c.spanEnd(lo)
	switch {
	case !covered:
		return lo, true
	case end >= hi:
		return 0, false
	}
	return end + 1, true // spans never touch, so end+1 is free
}

// add covers [lo, hi], merging the spans it overlaps or touches. Stretch
// ranges are valid offsets, so lo-1 and hi+1 cannot overflow.
func (c *cover) add(lo, hi int64) {
	s := *c
	i := sort.Search(len(s), func(i int) bool { return s[i].hi >= lo-1 })
	j := i
	for ; j < len(s) && s[j].lo <= hi+1; j++ {
		lo, hi = min(lo, s[j].lo), max(hi, s[j].hi)
	}
	*c = slices.Replace(s, i, j, span{lo, hi})
}
