package storage

import (
	"log/slog"
	"math"
	"os"
	"testing"
)

func TestStorageWritebackHandsAppendedBytes(t *testing.T) {
	const every = 4096
	w := NewWriteback(every, 0, nil)
	if w == nil {
		t.Skip("no sync_file_range on this platform")
	}
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentMs = math.MaxInt64 // the batches' old timestamps would roll the reopened segment
	l, err := Open(dir, cfg, Options{Writeback: w})
	if err != nil {
		t.Fatal(err)
	}
	batch := makeBatch(t, vals(10, "value-"), batchOpts{}) // a few hundred bytes
	var size int64
	for size < 20*every {
		mustAppend(t, l, batch, 0)
		size += int64(len(batch))
	}
	// Every byte but fewer than `every` of the last ones was handed, and
	// the kernel took every range. Close waits for the queued ranges.
	w.Close()
	if got := w.Bytes(); got <= size-every || got > size {
		t.Fatalf("handed %d bytes of a %d-byte file, want more than %d", got, size, size-every)
	}
	if f := w.Failures(); f != 0 {
		t.Fatalf("%d ranges refused", f)
	}

	// After a restart the file's earlier bytes are not handed again: one
	// more range covers only what is appended now.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	w = NewWriteback(every, 0, nil)
	l, err = Open(dir, cfg, Options{Writeback: w})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var added int64
	for added < every {
		mustAppend(t, l, batch, 0)
		added += int64(len(batch))
	}
	w.Close()
	if got := w.Bytes(); got == 0 || got > added {
		t.Fatalf("after the restart %d bytes were handed for %d appended", got, added)
	}
	if got := readAll(t, l); int64(len(got)) != 10*(size+added)/int64(len(batch)) {
		t.Fatalf("read %d records back", len(got))
	}
}

// A queued range whose segment is deleted before the worker reaches it is
// still written back through its own descriptor, which is then closed, not
// kept for reads of a file that is gone.
func TestStorageWritebackOutlivesItsSegment(t *testing.T) {
	if !writebackSupported {
		t.Skip("no sync_file_range on this platform")
	}
	// No worker yet: the test decides when the queued range is handled.
	w := &Writeback{every: 1, logger: slog.New(slog.DiscardHandler), jobs: make(chan writebackJob, 1), done: make(chan struct{})}
	dir := t.TempDir()
	l, err := Open(dir, testConfig(), Options{Writeback: w})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, makeBatch(t, vals(3, "v"), batchOpts{}), 0)
	if len(w.jobs) != 1 {
		t.Fatalf("%d ranges queued, want 1", len(w.jobs))
	}
	// The queue is full: the next range stays with the log.
	l.writeMu.Lock()
	handed := l.active().handed
	l.writeMu.Unlock()
	mustAppend(t, l, makeBatch(t, vals(3, "v"), batchOpts{}), 0)
	l.writeMu.Lock()
	got := l.active().handed
	l.writeMu.Unlock()
	if got != handed {
		t.Fatalf("a range the full queue refused moved handed from %d to %d", handed, got)
	}

	j := <-w.jobs
	w.jobs <- j
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	go w.run()
	w.Close()
	if w.Failures() != 0 || w.Bytes() != j.n {
		t.Fatalf("bytes %d (want %d), failures %d", w.Bytes(), j.n, w.Failures())
	}
	if j.f.Fd() != ^uintptr(0) {
		t.Fatal("the descriptor of a closed segment was kept open")
	}
}

func TestStorageWritebackOff(t *testing.T) {
	if NewWriteback(0, 0, nil) != nil {
		t.Fatal("log.writeback.bytes=0 should leave writeback to the kernel")
	}
	var w *Writeback
	w.Close() // a nil Writeback is the disabled one
	l := openLog(t, t.TempDir(), testConfig(), nil)
	mustAppend(t, l, makeBatch(t, vals(3, "v"), batchOpts{}), 0)
}
