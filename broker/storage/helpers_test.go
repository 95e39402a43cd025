package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kdr-io/kdr/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rec is a test record. A nil value is a tombstone; ts 0 means the batch's
// base timestamp.
type rec struct {
	key, value []byte
	ts         int64
}

// batchOpts are the header fields a test batch can vary. The zero value is a
// non-idempotent, uncompressed batch with base timestamp 1000.
type batchOpts struct {
	baseTs     int64
	idempotent bool
	pid        int64
	epoch      int16
	seq        int32
	codec      *kgo.CompressionCodec
}

// makeBatch builds a valid magic-2 batch independently of the package's own
// code: kmsg encodes it, hash/crc32 checksums it.
func makeBatch(t testing.TB, recs []rec, o batchOpts) []byte {
	t.Helper()
	if o.baseTs == 0 {
		o.baseTs = 1000
	}
	var body []byte
	maxTs := o.baseTs
	for i, r := range recs {
		ts := r.ts
		if ts == 0 {
			ts = o.baseTs
		}
		maxTs = max(maxTs, ts)
		kr := kmsg.Record{TimestampDelta64: ts - o.baseTs, OffsetDelta: int32(i), Key: r.key, Value: r.value}
		enc := kr.AppendTo(nil)
		// AppendTo writes the Length field as given (0, one byte).
		body = kbin.AppendVarint(body, int32(len(enc)-1))
		body = append(body, enc[1:]...)
	}
	var attrs int16
	if o.codec != nil {
		comp, err := kgo.DefaultCompressor(*o.codec)
		if err != nil {
			t.Fatal(err)
		}
		out, codec := comp.Compress(new(bytes.Buffer), body)
		body = append([]byte(nil), out...)
		attrs |= int16(codec)
	}
	pid, epoch, seq := int64(-1), int16(-1), int32(-1)
	if o.idempotent {
		pid, epoch, seq = o.pid, o.epoch, o.seq
	}
	b := kmsg.RecordBatch{
		FirstOffset: 0, Magic: 2, Attributes: attrs, LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp: o.baseTs, MaxTimestamp: maxTs, ProducerID: pid, ProducerEpoch: epoch,
		FirstSequence: seq, NumRecords: int32(len(recs)), Records: body,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// vals makes n records with values prefix-0, prefix-1, … and no key.
func vals(n int, prefix string) []rec {
	out := make([]rec, n)
	for i := range out {
		out[i] = rec{value: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	return out
}

func kv(key, value string) rec {
	r := rec{key: []byte(key)}
	if value != "" {
		r.value = []byte(value)
	}
	return r
}

func codecPtr(c kgo.CompressionCodec) *kgo.CompressionCodec { return &c }

// testConfig is DefaultConfig with index entries every 128 bytes, so small
// tests exercise the index.
func testConfig() Config {
	c := DefaultConfig()
	c.IndexIntervalBytes = 128
	return c
}

// clock is an injectable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(ms int64) *clock { return &clock{t: time.UnixMilli(ms)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openLog(t testing.TB, dir string, cfg Config, now func() time.Time) *Log {
	t.Helper()
	return openLogWith(t, dir, cfg, Options{Now: now})
}

// openLogWith is openLog with the given Options.
func openLogWith(t testing.TB, dir string, cfg Config, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, cfg, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// crash drops the log as kill -9 would: descriptors closed, nothing
// flushed or written, no clean-shutdown marker. The page cache survives a
// process crash, so the bytes written so far stay.
func (l *Log) crash() {
	// After the background flush of the rolls so far: tests of a crash
	// before it lower the recovery point on disk, as such a crash leaves it.
	l.flushing.Wait()
	l.cleanMu.Lock()
	l.writeMu.Lock()
	l.mu.Lock()
	defer l.cleanMu.Unlock()
	defer l.writeMu.Unlock()
	defer l.mu.Unlock()
	for _, s := range l.segs {
		s.f.Close()
	}
	l.closed = true
}

func mustAppend(t testing.TB, l *Log, batch []byte, epoch int32) AppendInfo {
	t.Helper()
	info, err := l.AppendAsLeader(batch, epoch)
	if err != nil {
		t.Fatalf("AppendAsLeader: %v", err)
	}
	return info
}

// readBytes returns what Read returns, as bytes.
func readBytes(t testing.TB, l *Log, offset int64, maxBytes int32, maxOffset int64, minOne bool) []byte {
	t.Helper()
	s, err := l.Read(offset, maxBytes, maxOffset, minOne)
	if err != nil {
		t.Fatalf("Read(%d): %v", offset, err)
	}
	defer s.Close()
	b, err := s.ReadAll(nil)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if len(b) != s.Size() {
		t.Fatalf("ReadAll returned %d bytes, Size says %d", len(b), s.Size())
	}
	return b
}

// got is a record as a consumer decodes it.
type got struct {
	offset int64
	key    string
	value  string // "<nil>" for a tombstone
	ts     int64
}

func (g got) String() string { return fmt.Sprintf("%d:%s=%s@%d", g.offset, g.key, g.value, g.ts) }

// readAll reads the whole log through Read and decodes it with
// internal/recordbatch (kmsg-based), not with this package's parser.
func readAll(t testing.TB, l *Log) []got {
	t.Helper()
	var out []got
	end := l.LogEndOffset()
	for off := l.LogStartOffset(); off < end; {
		b := readBytes(t, l, off, 1<<20, end, true)
		if len(b) == 0 {
			break
		}
		err := recordbatch.Walk(b, func(d recordbatch.Decoded) error {
			if d.Offset >= off {
				v := string(d.Value)
				if d.Value == nil {
					v = "<nil>"
				}
				out = append(out, got{offset: d.Offset, key: string(d.Key), value: v, ts: d.Timestamp})
			}
			return nil
		})
		if err != nil {
			t.Fatalf("decoding read at %d: %v", off, err)
		}
		off = recordbatch.NextOffset(b)
	}
	return out
}

func offsetsOf(gs []got) []int64 {
	out := make([]int64, len(gs))
	for i, g := range gs {
		out[i] = g.offset
	}
	return out
}

// segmentFiles lists the segment base offsets on disk.
func segmentFiles(t testing.TB, dir string) []int64 {
	t.Helper()
	offs, err := listOffsets(dir, logSuffix)
	if err != nil {
		t.Fatal(err)
	}
	return offs
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func lastSegmentPath(t testing.TB, dir string) string {
	t.Helper()
	offs := segmentFiles(t, dir)
	if len(offs) == 0 {
		t.Fatal("no segments")
	}
	return offsetName(dir, offs[len(offs)-1], logSuffix)
}

func dirFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"))
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}
