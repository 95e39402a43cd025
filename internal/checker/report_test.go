package checker

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// synthetic builds n acknowledged records of key k at offsets base.. of
// partition p, ids "<k>-<seq>".
func synthetic(k string, p int32, base int64, n int) []Record {
	out := make([]Record, n)
	for i := range out {
		out[i] = Record{Key: k, Seq: int64(i), ID: fmt.Sprintf("%s-%d", k, i), Partition: p, Offset: base + int64(i)}
	}
	return out
}

func TestCheckerReportCleanRun(t *testing.T) {
	acked := append(synthetic("k0", 0, 0, 5), synthetic("k1", 1, 0, 5)...)
	rep := Check(acked, nil, acked)
	if !rep.OK() || rep.Acked != 10 || rep.Read != 10 || rep.Lost+rep.Duplicated+rep.Reordered+rep.Misplaced+rep.Unexpected+rep.Divergent != 0 {
		t.Fatalf("clean run: %v", rep)
	}
	if !strings.HasPrefix(rep.String(), "OK: acked=10 failed=0 read=10 lost=0") {
		t.Fatalf("String() = %q", rep.String())
	}
}

func TestCheckerReportDetectsEachAnomalyExactly(t *testing.T) {
	acked := synthetic("k0", 0, 0, 6)
	tests := []struct {
		name  string
		reads func() []Record
		want  Report // only the anomaly counts and Read are compared
	}{
		{"lost", func() []Record {
			r := synthetic("k0", 0, 0, 6)
			return append(r[:2:2], r[4:]...) // seqs 2 and 3 never read
		}, Report{Read: 4, Lost: 2}},
		{"duplicated", func() []Record {
			r := synthetic("k0", 0, 0, 6)
			d := r[1]
			d.Offset = 6 // seq 1 again at a later offset
			return append(r, d)
		}, Report{Read: 7, Duplicated: 1}},
		{"duplicate of the same pair three times counts once", func() []Record {
			r := synthetic("k0", 0, 0, 6)
			d1, d2 := r[5], r[5]
			d1.Offset, d2.Offset = 6, 7
			return append(r, d1, d2)
		}, Report{Read: 8, Duplicated: 1}},
		{"reordered", func() []Record {
			r := synthetic("k0", 0, 0, 6)
			// The log holds seq 3 at offset 2 and seq 2 at offset 3; the
			// producer's acks say otherwise, so both are also misplaced.
			r[2].Seq, r[2].ID, r[3].Seq, r[3].ID = 3, "k0-3", 2, "k0-2"
			return r
		}, Report{Read: 6, Reordered: 1, Misplaced: 2}},
		{"unexpected", func() []Record {
			r := synthetic("k0", 0, 0, 6)
			return append(r, Record{Key: "k0", Seq: 9, ID: "other-run", Partition: 0, Offset: 6},
				Record{Key: "k0", Seq: -1, ID: "garbage", Partition: 0, Offset: 7})
		}, Report{Read: 8, Unexpected: 2}},
		{"divergent", func() []Record {
			r := synthetic("k0", 0, 0, 6)
			// Offset 5 read first with seq 5, then (after a truncation)
			// with a foreign record.
			return append(r, Record{Key: "k0", Seq: 7, ID: "stranger", Partition: 0, Offset: 5})
		}, Report{Read: 7, Divergent: 1, Unexpected: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Check(acked, nil, tc.reads())
			w := tc.want
			if got.Read != w.Read || got.Lost != w.Lost || got.Duplicated != w.Duplicated || got.Reordered != w.Reordered ||
				got.Misplaced != w.Misplaced || got.Unexpected != w.Unexpected || got.Divergent != w.Divergent {
				t.Fatalf("got %v\nwant read=%d lost=%d duplicated=%d reordered=%d misplaced=%d unexpected=%d divergent=%d",
					got, w.Read, w.Lost, w.Duplicated, w.Reordered, w.Misplaced, w.Unexpected, w.Divergent)
			}
			if got.OK() {
				t.Fatalf("OK() with anomalies: %v", got)
			}
		})
	}
}

func TestCheckerReportExamples(t *testing.T) {
	acked := synthetic("k0", 0, 0, 20)
	reads := synthetic("k0", 0, 0, 20)[15:] // 0..14 lost
	dup := reads[0]
	dup.Offset = 20
	reads = append(reads, dup)
	rep := Check(acked, nil, reads)
	if rep.Lost != 15 || len(rep.LostExamples) != maxExamples || rep.LostExamples[0] != "k0/0@0:0" {
		t.Fatalf("lost %d, examples %q", rep.Lost, rep.LostExamples)
	}
	if len(rep.DuplicateExamples) != 1 || rep.DuplicateExamples[0] != "k0/15 at 0:15 0:20" {
		t.Fatalf("duplicate examples %q", rep.DuplicateExamples)
	}
	if s := rep.String(); !strings.HasPrefix(s, "FAILED:") || !strings.Contains(s, "\n  lost: k0/0@0:0, k0/1@0:1") {
		t.Fatalf("String() = %q", s)
	}
}

// TestCheckerReportFailedRecords: a failed record may be absent or present;
// if present it counts as read and is held to order and uniqueness.
func TestCheckerReportFailedRecords(t *testing.T) {
	all := synthetic("k0", 0, 0, 4)
	acked := []Record{all[0], all[1], all[3]}
	failed := []Failure{{Key: "k0", Seq: 2, ID: "k0-2", Err: errors.New("timed out")}}

	absent := Check(acked, failed, acked)
	if !absent.OK() || absent.Failed != 1 || absent.Read != 3 {
		t.Fatalf("failed record absent: %v", absent)
	}
	present := Check(acked, failed, all)
	if !present.OK() || present.Read != 4 {
		t.Fatalf("failed record present: %v", present)
	}
	late := all[2]
	late.Offset = 4 // after seq 3
	rep := Check(acked, failed, []Record{all[0], all[1], all[3], late})
	if rep.Reordered != 1 || rep.OK() {
		t.Fatalf("failed record out of order: %v", rep)
	}
	twice := Check(acked, failed, append(all, late))
	if twice.Duplicated != 1 || twice.Reordered != 0 {
		t.Fatalf("failed record twice: %v", twice)
	}
}

func TestCheckerReportKeysAreIndependent(t *testing.T) {
	// Interleaved keys in one partition: each key's seqs rise, the
	// partition's mix does not matter.
	var acked []Record
	for i := 0; i < 10; i++ {
		k := fmt.Sprintf("k%d", i%2)
		acked = append(acked, Record{Key: k, Seq: int64(i / 2), ID: fmt.Sprintf("%s-%d", k, i/2), Partition: 0, Offset: int64(i)})
	}
	if rep := Check(acked, nil, acked); !rep.OK() || rep.Read != 10 {
		t.Fatalf("interleaved keys: %v", rep)
	}
}

func TestCheckerOutageClock(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	o := outageClock{threshold: 100 * time.Millisecond}
	o.produced(at(0))
	o.produced(at(5))
	if d := o.acked(at(10)); d != 10*time.Millisecond {
		t.Fatalf("first wait %s", d)
	}
	if c := o.current(at(60)); c != 50*time.Millisecond {
		t.Fatalf("current %s, want 50ms since the last ack", c)
	}
	if d := o.acked(at(510)); d != 500*time.Millisecond { // an outage
		t.Fatalf("outage %s", d)
	}
	if c := o.current(at(2000)); c != 0 {
		t.Fatalf("current with nothing pending: %s", c)
	}
	o.produced(at(3000)) // idle time before is not unavailability
	o.produced(at(3100))
	if d := o.failed(at(3200)); d != 0 {
		t.Fatalf("a failure with records still pending ended the wait (%s)", d)
	}
	if d := o.failed(at(3300)); d != 300*time.Millisecond {
		t.Fatalf("the last failure ended a %s wait, want 300ms", d)
	}
	if o.max != 500*time.Millisecond || o.total != 800*time.Millisecond || o.outages != 2 || o.pending != 0 {
		t.Fatalf("max %s total %s outages %d pending %d", o.max, o.total, o.outages, o.pending)
	}
}
