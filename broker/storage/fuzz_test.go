package storage

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// fuzzSeedBatches are valid batches of several shapes.
func fuzzSeedBatches(t testing.TB) [][]byte {
	return [][]byte{
		makeBatch(t, vals(3, "seed"), batchOpts{}),
		makeBatch(t, []rec{kv("k", "v"), kv("k2", "")}, batchOpts{codec: codecPtr(kgo.GzipCompression())}),
		makeBatch(t, []rec{kv("a", "b")}, batchOpts{idempotent: true, pid: 1, epoch: 0, seq: 0}),
		makeBatch(t, vals(2, "s"), batchOpts{codec: codecPtr(kgo.SnappyCompression())}),
	}
}

// checkLogValid reads the whole log and checks that it is a run of valid
// batches with increasing offsets ending at the log end offset; it returns
// the bytes.
func checkLogValid(t *testing.T, l *Log) []byte {
	t.Helper()
	var all []byte
	next := l.LogStartOffset()
	end := l.LogEndOffset()
	for off := next; off < end; {
		s, err := l.Read(off, 1<<20, end, true)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		b, err := s.ReadAll(nil)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Fatalf("empty read at %d below the log end offset %d", off, end)
		}
		all = append(all, b...)
		for len(b) > 0 {
			h, err := checkStored(b)
			if err != nil {
				t.Fatalf("invalid batch in the log: %v", err)
			}
			// Only the first batch may start before the log start.
			if h.baseOffset < next && len(all) != len(b) {
				t.Fatalf("batch at %d after offset %d", h.baseOffset, next)
			}
			next = h.lastOffset() + 1
			b = b[h.size():]
		}
		off = next
	}
	if next != end {
		t.Fatalf("batches end at %d, the log end offset is %d", next, end)
	}
	return all
}

// FuzzRecover writes arbitrary bytes over the tail of a segment after a
// crash and checks that Open never panics and keeps exactly a valid prefix.
func FuzzRecover(f *testing.F) {
	seeds := fuzzSeedBatches(f)
	f.Add([]byte{}, uint16(0))
	f.Add(bytes.Repeat([]byte{0}, 100), uint16(50))
	f.Add(seeds[0], uint16(1000))
	f.Add(seeds[1][:40], uint16(1000))
	f.Add(slices.Concat(seeds...), uint16(10))
	f.Fuzz(func(t *testing.T, tail []byte, cut uint16) {
		dir := t.TempDir()
		cfg := testConfig()
		cfg.IndexIntervalBytes = 64
		l, err := Open(dir, cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var orig []byte
		for _, b := range fuzzSeedBatches(t) {
			info := mustAppend(t, l, b, 1)
			orig = append(orig, withOffsetEpoch(b, info.BaseOffset, 1)...)
		}
		l.crash()
		at := int(cut) % (len(orig) + 1)
		path := offsetName(dir, 0, logSuffix)
		content := slices.Concat(orig[:at], tail)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err = Open(dir, cfg, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		got := checkLogValid(t, l)
		if !bytes.HasPrefix(content, got) {
			t.Fatal("recovered bytes are not a prefix of the file")
		}
		// Every original batch that ended before the cut survives.
		whole := 0
		for b := orig; len(b) > 0; {
			h := parseHeader(b)
			if whole+int(h.size()) > at {
				break
			}
			whole += int(h.size())
			b = b[h.size():]
		}
		if len(got) < whole {
			t.Fatalf("recovered %d bytes, the %d bytes before the cut were valid", len(got), whole)
		}
		if fileSize(t, path) != int64(len(got)) {
			t.Fatalf("file is %d bytes, the valid prefix %d", fileSize(t, path), len(got))
		}
		leo := l.LogEndOffset()
		info, err := l.AppendAsLeader(makeBatch(t, vals(1, "after"), batchOpts{}), 2)
		if err != nil || info.BaseOffset != leo {
			t.Fatalf("append after recovery: %+v, %v (LEO was %d)", info, err, leo)
		}
	})
}

// FuzzRecoverMetadata writes arbitrary bytes into one of the small files
// (indexes, snapshot, checkpoints) of a cleanly closed log; Open must not
// panic and must either fail or give a readable log.
func FuzzRecoverMetadata(f *testing.F) {
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 90}, uint8(0))
	f.Add([]byte("0\n1\n5 3\n"), uint8(3))
	f.Add([]byte("7\n"), uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, target uint8) {
		dir := t.TempDir()
		cfg := testConfig()
		cfg.IndexIntervalBytes = 64
		l, err := Open(dir, cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range fuzzSeedBatches(t) {
			mustAppend(t, l, b, 1)
		}
		leo := l.LogEndOffset()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		paths := []string{
			offsetName(dir, 0, indexSuffix), offsetName(dir, 0, timeIndexSuffix),
			offsetName(dir, leo, snapshotSuffix), l.path(epochFile), l.path(logStartFile),
		}
		if err := os.WriteFile(paths[int(target)%len(paths)], data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err = Open(dir, cfg, Options{})
		if err != nil {
			return
		}
		defer l.Close()
		if l.LogEndOffset() != leo {
			t.Fatalf("LEO %d, want %d", l.LogEndOffset(), leo)
		}
		for off := l.LogStartOffset(); off < leo; off++ {
			if s, err := l.Read(off, 1<<20, leo, true); err == nil {
				s.Close()
			}
		}
		l.OffsetForTimestamp(0)
		l.MaxTimestamp()
		l.EndOffsetForEpoch(1)
	})
}

// FuzzAppend feeds arbitrary bytes to AppendAsLeader (on a delete and a
// compacted topic) and AppendAsFollower: no panic, and either an error
// that appended nothing or batches that read back valid.
func FuzzAppend(f *testing.F) {
	seeds := fuzzSeedBatches(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add(slices.Concat(seeds...))
	f.Add(seeds[0][:61])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, policy := range []string{"delete", "compact"} {
			cfg := testConfig()
			cfg.CleanupPolicy = policy
			l, err := Open(t.TempDir(), cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			mustAppend(t, l, seeds[2], 0) // a known producer
			before, size := l.LogEndOffset(), l.Size()
			info, err := l.AppendAsLeader(slices.Clone(data), 3)
			switch {
			case err != nil:
				if KafkaError(err) == nil || l.LogEndOffset() != before || l.Size() != size {
					t.Fatalf("%s: failed append changed the log or has no Kafka code: %v", policy, err)
				}
			case info.Duplicate:
				if l.LogEndOffset() != before {
					t.Fatal("duplicate appended")
				}
			default:
				if info.BaseOffset != before || l.LogEndOffset() != info.LastOffset+1 {
					t.Fatalf("%s: %+v, LEO %d", policy, info, l.LogEndOffset())
				}
				checkLogValid(t, l)
			}
			l.crash()
		}
		l, err := Open(t.TempDir(), testConfig(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.crash()
		if err := l.AppendAsFollower(data); err != nil {
			if l.LogEndOffset() != 0 || l.Size() != 0 {
				t.Fatalf("failed follower append changed the log: %v", err)
			}
			if !errors.Is(err, ErrCorruptMessage) && !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("follower append error: %v", err)
			}
			return
		}
		checkLogValid(t, l)
	})
}
