package storage

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// segmentedLog has one 2-record batch per segment; batch i has timestamp
// 1_000_000 + i*1000 ms, so segment i's base offset is 2i.
func segmentedLog(t *testing.T, dir string, cfg Config, clk *clock, n int) (*Log, int) {
	recs := func(i int) []rec { return []rec{kv(fmt.Sprint("a", i%10), "v"), kv(fmt.Sprint("b", i%10), "v")} }
	b := makeBatch(t, recs(0), batchOpts{baseTs: 1_000_000})
	cfg.SegmentBytes = int64(len(b))
	l := openLog(t, dir, cfg, clk.Now)
	for i := range n {
		mustAppend(t, l, makeBatch(t, recs(i), batchOpts{baseTs: 1_000_000 + int64(i)*1000}), 0)
	}
	return l, len(b)
}

func TestStorageRetentionByTime(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.RetentionMs = 10_000
	clk := newClock(1_000_000 + 12_500) // batch 0 is 12.5 s old, batch 2 is 10.5 s, batch 3 is 9.5 s
	l, _ := segmentedLog(t, dir, cfg, clk, 5)
	if err := l.Maintain(); err != nil {
		t.Fatal(err)
	}
	if got := l.LogStartOffset(); got != 6 {
		t.Fatalf("log start = %d, want 6", got)
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, []int64{6, 8}) {
		t.Fatalf("segments %v, want [6 8]", got)
	}
	if got := offsetsOf(readAll(t, l)); !slices.Equal(got, []int64{6, 7, 8, 9}) {
		t.Fatalf("offsets %v", got)
	}
	// The log start offset is persisted.
	l.Close()
	l = openLog(t, dir, cfg, clk.Now)
	if got := l.LogStartOffset(); got != 6 {
		t.Fatalf("log start after reopen = %d", got)
	}
}

func TestStorageRetentionByTimeRollsAnExpiredActiveSegment(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.RetentionMs = 10_000
	clk := newClock(1_000_000)
	l := openLog(t, dir, cfg, clk.Now)
	mustAppend(t, l, makeBatch(t, vals(3, "idle"), batchOpts{baseTs: 1_000_000}), 0)
	clk.advance(9 * time.Second)
	l.Maintain()
	if l.LogStartOffset() != 0 {
		t.Fatal("deleted too early")
	}
	clk.advance(2 * time.Second)
	if err := l.Maintain(); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 3 || l.LogEndOffset() != 3 || l.Size() != 0 {
		t.Fatalf("start %d end %d size %d, want 3 3 0", l.LogStartOffset(), l.LogEndOffset(), l.Size())
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, []int64{3}) {
		t.Fatalf("segments %v", got)
	}
	if info := mustAppend(t, l, makeBatch(t, vals(1, "new"), batchOpts{baseTs: clk.Now().UnixMilli()}), 0); info.BaseOffset != 3 {
		t.Fatalf("%+v", info)
	}
}

func TestStorageRetentionBySize(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.RetentionMs = -1
	clk := newClock(0)
	l, size := segmentedLog(t, dir, cfg, clk, 6)
	cfg = l.Config()
	// 6 segments of size bytes and a limit of 3.5 segments: the oldest 2
	// go, a 3rd would leave less than the limit.
	cfg.RetentionBytes = int64(3*size + size/2)
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if err := l.Maintain(); err != nil {
		t.Fatal(err)
	}
	if got := l.LogStartOffset(); got != 4 {
		t.Fatalf("log start = %d, want 4", got)
	}
	if got := l.Size(); got != int64(4*size) {
		t.Fatalf("size = %d, want %d", got, 4*size)
	}
	// retention.bytes never deletes the active segment.
	cfg.RetentionBytes = 0
	l.SetConfig(cfg)
	l.Maintain()
	if got := segmentFiles(t, dir); !slices.Equal(got, []int64{10}) || l.LogStartOffset() != 10 {
		t.Fatalf("segments %v, start %d", got, l.LogStartOffset())
	}
}

func TestStorageRetentionSkippedForCompactOnly(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.RetentionMs = 1
	cfg.CleanupPolicy = "compact"
	cfg.MinCleanableDirtyRatio = 1
	clk := newClock(10_000_000)
	l, _ := segmentedLog(t, dir, cfg, clk, 3)
	if err := l.Maintain(); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 0 {
		t.Fatalf("compact-only topic lost data to retention.ms: start %d", l.LogStartOffset())
	}
}

func TestStorageDeleteRecordsBefore(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.RetentionMs = -1
	clk := newClock(0)
	l, _ := segmentedLog(t, dir, cfg, clk, 4) // segments 0, 2, 4, 6; LEO 8
	if _, err := l.DeleteRecordsBefore(9); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("beyond LEO: %v", err)
	}
	start, err := l.DeleteRecordsBefore(3) // inside segment 2
	if err != nil || start != 3 {
		t.Fatalf("= %d, %v", start, err)
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, []int64{2, 4, 6}) {
		t.Fatalf("segments %v", got)
	}
	if _, err := l.Read(2, 100, 8, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v", err)
	}
	// Reading at the log start returns the batch that holds it.
	if b := readBytes(t, l, 3, 1<<20, 8, false); parseHeader(b).baseOffset != 2 {
		t.Fatal("read at log start does not start with the batch holding it")
	}
	if got := offsetsOf(readAll(t, l)); !slices.Equal(got, []int64{3, 4, 5, 6, 7}) {
		t.Fatalf("offsets %v", got)
	}
	if start, _ := l.DeleteRecordsBefore(1); start != 3 {
		t.Fatalf("moving the log start back: %d", start)
	}
	l.crash()
	l = openLog(t, dir, testConfig(), clk.Now)
	if got := l.LogStartOffset(); got != 3 {
		t.Fatalf("log start after reopen = %d, want 3", got)
	}
	// Up to the log end offset empties the log but keeps the active segment.
	if start, err := l.DeleteRecordsBefore(8); err != nil || start != 8 {
		t.Fatalf("= %d, %v", start, err)
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, []int64{6}) {
		t.Fatalf("segments %v", got)
	}
	if b := readBytes(t, l, 8, 100, 8, true); len(b) != 0 {
		t.Fatal("read at LEO returned data")
	}
}

func TestStorageTruncateTo(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.RetentionMs = -1
	clk := newClock(0)
	l, _ := segmentedLog(t, dir, cfg, clk, 5) // segments 0..8, LEO 10
	mustAppend(t, l, makeBatch(t, vals(2, "e2"), batchOpts{baseTs: 5_000_000}), 2)
	mustAppend(t, l, makeBatch(t, vals(2, "e3"), batchOpts{idempotent: true, pid: 5, epoch: 0, seq: 0}), 3)
	if l.LogEndOffset() != 14 || l.LatestEpoch() != 3 {
		t.Fatalf("LEO %d epoch %d", l.LogEndOffset(), l.LatestEpoch())
	}
	if err := l.TruncateTo(20); err != nil || l.LogEndOffset() != 14 {
		t.Fatalf("truncate past LEO: %v, LEO %d", err, l.LogEndOffset())
	}
	if err := l.TruncateTo(7); err != nil { // inside the batch at 6: it goes
		t.Fatal(err)
	}
	if l.LogEndOffset() != 6 {
		t.Fatalf("LEO = %d, want 6", l.LogEndOffset())
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, []int64{0, 2, 4, 6}) {
		t.Fatalf("segments %v", got)
	}
	if l.LatestEpoch() != 0 {
		t.Fatalf("latest epoch %d after truncation, want 0", l.LatestEpoch())
	}
	if _, _, ok := l.ProducerState(5); ok {
		t.Fatal("producer of a truncated batch survived")
	}
	if got := offsetsOf(readAll(t, l)); !slices.Equal(got, []int64{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("offsets %v", got)
	}
	if info := mustAppend(t, l, makeBatch(t, vals(1, "n"), batchOpts{}), 4); info.BaseOffset != 6 {
		t.Fatalf("append after truncation: %+v", info)
	}
	if le, end := l.EndOffsetForEpoch(0); le != 0 || end != 6 {
		t.Fatalf("EndOffsetForEpoch(0) = %d, %d", le, end)
	}
	l.crash()
	l = openLog(t, dir, cfg, clk.Now)
	if l.LogEndOffset() != 7 || l.LatestEpoch() != 4 {
		t.Fatalf("after reopen LEO %d epoch %d", l.LogEndOffset(), l.LatestEpoch())
	}
	// Below the log start the log restarts empty there.
	l.DeleteRecordsBefore(3)
	if err := l.TruncateTo(1); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 1 || l.LogEndOffset() != 1 || l.Size() != 0 || l.LatestEpoch() != -1 {
		t.Fatalf("start %d end %d size %d", l.LogStartOffset(), l.LogEndOffset(), l.Size())
	}
}

func TestStorageFollowerAppend(t *testing.T) {
	leader := openLog(t, t.TempDir(), testConfig(), nil)
	mustAppend(t, leader, makeBatch(t, vals(2, "a"), idem(3, 0, 0)), 1)
	mustAppend(t, leader, makeBatch(t, vals(3, "b"), batchOpts{}), 2)
	mustAppend(t, leader, makeBatch(t, vals(1, "c"), idem(3, 0, 2)), 2)
	data := readBytes(t, leader, 0, 1<<20, 6, false)

	dir := t.TempDir()
	f := openLog(t, dir, testConfig(), nil)
	if err := f.AppendAsFollower(data); err != nil {
		t.Fatal(err)
	}
	if f.LogEndOffset() != 6 || f.LatestEpoch() != 2 {
		t.Fatalf("LEO %d epoch %d", f.LogEndOffset(), f.LatestEpoch())
	}
	if got := readBytes(t, f, 0, 1<<20, 6, false); string(got) != string(data) {
		t.Fatal("follower did not store the batches verbatim")
	}
	if e, seq, ok := f.ProducerState(3); !ok || e != 0 || seq != 2 {
		t.Fatalf("producer state %d %d %v", e, seq, ok)
	}
	if le, end := f.EndOffsetForEpoch(1); le != 1 || end != 2 {
		t.Fatalf("EndOffsetForEpoch(1) = %d, %d", le, end)
	}
	// Re-sending what it has is out of range; a gap forward is fine.
	if err := f.AppendAsFollower(data); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("re-append: %v", err)
	}
	gap := withOffsetEpoch(makeBatch(t, vals(2, "d"), batchOpts{}), 10, 2)
	if err := f.AppendAsFollower(gap); err != nil || f.LogEndOffset() != 12 {
		t.Fatalf("gap: %v, LEO %d", err, f.LogEndOffset())
	}
	f.crash()
	f = openLog(t, dir, testConfig(), nil)
	if e, seq, ok := f.ProducerState(3); !ok || e != 0 || seq != 2 || f.LogEndOffset() != 12 {
		t.Fatalf("after crash: %d %d %v LEO %d", e, seq, ok, f.LogEndOffset())
	}
}
