package storage

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestStorageOffsetForTimestamp(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionMs = -1
	cfg.SegmentBytes = 14 // one batch per segment
	l := openLog(t, t.TempDir(), cfg, nil)
	tsRecs := func(ts ...int64) []rec {
		out := make([]rec, len(ts))
		for i, x := range ts {
			out[i] = rec{value: []byte("v"), ts: x}
		}
		return out
	}
	mustAppend(t, l, makeBatch(t, tsRecs(100, 300, 200), batchOpts{baseTs: 100}), 0)                                         // 0-2
	mustAppend(t, l, makeBatch(t, tsRecs(250, 400, 500), batchOpts{baseTs: 250, codec: codecPtr(kgo.GzipCompression())}), 0) // 3-5
	mustAppend(t, l, makeBatch(t, tsRecs(350), batchOpts{baseTs: 350}), 0)                                                   // 6
	cases := []struct {
		ts, off, at int64
		ok          bool
	}{
		{50, 0, 100, true},
		{100, 0, 100, true},
		{150, 1, 300, true}, // the first record by offset, not the closest timestamp
		{301, 4, 400, true}, // inside the gzip batch
		{350, 4, 400, true},
		{450, 5, 500, true},
		{500, 5, 500, true},
		{501, -1, -1, false},
	}
	for _, c := range cases {
		off, at, ok := l.OffsetForTimestamp(c.ts)
		if off != c.off || at != c.at || ok != c.ok {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d, %v", c.ts, off, at, ok, c.off, c.at, c.ok)
		}
	}
	if off, ts := l.MaxTimestamp(); off != 5 || ts != 500 {
		t.Fatalf("MaxTimestamp = %d, %d; want 5, 500", off, ts)
	}
	// Records below the log start offset are not answers.
	if _, err := l.DeleteRecordsBefore(2); err != nil {
		t.Fatal(err)
	}
	if off, at, ok := l.OffsetForTimestamp(50); off != 2 || at != 200 || !ok {
		t.Fatalf("after DeleteRecords: %d, %d, %v; want 2, 200", off, at, ok)
	}
	// The time index survives a restart.
	l.Close()
	l = openLog(t, l.dir, cfg, nil)
	if off, at, ok := l.OffsetForTimestamp(301); off != 4 || at != 400 || !ok {
		t.Fatalf("after reopen: %d, %d, %v", off, at, ok)
	}
}

func TestStorageOffsetForTimestampManyBatches(t *testing.T) {
	// Increasing timestamps across many batches and an index entry every
	// few: the time index narrows the search, the answer must be exact.
	cfg := testConfig()
	cfg.RetentionMs = -1
	cfg.SegmentBytes = 4096
	l := openLog(t, t.TempDir(), cfg, nil)
	for i := range 300 {
		ts := int64(10_000 + 10*i)
		mustAppend(t, l, makeBatch(t, []rec{{value: []byte("a"), ts: ts}, {value: []byte("b"), ts: ts + 5}}, batchOpts{baseTs: ts}), 0)
	}
	for i := int64(0); i < 300; i += 7 {
		ts := 10_000 + 10*i
		if off, at, ok := l.OffsetForTimestamp(ts + 3); off != 2*i+1 || at != ts+5 || !ok {
			t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v; want %d", ts+3, off, at, ok, 2*i+1)
		}
		if off, _, _ := l.OffsetForTimestamp(ts); off != 2*i {
			t.Fatalf("OffsetForTimestamp(%d) = %d; want %d", ts, off, 2*i)
		}
	}
	if off, ts := l.MaxTimestamp(); off != 599 || ts != 10_000+10*299+5 {
		t.Fatalf("MaxTimestamp = %d, %d", off, ts)
	}
}

func TestStorageMaxTimestampLogAppendTime(t *testing.T) {
	cfg := testConfig()
	cfg.TimestampType = "LogAppendTime"
	clk := newClock(5_000)
	l := openLog(t, t.TempDir(), cfg, clk.Now)
	if off, ts := l.MaxTimestamp(); off != -1 || ts != -1 {
		t.Fatalf("empty log: %d, %d", off, ts)
	}
	mustAppend(t, l, makeBatch(t, vals(3, "a"), batchOpts{baseTs: 99_999}), 0)
	clk.advance(time.Second)
	mustAppend(t, l, makeBatch(t, vals(3, "b"), batchOpts{baseTs: 1}), 0)
	// Every record of a LogAppendTime batch has the append time, so the
	// first record of the newest batch is the answer.
	if off, ts := l.MaxTimestamp(); off != 3 || ts != 6_000 {
		t.Fatalf("MaxTimestamp = %d, %d; want 3, 6000", off, ts)
	}
	if off, at, ok := l.OffsetForTimestamp(5_001); off != 3 || at != 6_000 || !ok {
		t.Fatalf("OffsetForTimestamp = %d, %d, %v", off, at, ok)
	}
}

func TestStorageEndOffsetForEpoch(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.RetentionMs = -1
	cfg.SegmentBytes = 14
	l := openLog(t, dir, cfg, nil)
	if e, o := l.EndOffsetForEpoch(0); e != -1 || o != -1 || l.LatestEpoch() != -1 {
		t.Fatalf("empty: %d %d", e, o)
	}
	for _, a := range []struct {
		n     int
		epoch int32
	}{{3, 1}, {2, 1}, {4, 3}, {3, 6}} { // epoch 1 at 0, 3 at 5, 6 at 9; LEO 12
		mustAppend(t, l, makeBatch(t, vals(a.n, "e"), batchOpts{}), a.epoch)
	}
	check := func(l *Log) {
		t.Helper()
		for _, c := range []struct {
			req, epoch int32
			end        int64
		}{
			{6, 6, 12}, {3, 3, 9}, {4, 3, 9}, {5, 3, 9}, {1, 1, 5}, {0, 0, 0}, {7, -1, -1}, {-1, -1, -1},
		} {
			if e, o := l.EndOffsetForEpoch(c.req); e != c.epoch || o != c.end {
				t.Errorf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", c.req, e, o, c.epoch, c.end)
			}
		}
	}
	check(l)
	l.Close()
	raw, _ := os.ReadFile(filepath.Join(dir, epochFile))
	if string(raw) != "0\n3\n1 0\n3 5\n6 9\n" {
		t.Fatalf("leader-epoch-checkpoint = %q", raw)
	}
	l = openLog(t, dir, cfg, nil)
	check(l)
	// Lost checkpoint and a crash: rebuilt from the batches.
	l.crash()
	os.Remove(filepath.Join(dir, epochFile))
	l = openLog(t, dir, cfg, nil)
	check(l)
	// The log start moving into epoch 3 drops epoch 1.
	l.DeleteRecordsBefore(6)
	if e, o := l.EndOffsetForEpoch(1); e != 1 || o != 6 {
		t.Fatalf("after DeleteRecords: EndOffsetForEpoch(1) = %d, %d; want 1, 6", e, o)
	}
	l.Close()
	raw, _ = os.ReadFile(filepath.Join(dir, epochFile))
	if string(raw) != "0\n2\n3 6\n6 9\n" {
		t.Fatalf("leader-epoch-checkpoint = %q", raw)
	}
}
