package storage

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// benchBatch is a 16 KiB batch of 1 KiB records. The values are half
// random, half repeated, so a codec compresses them about 2:1 as it would
// typical JSON, rather than to nothing.
func benchBatch(b *testing.B, o batchOpts) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	recs := make([]rec, 16)
	for i := range recs {
		value := make([]byte, 1024)
		for j := 0; j < 512; j += 8 {
			binary.LittleEndian.PutUint64(value[j:], rng.Uint64())
		}
		copy(value[512:], bytes.Repeat([]byte("kdr-"), 128))
		recs[i] = rec{key: []byte{byte(i)}, value: value}
	}
	return makeBatch(b, recs, o)
}

func benchConfig() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 1<<31 - 1
	cfg.RetentionMs = -1
	return cfg
}

// BenchmarkAppend measures the leader append path into the page cache.
// Every 256 MiB the log is emptied with the timer stopped, so the disk does
// not fill; only the -roll case has rolls (and their fsyncs) inside the
// measurement.
func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct {
		name         string
		opts         batchOpts
		segmentBytes int64
	}{
		{"plain", batchOpts{}, 0},
		{"idempotent", batchOpts{idempotent: true, pid: 1}, 0},
		{"zstd", batchOpts{codec: codecPtr(kgo.ZstdCompression())}, 0},
		// With rolls: each one fsyncs the 64 MiB segment it closes.
		{"plain-roll-64MiB", batchOpts{}, 64 << 20},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := benchConfig()
			if c.segmentBytes > 0 {
				cfg.SegmentBytes = c.segmentBytes
			}
			l, err := Open(b.TempDir(), cfg, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			// Idempotent batches need consecutive sequences: 1024
			// batches are stamped per producer epoch, outside the
			// timer.
			batches := make([][]byte, 1)
			if c.opts.idempotent {
				batches = make([][]byte, 1024)
			}
			epoch := int16(-1)
			stamp := func() {
				epoch++
				for i := range batches {
					o := c.opts
					o.epoch, o.seq = epoch, int32(16*i)
					batches[i] = benchBatch(b, o)
				}
			}
			stamp()
			b.SetBytes(int64(len(batches[0])))
			b.ReportAllocs()
			var written int64
			b.ResetTimer()
			next := 0
			for range b.N {
				if next == len(batches) {
					next = 0
					if c.opts.idempotent {
						b.StopTimer()
						stamp()
						b.StartTimer()
					}
				}
				batch := batches[next]
				next++
				if _, err := l.AppendAsLeader(batch, 1); err != nil {
					b.Fatal(err)
				}
				if written += int64(len(batch)); written > 256<<20 {
					b.StopTimer()
					// This also forgets the producer: start
					// its sequences over.
					if err := l.TruncateFullyAndStartAt(l.LogEndOffset()); err != nil {
						b.Fatal(err)
					}
					written, next = 0, len(batches)
					b.StartTimer()
				}
			}
		})
	}
}

// benchLog is a log holding n copies of batch, closed when b ends.
func benchLog(b *testing.B, batch []byte, n int) *Log {
	l, err := Open(b.TempDir(), benchConfig(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	for range n {
		if _, err := l.AppendAsLeader(batch, 1); err != nil {
			b.Fatal(err)
		}
	}
	return l
}

// BenchmarkRead measures a fetch: Read 1 MiB from a random offset and copy
// it out with ReadAll, from a 128 MiB log in the page cache.
func BenchmarkRead(b *testing.B) {
	batch := benchBatch(b, batchOpts{})
	l := benchLog(b, batch, (128<<20)/len(batch))
	leo := l.LogEndOffset()
	buf := make([]byte, 0, 2<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s, err := l.Read(rng.Int64N(leo), 1<<20, leo, true)
		if err != nil {
			b.Fatal(err)
		}
		if buf, err = s.ReadAll(buf[:0]); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkTailRead measures what a fetch at the log's tail costs before
// any byte is sent: finding the range of whole 16 KiB batches within 1 MiB
// from an offset among the last 64 batches, below a high watermark 4
// batches short of the log end. "tail" is the in-memory answer a read now
// gets, "file" the offset index and batch headers read back with pread,
// which every read used before and reads older than the tail still use.
func BenchmarkTailRead(b *testing.B) {
	batch := benchBatch(b, batchOpts{})
	l := benchLog(b, batch, 1024)
	per := int64(parseHeader(batch).lastDelta) + 1
	leo := l.LogEndOffset()
	hw := leo - 4*per
	offsets := make([]int64, 256)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range offsets {
		offsets[i] = leo - 64*per + rng.Int64N(60*per)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	s := l.active()
	b.Run("tail", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			off := offsets[i%len(offsets)]
			if !s.tail.covers(off) {
				b.Fatal("the tail does not cover", off)
			}
			if _, _, found, err := (batches{s: s, inTail: true}).span(off, 1<<20, hw, true); err != nil || !found {
				b.Fatal(found, err)
			}
		}
	})
	b.Run("file", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		b.ReportAllocs()
		for i := range b.N {
			r := newFileReader(s.f, s.size, 4096, buf)
			if _, _, found, err := (batches{s: s, r: r}).span(offsets[i%len(offsets)], 1<<20, hw, true); err != nil || !found {
				b.Fatal(found, err)
			}
			buf = r.buf[:0]
		}
	})
}

// BenchmarkBaselineWrite is BenchmarkAppend's floor: the same 16 KiB batch
// written with plain write(2) calls to one file in the page cache, with the
// same 256 MiB truncation cadence. `make bench` prints Append/plain as a
// ratio of it.
func BenchmarkBaselineWrite(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	batch := benchBatch(b, batchOpts{})
	b.SetBytes(int64(len(batch)))
	var written int64
	b.ResetTimer()
	for range b.N {
		if _, err := f.Write(batch); err != nil {
			b.Fatal(err)
		}
		if written += int64(len(batch)); written > 256<<20 {
			b.StopTimer()
			if err := f.Truncate(0); err != nil {
				b.Fatal(err)
			}
			if _, err := f.Seek(0, 0); err != nil {
				b.Fatal(err)
			}
			written = 0
			b.StartTimer()
		}
	}
}

// BenchmarkBaselineRead is BenchmarkRead's floor: 1 MiB pread(2) at a
// random position of a 128 MiB file in the page cache, into a reused buffer.
func BenchmarkBaselineRead(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	batch := benchBatch(b, batchOpts{})
	var size int64
	for range (128 << 20) / len(batch) {
		if _, err := f.Write(batch); err != nil {
			b.Fatal(err)
		}
		size += int64(len(batch))
	}
	buf := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for range b.N {
		if _, err := f.ReadAt(buf, rng.Int64N(size-1<<20)); err != nil {
			b.Fatal(err)
		}
	}
}
