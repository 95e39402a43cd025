package main

import (
	"slices"
	"testing"
	"time"
)

func TestAppendTimesOf(t *testing.T) {
	at := appendTimes{3: {{first: 0, last: 9, appendedMs: 100}, {first: 10, last: 19, appendedMs: 105}, {first: 25, last: 25, appendedMs: 111}}}
	for _, c := range []struct {
		part   int32
		offset int64
		want   int64
		ok     bool
	}{
		{3, 0, 100, true}, {3, 9, 100, true}, {3, 10, 105, true}, {3, 19, 105, true},
		{3, 20, 0, false}, // between batches: not a record the source has
		{3, 25, 111, true}, {3, 26, 0, false}, {4, 0, 0, false},
	} {
		if got, ok := at.of(c.part, c.offset); got != c.want || ok != c.ok {
			t.Errorf("of(%d, %d) = %d, %v; want %d, %v", c.part, c.offset, got, ok, c.want, c.ok)
		}
	}
}

// TestSummarise checks the join of a phase's arrivals with their source
// append times: which records are the warm-up's, each figure's arithmetic,
// and records without a source batch.
func TestSummarise(t *testing.T) {
	zero := time.UnixMilli(1_000_000)
	from := zero.Add(100 * time.Millisecond)
	timed := from.Add(time.Second)
	src := appendTimes{0: {
		{first: 0, last: 0, appendedMs: zero.UnixMilli() + 50},    // the warm-up record: before from
		{first: 1, last: 1, appendedMs: from.UnixMilli() + 600},   // the warm-up at the rate, its second slice
		{first: 2, last: 3, appendedMs: timed.UnixMilli() + 10},   // second 0 of the timed phase
		{first: 4, last: 4, appendedMs: timed.UnixMilli() + 1500}, // second 1
	}}
	// read is a record read at atMs after zero, appended on the
	// target at tsMs after zero.
	read := func(off uint32, atMs, tsMs int) arrival {
		return arrival{offset: off, atUs: uint32(atMs * 1000), tsMs: int32(tsMs)}
	}
	timedAt := int(timed.Sub(zero) / time.Millisecond)
	arrs := []arrival{
		read(0, 60, 55),
		read(1, 100+600+30, 100+600+20),
		read(2, timedAt+10+7, timedAt+10+4),
		read(3, timedAt+10+9, timedAt+10+4),
		read(4, timedAt+1500+40, timedAt+1500+25),
		read(9, timedAt+1600, timedAt+1600), // no source batch
	}
	run := latencyRun{replicated: true}
	run.summarise(arrs, func(a arrival) (int64, bool) { return src.of(a.part, int64(a.offset)) }, zero, from, timed, time.Second, 2*time.Second)

	if run.unmatched != 1 {
		t.Errorf("unmatched = %d, want 1", run.unmatched)
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	if want := []time.Duration{0, ms(30)}; !slices.Equal(run.warmBySlice, want) {
		t.Errorf("warm-up slices %v, want %v", run.warmBySlice, want)
	}
	if want := []time.Duration{ms(9), ms(40), 0}; !slices.Equal(run.worstBySecond, want) {
		t.Errorf("end to end worst per second %v, want %v", run.worstBySecond, want)
	}
	if want := []time.Duration{ms(4), ms(25), 0}; !slices.Equal(run.repWorstBySecond, want) {
		t.Errorf("replication worst per second %v, want %v", run.repWorstBySecond, want)
	}
	if run.p50 != ms(9) || run.max != ms(40) || run.repP50 != ms(4) || run.repMax != ms(25) {
		t.Errorf("end to end p50 %v max %v, replication p50 %v max %v; want 9ms 40ms 4ms 25ms", run.p50, run.max, run.repP50, run.repMax)
	}
}
