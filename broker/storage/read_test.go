package storage

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// fiveBatches appends batches of 1, 2, 3, 4 and 5 records (offsets 0, 1, 3,
// 6, 10; LEO 15) and returns their stored sizes.
func fiveBatches(t *testing.T, l *Log) []int {
	var sizes []int
	for i := 1; i <= 5; i++ {
		b := makeBatch(t, vals(i, "v"), batchOpts{})
		mustAppend(t, l, b, 0)
		sizes = append(sizes, len(b))
	}
	return sizes
}

func TestStorageReadBounds(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), nil)
	sz := fiveBatches(t, l)
	total := sz[0] + sz[1] + sz[2] + sz[3] + sz[4]
	base := func(b []byte) int64 { return parseHeader(b).baseOffset }
	cases := []struct {
		name      string
		offset    int64
		maxBytes  int32
		maxOffset int64
		minOne    bool
		wantLen   int
		wantBase  int64
	}{
		{"everything", 0, 1 << 20, 15, false, total, 0},
		{"inside a batch", 4, 1 << 20, 15, false, sz[2] + sz[3] + sz[4], 3},
		{"maxBytes cuts at a batch boundary", 0, int32(sz[0] + sz[1] + sz[2] - 1), 15, false, sz[0] + sz[1], 0},
		{"maxBytes exactly", 0, int32(sz[0] + sz[1] + sz[2]), 15, false, sz[0] + sz[1] + sz[2], 0},
		{"first batch too big, no minOne", 10, int32(sz[4] - 1), 15, false, 0, 0},
		{"first batch too big, minOne", 10, int32(sz[4] - 1), 15, true, sz[4], 10},
		{"zero maxBytes, minOne", 1, 0, 15, true, sz[1], 1},
		{"maxOffset at a boundary", 0, 1 << 20, 6, false, sz[0] + sz[1] + sz[2], 0},
		{"maxOffset inside a batch", 0, 1 << 20, 8, false, sz[0] + sz[1] + sz[2], 0},
		{"maxOffset excludes the first batch, minOne", 6, 1 << 20, 8, true, 0, 0},
		{"offset at maxOffset", 6, 1 << 20, 6, true, 0, 0},
		{"at the log end offset", 15, 1 << 20, 15, true, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := readBytes(t, l, c.offset, c.maxBytes, c.maxOffset, c.minOne)
			if len(b) != c.wantLen {
				t.Fatalf("got %d bytes, want %d", len(b), c.wantLen)
			}
			if len(b) > 0 && base(b) != c.wantBase {
				t.Fatalf("first batch at %d, want %d", base(b), c.wantBase)
			}
		})
	}
	for _, off := range []int64{-1, 16, 1000} {
		if _, err := l.Read(off, 100, 15, true); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("Read(%d) err = %v, want ErrOffsetOutOfRange", off, err)
		}
	}
}

func TestStorageReadEveryOffsetWithSmallIndexInterval(t *testing.T) {
	// Many small batches and a sparse index: every lookup is an index
	// search plus a header scan.
	cfg := testConfig()
	cfg.IndexIntervalBytes = 300
	l := openLog(t, t.TempDir(), cfg, nil)
	var batches [][]byte
	for i := range 200 {
		b := makeBatch(t, vals(1+i%3, "v"), batchOpts{})
		info := mustAppend(t, l, b, 0)
		batches = append(batches, withOffsetEpoch(b, info.BaseOffset, 0))
	}
	end := l.LogEndOffset()
	bi := 0
	for off := int64(0); off < end; off++ {
		for {
			h := parseHeader(batches[bi])
			if h.lastOffset() >= off {
				break
			}
			bi++
		}
		got := readBytes(t, l, off, int32(len(batches[bi])), end, false)
		if !bytes.Equal(got, batches[bi]) {
			t.Fatalf("offset %d: wrong batch (base %d, want %d)", off, parseHeader(got).baseOffset, parseHeader(batches[bi]).baseOffset)
		}
	}
}

func TestStorageFileSliceWriteToTCP(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), nil)
	fiveBatches(t, l)
	want := readBytes(t, l, 3, 1<<20, 15, false)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- nil
			return
		}
		b, _ := io.ReadAll(c)
		c.Close()
		received <- b
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Read(3, 1<<20, 15, false)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.WriteTo(conn)
	s.Close()
	conn.Close()
	if err != nil || n != int64(len(want)) {
		t.Fatalf("WriteTo = %d, %v; want %d", n, err, len(want))
	}
	if got := <-received; !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes, want %d identical", len(got), len(want))
	}
}

// threeSegments is a log in dir of three segments, each one batch b of two
// records (offsets 0-1, 2-3, 4-5).
func threeSegments(t *testing.T) (l *Log, dir string, b []byte) {
	t.Helper()
	dir = t.TempDir()
	cfg := testConfig()
	b = makeBatch(t, vals(2, "v"), batchOpts{})
	cfg.SegmentBytes = int64(len(b))
	l = openLog(t, dir, cfg, nil)
	for range 3 {
		mustAppend(t, l, b, 0)
	}
	return l, dir, b
}

func TestStorageReadSurvivesSegmentDeletion(t *testing.T) {
	l, dir, b := threeSegments(t)
	s, err := l.Read(0, 1<<20, 6, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := l.DeleteRecordsBefore(4); err != nil {
		t.Fatal(err)
	}
	if exists(offsetName(dir, 0, logSuffix)) {
		t.Fatal("segment 0 still on disk")
	}
	got, err := s.ReadAll(nil)
	if err != nil || !bytes.Equal(got, withOffsetEpoch(b, 0, 0)) {
		t.Fatalf("read of a deleted segment through its slice: %v", err)
	}
	if _, err := l.Read(1, 100, 6, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read below the new log start: %v", err)
	}
}

func TestStorageConcurrentReadAppendMaintain(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	cfg.RetentionBytes = 16384
	cfg.RetentionMs = -1 // the test batches are from 1970
	l := openLog(t, t.TempDir(), cfg, nil)
	b := makeBatch(t, vals(5, "concurrent"), batchOpts{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start, end := l.LogStartOffset(), l.LogEndOffset()
				s, err := l.Read(start+(end-start)/2, 2048, end, true)
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention moved the log start meanwhile
				}
				if err != nil {
					t.Error(err)
					return
				}
				data, err := s.ReadAll(nil)
				s.Close()
				if err != nil {
					t.Error(err)
					return
				}
				for len(data) > 0 {
					h, err := checkStored(data)
					if err != nil {
						t.Errorf("read returned a bad batch: %v", err)
						return
					}
					data = data[h.size():]
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if err := l.Maintain(); err != nil {
				t.Error(err)
			}
		}
	}()
	for i := range 2000 {
		info := mustAppend(t, l, b, 0)
		if info.BaseOffset != int64(5*i) {
			t.Fatalf("append %d at %d", i, info.BaseOffset)
		}
	}
	close(stop)
	wg.Wait()
	if err := l.Maintain(); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() == 0 || l.Size() > cfg.RetentionBytes+cfg.SegmentBytes {
		t.Fatalf("retention did not run: start %d size %d", l.LogStartOffset(), l.Size())
	}
	if got := offsetsOf(readAll(t, l)); got[len(got)-1] != 9999 || !slices.IsSorted(got) {
		t.Fatalf("offsets end at %d", got[len(got)-1])
	}
}

// TestStorageReadReusesDescriptors: a closed slice's descriptor serves the
// next read of its segment; slices held at once have descriptors of their
// own; a descriptor of a removed segment is closed, not kept.
func TestStorageReadReusesDescriptors(t *testing.T) {
	l, _, b := threeSegments(t)
	read := func(offset int64) *FileSlice {
		t.Helper()
		s, err := l.Read(offset, 1<<20, 6, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.ReadAll(nil)
		if err != nil || !bytes.Equal(got, withOffsetEpoch(b, offset, 0)) {
			t.Fatalf("read at %d: %v", offset, err)
		}
		return s
	}
	closed := func(f *os.File) bool { return f.Fd() == ^uintptr(0) }

	s := read(2)
	first := s.f
	s.Close()
	if closed(first) {
		t.Fatal("a closed slice closed its descriptor instead of keeping it")
	}
	held := []*FileSlice{read(2), read(2), read(2)}
	if held[0].f != first {
		t.Fatal("the next read opened the segment again")
	}
	if held[1].f == held[0].f || held[2].f == held[1].f || held[2].f == held[0].f {
		t.Fatal("slices held at once share a descriptor")
	}
	files := []*os.File{held[0].f, held[1].f, held[2].f}
	for _, h := range held {
		h.Close()
	}
	if n := slices.IndexFunc(files, closed); n != 2 {
		t.Fatalf("descriptor %d of 3 closed, want the last returned (the pool keeps two)", n)
	}
	if n := len(l.segs[1].rd.idle); n != maxIdleDescriptors {
		t.Fatalf("%d idle descriptors kept, want %d", n, maxIdleDescriptors)
	}

	// A slice of segment 0 outlives its deletion; its descriptor is then
	// closed with it.
	old := read(0)
	f := old.f
	if _, err := l.DeleteRecordsBefore(4); err != nil {
		t.Fatal(err)
	}
	if got, err := old.ReadAll(nil); err != nil || !bytes.Equal(got, withOffsetEpoch(b, 0, 0)) {
		t.Fatalf("read of a deleted segment through its slice: %v", err)
	}
	old.Close()
	if !closed(f) {
		t.Fatal("the descriptor of a deleted segment was kept")
	}
}

// TestStorageDescriptorsGenerations: a descriptor handed out before its
// file was replaced is closed on return, and idle ones are closed at once.
func TestStorageDescriptorsGenerations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var d descriptors
	a, genA, err := d.get(path)
	if err != nil {
		t.Fatal(err)
	}
	idle, genIdle, _ := d.get(path)
	d.put(idle, genIdle)
	if err := d.replaced(false); err != nil {
		t.Fatal(err)
	}
	if idle.Fd() != ^uintptr(0) || len(d.idle) != 0 {
		t.Fatal("an idle descriptor of the replaced file was kept")
	}
	d.put(a, genA)
	if a.Fd() != ^uintptr(0) || len(d.idle) != 0 {
		t.Fatal("a descriptor of the replaced file went back to the pool")
	}
	c, genC, _ := d.get(path)
	d.put(c, genC)
	if len(d.idle) != 1 {
		t.Fatalf("%d idle after returning a current descriptor, want 1", len(d.idle))
	}
	d.replaced(true)
	e, genE, _ := d.get(path)
	d.put(e, genE)
	if e.Fd() != ^uintptr(0) || len(d.idle) != 0 {
		t.Fatal("a closed segment kept a descriptor")
	}
}
