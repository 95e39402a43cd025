package storage

import (
	"bytes"
	"os"
	"slices"
	"testing"

	"github.com/kdr-io/kdr/internal/recordbatch"
)

// appendN appends n batches of 3 records each and returns their stored
// bytes, in order.
func appendN(t *testing.T, l *Log, n int, prefix string) [][]byte {
	var out [][]byte
	for i := range n {
		b := makeBatch(t, vals(3, prefix+string(rune('a'+i))), batchOpts{baseTs: int64(1000 + i)})
		info := mustAppend(t, l, b, 1)
		out = append(out, withOffsetEpoch(b, info.BaseOffset, 1))
	}
	return out
}

// damage reopens the log after a crash and checks that exactly the first
// keep batches survived and that appends continue after them.
func checkRecovered(t *testing.T, dir string, batches [][]byte, keep int) *Log {
	t.Helper()
	l := openLog(t, dir, testConfig(), nil)
	want := slices.Concat(batches[:keep]...)
	wantLEO := int64(3 * keep)
	if got := l.LogEndOffset(); got != wantLEO {
		t.Fatalf("LEO after recovery = %d, want %d", got, wantLEO)
	}
	if got := readBytes(t, l, 0, 1<<20, wantLEO, false); !bytes.Equal(got, want) {
		t.Fatalf("recovered %d bytes, want the %d-byte valid prefix", len(got), len(want))
	}
	if got := fileSize(t, lastSegmentPath(t, dir)); got != int64(len(want)) {
		t.Fatalf("segment file is %d bytes, want %d", got, len(want))
	}
	info := mustAppend(t, l, makeBatch(t, vals(2, "after"), batchOpts{}), 2)
	if info.BaseOffset != wantLEO {
		t.Fatalf("append after recovery at %d, want %d", info.BaseOffset, wantLEO)
	}
	return l
}

func TestStorageRecoverTornWrite(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testConfig(), nil)
	batches := appendN(t, l, 5, "torn")
	l.crash()
	size := int64(len(slices.Concat(batches...)))
	if err := os.Truncate(lastSegmentPath(t, dir), size-7); err != nil {
		t.Fatal(err)
	}
	checkRecovered(t, dir, batches, 4)
}

func TestStorageRecoverTrailingGarbage(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testConfig(), nil)
	batches := appendN(t, l, 4, "garbage")
	l.crash()
	f, err := os.OpenFile(lastSegmentPath(t, dir), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 40))
	f.Close()
	checkRecovered(t, dir, batches, 4)
}

func TestStorageRecoverZeroedTail(t *testing.T) {
	// A crash after the file grew but before data reached it leaves zeros.
	dir := t.TempDir()
	l := openLog(t, dir, testConfig(), nil)
	batches := appendN(t, l, 3, "zero")
	l.crash()
	f, err := os.OpenFile(lastSegmentPath(t, dir), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 4096))
	f.Close()
	checkRecovered(t, dir, batches, 3)
}

func TestStorageRecoverFlippedCRCByte(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testConfig(), nil)
	batches := appendN(t, l, 5, "crc")
	l.crash()
	path := lastSegmentPath(t, dir)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pos := len(batches[0]) + len(batches[1]) + 40 // inside the third batch's CRC-covered bytes
	raw[pos] ^= 0x10
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	checkRecovered(t, dir, batches, 2)
}

func TestStorageRecoverRebuildsDeletedIndexes(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 1000
	l := openLog(t, dir, cfg, nil)
	var want []got
	for i := range 40 {
		mustAppend(t, l, makeBatch(t, []rec{kv("k", "v"), {key: []byte("k2"), value: []byte("w"), ts: int64(2000 + i)}}, batchOpts{baseTs: int64(1000 + i)}), 0)
	}
	want = readAll(t, l)
	wantTs, _, _ := l.OffsetForTimestamp(2020)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, dir)
	if len(segs) < 4 {
		t.Fatalf("want several segments, have %v", segs)
	}
	for _, s := range segs {
		os.Remove(offsetName(dir, s, indexSuffix))
		os.Remove(offsetName(dir, s, timeIndexSuffix))
	}
	// A garbage index is as good as a missing one.
	os.WriteFile(offsetName(dir, segs[1], indexSuffix), []byte{0, 0, 0, 9, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 1}, 0o644)

	l = openLog(t, dir, cfg, nil)
	if got := readAll(t, l); !slices.Equal(got, want) {
		t.Fatalf("records differ after index rebuild:\n got %v\nwant %v", got, want)
	}
	if got, _, ok := l.OffsetForTimestamp(2020); !ok || got != wantTs {
		t.Fatalf("OffsetForTimestamp after rebuild = %d, %v; want %d", got, ok, wantTs)
	}
	for _, s := range segs[:len(segs)-1] {
		if !exists(offsetName(dir, s, indexSuffix)) || !exists(offsetName(dir, s, timeIndexSuffix)) {
			t.Fatalf("index of inactive segment %d not rewritten", s)
		}
	}
	// The rebuilt index is identical to one built by appending.
	idx, ok := readIndex(offsetName(dir, segs[0], indexSuffix), offsetName(dir, segs[0], timeIndexSuffix), fileSize(t, offsetName(dir, segs[0], logSuffix)))
	if !ok || len(idx.offsets) == 0 || len(idx.times) == 0 {
		t.Fatalf("rebuilt index: ok=%v %d offsets %d times", ok, len(idx.offsets), len(idx.times))
	}
}

func TestStorageRecoverCorruptInactiveSegmentTail(t *testing.T) {
	// Damage after an inactive segment's last index entry is found; the
	// log ends there and later segments go.
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 2000
	l := openLog(t, dir, cfg, nil)
	batches := appendN(t, l, 30, "tail")
	l.crash()
	segs := segmentFiles(t, dir)
	first := offsetName(dir, segs[0], logSuffix)
	raw, _ := os.ReadFile(first)
	// The last batch of the first segment.
	n := int(segs[1] / 3)
	raw[len(slices.Concat(batches[:n-1]...))+30] ^= 0xff
	os.WriteFile(first, raw, 0o644)
	l = openLog(t, dir, cfg, nil)
	if got := l.LogEndOffset(); got != int64(3*(n-1)) {
		t.Fatalf("LEO = %d, want %d", got, 3*(n-1))
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, segs[:1]) {
		t.Fatalf("segments %v, want %v", got, segs[:1])
	}
	if got := readBytes(t, l, 0, 1<<20, l.LogEndOffset(), false); !bytes.Equal(got, slices.Concat(batches[:n-1]...)) {
		t.Fatal("valid prefix differs")
	}
}

func TestStorageRecoverCleanShutdownMarker(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testConfig(), nil)
	appendN(t, l, 2, "m")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !exists(offsetName(dir, 6, snapshotSuffix)) || !exists(dir+"/"+cleanShutdownFile) {
		t.Fatalf("after Close: %v", dirFiles(t, dir))
	}
	if _, err := l.AppendAsLeader(makeBatch(t, vals(1, "x"), batchOpts{}), 0); err != ErrClosed {
		t.Fatalf("append after Close: %v", err)
	}
	l = openLog(t, dir, testConfig(), nil)
	if exists(dir + "/" + cleanShutdownFile) {
		t.Fatal("marker still present after Open")
	}
	if l.LogEndOffset() != 6 {
		t.Fatalf("LEO = %d", l.LogEndOffset())
	}
}

func TestStorageRecoverKill9KeepsEverythingWritten(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 700
	l := openLog(t, dir, cfg, nil)
	batches := appendN(t, l, 20, "k")
	l.crash()
	l = openLog(t, dir, cfg, nil)
	if got := readBytes(t, l, 0, 1<<20, 60, false); len(got) == 0 {
		t.Fatal("nothing readable")
	}
	var all []byte
	for off := int64(0); off < l.LogEndOffset(); {
		b := readBytes(t, l, off, 1<<20, l.LogEndOffset(), false)
		all = append(all, b...)
		off = recordbatch.NextOffset(b)
	}
	if !bytes.Equal(all, slices.Concat(batches...)) || l.LogEndOffset() != 60 {
		t.Fatalf("after kill -9: LEO %d, %d bytes", l.LogEndOffset(), len(all))
	}
}
