package checker

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Record is one record of the workload where it was acknowledged or read.
// A read whose value could not be decoded has Seq -1 and the raw value as ID.
type Record struct {
	Key       string
	Seq       int64
	ID        string
	Partition int32
	Offset    int64
}

func (r Record) String() string {
	return fmt.Sprintf("%s/%d@%d:%d", r.Key, r.Seq, r.Partition, r.Offset)
}

// Failure is a record the producer gave up on: it may or may not be in the
// log.
type Failure struct {
	Key string
	Seq int64
	ID  string
	Err error
}

// maxExamples bounds each example list in a Report.
const maxExamples = 10

// Report is the verdict of a run. Counts are exact; the example lists hold
// at most ten entries each, in key and offset order.
type Report struct {
	Acked  int64 // records acknowledged
	Failed int64 // records that failed (may or may not be in the log)
	Read   int64 // distinct records read (a redelivery of an offset counts once)

	Lost       int64 // acknowledged and never read
	Duplicated int64 // (key, seq) pairs read at more than one offset
	Reordered  int64 // first reads of a seq at a higher offset than a larger seq of its key
	Misplaced  int64 // acknowledged and read, but never at the acknowledged offset
	Unexpected int64 // read but not produced by this run (undecodable, unknown or other id)
	Divergent  int64 // offsets read with two different records (a truncated log)

	Redelivered int64 // reads of an offset already read with the same record (group rebalances); not an error

	LostExamples      []string
	DuplicateExamples []string
	ReorderExamples   []string
	OtherExamples     []string // misplaced, unexpected and divergent

	MaxUnavailable   time.Duration // longest wait for an acknowledgement
	TotalUnavailable time.Duration // sum of waits of at least Config.OutageThreshold
	Outages          int           // number of such waits
}

// OK reports whether nothing acknowledged was lost and nothing read was
// duplicated, reordered, misplaced, foreign or divergent.
func (r Report) OK() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Reordered == 0 && r.Misplaced == 0 && r.Unexpected == 0 && r.Divergent == 0
}

func (r Report) String() string {
	var b strings.Builder
	verdict := "OK"
	if !r.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "%s: acked=%d failed=%d read=%d lost=%d duplicated=%d reordered=%d misplaced=%d unexpected=%d divergent=%d redelivered=%d max_unavailable=%s total_unavailable=%s outages=%d",
		verdict, r.Acked, r.Failed, r.Read, r.Lost, r.Duplicated, r.Reordered, r.Misplaced, r.Unexpected, r.Divergent, r.Redelivered,
		r.MaxUnavailable.Round(time.Millisecond), r.TotalUnavailable.Round(time.Millisecond), r.Outages)
	for _, l := range []struct {
		name string
		ex   []string
	}{{"lost", r.LostExamples}, {"duplicated", r.DuplicateExamples}, {"reordered", r.ReorderExamples}, {"other", r.OtherExamples}} {
		if len(l.ex) > 0 {
			fmt.Fprintf(&b, "\n  %s: %s", l.name, strings.Join(l.ex, ", "))
		}
	}
	return b.String()
}

type keySeq struct {
	key string
	seq int64
}

type position struct {
	partition int32
	offset    int64
}

func example(list *[]string, format string, args ...any) {
	if len(*list) < maxExamples {
		*list = append(*list, fmt.Sprintf(format, args...))
	}
}

// Check compares what was acknowledged and what failed with what was read.
// reads holds each distinct (partition, offset, id) once; availability and
// Redelivered are left for the caller to fill in.
func Check(acked []Record, failed []Failure, reads []Record) Report {
	rep := Report{Acked: int64(len(acked)), Failed: int64(len(failed)), Read: int64(len(reads))}
	produced := make(map[keySeq]string, len(acked)+len(failed))
	ackedAt := make(map[keySeq]position, len(acked))
	for _, a := range acked {
		produced[keySeq{a.Key, a.Seq}] = a.ID
		ackedAt[keySeq{a.Key, a.Seq}] = position{a.Partition, a.Offset}
	}
	for _, f := range failed {
		produced[keySeq{f.Key, f.Seq}] = f.ID
	}

	sorted := slices.Clone(reads)
	slices.SortFunc(sorted, func(a, b Record) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset), cmp.Compare(a.ID, b.ID))
	})

	// Divergence: one offset, two records.
	byPos := map[position]Record{}
	for _, r := range sorted {
		p := position{r.Partition, r.Offset}
		if prev, ok := byPos[p]; ok && prev.ID != r.ID {
			rep.Divergent++
			example(&rep.OtherExamples, "divergent %d:%d (%s and %s)", r.Partition, r.Offset, prev, r)
		}
		byPos[p] = r
	}

	where := map[keySeq][]position{} // valid reads of each (key, seq), in offset order
	for _, r := range sorted {
		ks := keySeq{r.Key, r.Seq}
		if id, ok := produced[ks]; !ok || r.Seq < 0 || id != r.ID {
			rep.Unexpected++
			example(&rep.OtherExamples, "unexpected %s id %q", r, r.ID)
			continue
		}
		where[ks] = append(where[ks], position{r.Partition, r.Offset})
	}

	// Order, per key and partition: a seq read for the first time below the
	// largest seq already read is out of order. Later copies of a seq are
	// duplicates, not reorders.
	type keyPart struct {
		key       string
		partition int32
	}
	highest := map[keyPart]int64{}
	first := map[keySeq]bool{}
	for _, r := range sorted {
		ks := keySeq{r.Key, r.Seq}
		if _, ok := where[ks]; !ok || first[ks] {
			continue
		}
		first[ks] = true
		kp := keyPart{r.Key, r.Partition}
		if h, ok := highest[kp]; ok && r.Seq < h {
			rep.Reordered++
			example(&rep.ReorderExamples, "%s after seq %d", r, h)
		}
		if h, ok := highest[kp]; !ok || r.Seq > h {
			highest[kp] = r.Seq
		}
	}

	dups := make([]keySeq, 0)
	for ks, ps := range where {
		if len(ps) > 1 {
			dups = append(dups, ks)
		}
	}
	slices.SortFunc(dups, compareKeySeq)
	for _, ks := range dups {
		rep.Duplicated++
		example(&rep.DuplicateExamples, "%s/%d at %s", ks.key, ks.seq, positions(where[ks]))
	}

	ackedKeys := make([]keySeq, 0, len(ackedAt))
	for ks := range ackedAt {
		ackedKeys = append(ackedKeys, ks)
	}
	slices.SortFunc(ackedKeys, compareKeySeq)
	for _, ks := range ackedKeys {
		at := ackedAt[ks]
		ps, ok := where[ks]
		switch {
		case !ok:
			rep.Lost++
			example(&rep.LostExamples, "%s/%d@%d:%d", ks.key, ks.seq, at.partition, at.offset)
		case !slices.Contains(ps, at):
			rep.Misplaced++
			example(&rep.OtherExamples, "misplaced %s/%d acked at %s, read at %s", ks.key, ks.seq, at, positions(ps))
		}
	}
	return rep
}

func (p position) String() string { return fmt.Sprintf("%d:%d", p.partition, p.offset) }

func positions(ps []position) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}

func compareKeySeq(a, b keySeq) int {
	return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.seq, b.seq))
}
