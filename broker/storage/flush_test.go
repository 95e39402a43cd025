package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func recoveryPointFileOf(t *testing.T, dir string) int64 {
	t.Helper()
	off, ok := readOffsetFile(filepath.Join(dir, recoveryPointFile))
	if !ok {
		return -1
	}
	return off
}

func TestStorageRollDoesNotWaitForTheFlush(t *testing.T) {
	// The flush of rolled segments is held (as a disk slow to fsync
	// would hold it); appends must go on through several rolls, and once
	// it is let go the recovery point reaches the last roll.
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 500
	var flushes int
	l := openLogWith(t, dir, cfg, Options{OnFlush: func(_ time.Duration, err error) {
		if err != nil {
			t.Errorf("flush: %v", err)
		}
		flushes++ // one goroutine at a time; read after flushing.Wait
	}})
	l.flushMu.Lock()
	held := true
	release := func() {
		if held {
			held = false
			l.flushMu.Unlock()
		}
	}
	t.Cleanup(release) // before Close, which waits for the flush
	appended := make(chan [][]byte, 1)
	go func() { appended <- appendN(t, l, 30, "r") }()
	var batches [][]byte
	select {
	case batches = <-appended:
	case <-time.After(10 * time.Second):
		t.Fatal("appends waited for the flush of rolled segments")
	}
	segs := segmentFiles(t, dir)
	if len(segs) < 4 {
		t.Fatalf("%d segments; the test needs several rolls", len(segs))
	}
	if got := recoveryPointFileOf(t, dir); got != -1 {
		t.Fatalf("recovery point %d written while the flush was held", got)
	}
	release()
	l.flushing.Wait()
	last := segs[len(segs)-1]
	if got := recoveryPointFileOf(t, dir); got != last {
		t.Fatalf("recovery point file = %d, want the last roll at %d", got, last)
	}
	if !exists(offsetName(dir, last, snapshotSuffix)) {
		t.Fatalf("no producer snapshot at the last roll (%d)", last)
	}
	if flushes == 0 || flushes >= len(segs)-1 {
		t.Fatalf("%d flushes for %d rolls: the held ones should have been taken together", flushes, len(segs)-1)
	}
	var want []string
	for i := range batches {
		for j := range 3 {
			want = append(want, fmt.Sprintf("r%c-%d", 'a'+i, j))
		}
	}
	var gotVals []string
	for i, g := range readAll(t, l) {
		if g.offset != int64(i) {
			t.Fatalf("record %d has offset %d", i, g.offset)
		}
		gotVals = append(gotVals, g.value)
	}
	if !slices.Equal(gotVals, want) {
		t.Fatalf("records after the rolls:\n got %v\nwant %v", gotVals, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := recoveryPointFileOf(t, dir); got != 90 {
		t.Fatalf("recovery point after Close = %d, want the log end offset 90", got)
	}
}

// damageSecondBatch flips a byte inside the second batch of the segment at
// base.
func damageSecondBatch(t *testing.T, dir string, base int64, firstLen int) {
	t.Helper()
	path := offsetName(dir, base, logSuffix)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[firstLen+30] ^= 0xff
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStorageRecoverRereadsSegmentsPastTheRecoveryPoint(t *testing.T) {
	// A crash after a roll but before its flush leaves the recovery point
	// at the roll before. The segments past it may have lost writes, so
	// recovery must re-read them whole, not only after their last index
	// entry. The segments before it are trusted: damage there before their
	// last index entry goes unnoticed, which shows they were not re-read
	// (as Kafka checks only from the recovery point).
	for _, tc := range []struct {
		name string
		// point is the index into the segments of the recovery point
		// left on disk; -1 removes the file (a data dir from before
		// recovery points: every segment is re-read).
		point int
	}{{"point at the second segment", 1}, {"no recovery point file", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig()
			cfg.SegmentBytes = 500
			l := openLog(t, dir, cfg, nil)
			batches := appendN(t, l, 30, "p")
			l.crash()
			segs := segmentFiles(t, dir)
			if len(segs) < 4 {
				t.Fatalf("%d segments; the test needs several", len(segs))
			}
			rp := filepath.Join(dir, recoveryPointFile)
			if tc.point < 0 {
				os.Remove(rp)
			} else if err := writeOffsetFile(rp, segs[tc.point]); err != nil {
				t.Fatal(err)
			}
			perSeg := int(segs[1]-segs[0]) / 3 // batches per segment
			size0 := fileSize(t, offsetName(dir, segs[0], logSuffix))
			damageSecondBatch(t, dir, segs[0], len(batches[0]))
			damageSecondBatch(t, dir, segs[1], len(batches[perSeg]))

			l = openLog(t, dir, cfg, nil)
			wantLEO, wantSegs := segs[1]+3, 2 // up to segment 1's first batch
			if tc.point < 0 {
				wantLEO, wantSegs = 3, 1 // segment 0's first batch
			} else if got := fileSize(t, offsetName(dir, segs[0], logSuffix)); got != size0 {
				t.Fatalf("segment 0, before the recovery point, was re-read and cut to %d bytes (was %d)", got, size0)
			}
			if got := l.LogEndOffset(); got != wantLEO {
				t.Fatalf("LEO = %d, want %d", got, wantLEO)
			}
			if tc.point >= 0 {
				// Segment 0's damage is not noticed (it was trusted);
				// compare what follows it.
				got := readBytes(t, l, segs[1], 1<<20, wantLEO, false)
				if !bytes.Equal(got, batches[perSeg]) {
					t.Fatal("segment 1's first batch differs after recovery")
				}
			} else if got := readBytes(t, l, 0, 1<<20, wantLEO, false); !bytes.Equal(got, batches[0]) {
				t.Fatal("segment 0's first batch differs after recovery")
			}
			if n := len(segmentFiles(t, dir)); n != wantSegs {
				t.Fatalf("%d segments left, want %d", n, wantSegs)
			}
		})
	}
}

func TestStorageTruncationLowersTheRecoveryPoint(t *testing.T) {
	// Offsets appended again after a truncation are not on disk: a
	// recovery point left above them would make recovery trust them.
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 500
	l := openLog(t, dir, cfg, nil)
	appendN(t, l, 30, "t")
	l.flushing.Wait()
	segs := segmentFiles(t, dir)
	if got := recoveryPointFileOf(t, dir); got != segs[len(segs)-1] {
		t.Fatalf("recovery point = %d, want %d", got, segs[len(segs)-1])
	}
	if err := l.TruncateTo(segs[1] + 3); err != nil {
		t.Fatal(err)
	}
	if got := recoveryPointFileOf(t, dir); got != segs[1]+3 {
		t.Fatalf("recovery point after truncating to %d = %d", segs[1]+3, got)
	}
	if err := l.TruncateFullyAndStartAt(1); err != nil {
		t.Fatal(err)
	}
	if got := recoveryPointFileOf(t, dir); got != 1 {
		t.Fatalf("recovery point after restarting the log at 1 = %d", got)
	}
}

func TestStorageFlushLimitQueuesFlushes(t *testing.T) {
	// Logs sharing a FlushLimit of one: while another log holds the slot,
	// a roll's flush waits for it instead of running beside it.
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 500
	limit := NewFlushLimit(1)
	l := openLogWith(t, dir, cfg, Options{FlushLimit: limit})
	limit <- struct{}{} // another log's flush
	appendN(t, l, 30, "q")
	segs := segmentFiles(t, dir)
	if len(segs) < 2 {
		t.Fatalf("%d segments; the test needs a roll", len(segs))
	}
	if got := recoveryPointFileOf(t, dir); got != -1 {
		t.Fatalf("recovery point %d written while the only flush slot was taken", got)
	}
	<-limit
	l.flushing.Wait()
	if got := recoveryPointFileOf(t, dir); got != segs[len(segs)-1] {
		t.Fatalf("recovery point = %d after the slot was freed, want %d", got, segs[len(segs)-1])
	}
	if len(limit) != 0 {
		t.Fatal("the flush kept its slot")
	}
}
