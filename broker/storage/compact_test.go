package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const t0 = 1_000_000_000 // ms, the test batches' timestamp

func compactConfig() Config {
	cfg := testConfig()
	cfg.CleanupPolicy = "compact"
	cfg.SegmentBytes = 14 // every batch gets its own segment
	cfg.DeleteRetentionMs = 24 * 60 * 60 * 1000
	return cfg
}

// batchAt returns the stored batch whose base offset is offset.
func batchAt(t *testing.T, l *Log, offset int64) []byte {
	t.Helper()
	b := readBytes(t, l, offset, 1, l.LogEndOffset(), true)
	if h := parseHeader(b); h.baseOffset != offset {
		t.Fatalf("batch at %d not found (got %d)", offset, h.baseOffset)
	}
	return b
}

func TestStorageCompaction(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(t0 + time.Hour.Milliseconds())
	l := openLog(t, dir, compactConfig(), clk.Now)
	gz, zstd := codecPtr(kgo.GzipCompression()), codecPtr(kgo.ZstdCompression())
	at := batchOpts{baseTs: t0}
	mustAppend(t, l, makeBatch(t, []rec{kv("k1", "v1"), kv("k2", "v1"), kv("k3", "v1")}, at), 0)                 // 0-2
	mustAppend(t, l, makeBatch(t, []rec{kv("k1", "v2"), kv("k4", "v1"), kv("k2", "")}, at), 0)                   // 3-5, k2 tombstone
	mustAppend(t, l, makeBatch(t, []rec{kv("k3", "v2"), kv("k5", "v1")}, batchOpts{baseTs: t0, codec: gz}), 0)   // 6-7
	mustAppend(t, l, makeBatch(t, []rec{kv("k5", "v2"), kv("k6", "v1")}, batchOpts{baseTs: t0, codec: zstd}), 0) // 8-9
	mustAppend(t, l, makeBatch(t, []rec{kv("k1", "v3")}, at), 0)                                                 // 10, active
	untouched := batchAt(t, l, 8)

	if err := l.Maintain(); err != nil {
		t.Fatal(err)
	}
	want := []got{
		{4, "k4", "v1", t0}, {5, "k2", "<nil>", t0}, {6, "k3", "v2", t0},
		{8, "k5", "v2", t0}, {9, "k6", "v1", t0}, {10, "k1", "v3", t0},
	}
	if got := readAll(t, l); !slices.Equal(got, want) {
		t.Fatalf("after compaction:\n got %v\nwant %v", got, want)
	}
	// Offsets and batch framing are kept; the gzip batch was rewritten
	// with gzip, the unchanged zstd batch is byte-identical.
	b6 := batchAt(t, l, 6)
	h6, err := checkStored(b6)
	if err != nil || h6.codec() != 1 || h6.count != 1 || h6.lastDelta != 1 || h6.baseTimestamp != t0 {
		t.Fatalf("rewritten gzip batch: %+v, %v", h6, err)
	}
	if !bytes.Equal(batchAt(t, l, 8), untouched) {
		t.Fatal("a batch with nothing to drop was rewritten")
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, []int64{0, 3, 6, 8, 10}) {
		t.Fatalf("segments %v", got) // the emptied first segment stays
	}
	if l.LogStartOffset() != 0 || l.LogEndOffset() != 11 {
		t.Fatalf("start %d end %d", l.LogStartOffset(), l.LogEndOffset())
	}

	// Two days on, the tombstone is old enough to go. k3 is overwritten,
	// which empties segment 6, and an emptied segment other than the
	// first is deleted.
	clk.advance(48 * time.Hour)
	mustAppend(t, l, makeBatch(t, []rec{kv("k7", "v1")}, at), 0) // 11
	mustAppend(t, l, makeBatch(t, []rec{kv("k3", "v3")}, at), 0) // 12, active
	cfg := l.Config()
	cfg.MinCleanableDirtyRatio = 0.01
	l.SetConfig(cfg)
	if err := l.Maintain(); err != nil {
		t.Fatal(err)
	}
	want = []got{
		{4, "k4", "v1", t0}, {8, "k5", "v2", t0}, {9, "k6", "v1", t0},
		{10, "k1", "v3", t0}, {11, "k7", "v1", t0}, {12, "k3", "v3", t0},
	}
	if got := readAll(t, l); !slices.Equal(got, want) {
		t.Fatalf("after second pass:\n got %v\nwant %v", got, want)
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, []int64{0, 3, 8, 10, 11, 12}) {
		t.Fatalf("segments %v", got)
	}

	// The cleaned segments and their indexes survive a restart.
	l.crash()
	l = openLog(t, dir, compactConfig(), clk.Now)
	if got := readAll(t, l); !slices.Equal(got, want) {
		t.Fatalf("after reopen:\n got %v\nwant %v", got, want)
	}
	if exists(offsetName(dir, 3, logSuffix+cleanedSuffix)) {
		t.Fatal("leftover .cleaned file")
	}
}

func TestStorageCompactionDirtyRatioAndLag(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(t0 + 1000)
	cfg := compactConfig()
	cfg.MinCompactionLagMs = 10_000
	l := openLog(t, dir, cfg, clk.Now)
	for range 3 {
		mustAppend(t, l, makeBatch(t, []rec{kv("k", "v")}, batchOpts{baseTs: t0}), 0)
	}
	l.Maintain() // too young for min.compaction.lag.ms
	if got := offsetsOf(readAll(t, l)); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("compacted too early: %v", got)
	}
	clk.advance(10 * time.Second)
	l.Maintain()
	if got := offsetsOf(readAll(t, l)); !slices.Equal(got, []int64{2}) {
		t.Fatalf("after the lag: %v", got)
	}
}

func TestStorageCompactionDirtyRatio(t *testing.T) {
	clk := newClock(t0)
	cfg := compactConfig()
	l := openLog(t, t.TempDir(), cfg, clk.Now)
	at := batchOpts{baseTs: t0}
	mustAppend(t, l, makeBatch(t, []rec{kv("a", "1"), kv("b", "1"), kv("c", "1")}, at), 0) // 0-2
	mustAppend(t, l, makeBatch(t, []rec{kv("d", "1"), kv("e", "1"), kv("f", "1")}, at), 0) // 3-5
	mustAppend(t, l, makeBatch(t, []rec{kv("a", "2")}, at), 0)                             // 6
	l.Maintain()                                                                           // all dirty: ratio 1
	if got := offsetsOf(readAll(t, l)); !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("first pass: %v", got)
	}
	mustAppend(t, l, makeBatch(t, []rec{kv("b", "2")}, at), 0) // 7
	mustAppend(t, l, makeBatch(t, []rec{kv("x", "1")}, at), 0) // 8, active
	// Clean: segments 0 (2 records) and 3 (3 records); dirty: 6 and 7 (1
	// record each), a little under half of the cleanable bytes.
	cfg.MinCleanableDirtyRatio = 0.5
	l.SetConfig(cfg)
	l.Maintain()
	if got := offsetsOf(readAll(t, l)); !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("compacted below min.cleanable.dirty.ratio: %v", got)
	}
	cfg.MinCleanableDirtyRatio = 0.3
	l.SetConfig(cfg)
	l.Maintain()
	if got := offsetsOf(readAll(t, l)); !slices.Equal(got, []int64{2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("second pass: %v", got)
	}
}

func TestStorageCompactionKeepsProducersLastBatch(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(t0)
	l := openLog(t, dir, compactConfig(), clk.Now)
	p1 := makeBatch(t, []rec{kv("a", "1")}, batchOpts{baseTs: t0, idempotent: true, pid: 9, epoch: 2, seq: 0})
	p2 := makeBatch(t, []rec{kv("a", "2"), kv("b", "1")}, batchOpts{baseTs: t0, idempotent: true, pid: 9, epoch: 2, seq: 1, codec: codecPtr(kgo.Lz4Compression())})
	mustAppend(t, l, p1, 0)                                                           // 0
	mustAppend(t, l, p2, 0)                                                           // 1-2
	mustAppend(t, l, makeBatch(t, []rec{kv("a", "3"), kv("b", "2")}, batchOpts{}), 0) // 3-4, active
	if err := l.Maintain(); err != nil {
		t.Fatal(err)
	}
	if got := offsetsOf(readAll(t, l)); !slices.Equal(got, []int64{3, 4}) {
		t.Fatalf("offsets %v", got)
	}
	empty := batchAt(t, l, 1)
	h, err := checkStored(empty)
	if err != nil || h.count != 0 || h.lastDelta != 1 || h.producerID != 9 || h.baseSequence != 1 || h.codec() != 0 {
		t.Fatalf("producer's last batch: %+v, %v", h, err)
	}
	// Without snapshots, the producer's state comes back from that batch.
	l.crash()
	offs, _ := listOffsets(dir, snapshotSuffix)
	for _, o := range offs {
		os.Remove(offsetName(dir, o, snapshotSuffix))
	}
	l = openLog(t, dir, compactConfig(), clk.Now)
	if e, seq, ok := l.ProducerState(9); !ok || e != 2 || seq != 2 {
		t.Fatalf("producer state %d %d %v", e, seq, ok)
	}
	info, err := l.AppendAsLeader(p2, 0)
	if err != nil || !info.Duplicate || info.BaseOffset != 1 || info.LastOffset != 2 {
		t.Fatalf("retry: %+v %v", info, err)
	}
	if _, err := l.AppendAsLeader(makeBatch(t, []rec{kv("z", "1")}, batchOpts{idempotent: true, pid: 9, epoch: 2, seq: 5}), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v", err)
	}
}

func TestStorageCompactionConcurrentWithAppendsAndReads(t *testing.T) {
	cfg := compactConfig()
	cfg.CleanupPolicy = "compact,delete"
	cfg.RetentionMs = -1
	cfg.SegmentBytes = 2048
	cfg.MinCleanableDirtyRatio = 0
	l := openLog(t, t.TempDir(), cfg, nil)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if err := l.Maintain(); err != nil {
				t.Error(err)
				return
			}
			end := l.LogEndOffset()
			s, err := l.Read(l.LogStartOffset(), 4096, end, true)
			if err != nil {
				t.Error(err)
				return
			}
			data, err := s.ReadAll(nil)
			s.Close()
			for err == nil && len(data) > 0 {
				var h header
				h, err = checkStored(data)
				data = data[h.size():]
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	latest := map[string]int64{}
	for i := range 1500 {
		key := fmt.Sprint("key-", i%37)
		info := mustAppend(t, l, makeBatch(t, []rec{kv(key, fmt.Sprint(i))}, batchOpts{codec: codecPtr(kgo.SnappyCompression())}), 0)
		latest[key] = info.BaseOffset
	}
	close(stop)
	<-done
	if err := l.Maintain(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int64{}
	for _, g := range readAll(t, l) {
		seen[g.key] = g.offset
		if g.value != fmt.Sprint(g.offset) {
			t.Fatalf("record %v has another record's value", g)
		}
	}
	for k, off := range latest {
		if seen[k] != off {
			t.Fatalf("key %s: latest record at %d, read %d", k, off, seen[k])
		}
	}
	if l.Size() > 37*200 {
		t.Fatalf("log is %d bytes after compaction of 37 keys", l.Size())
	}
}
