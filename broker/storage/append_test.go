package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// withOffsetEpoch is b with the two fields the broker patches set.
func withOffsetEpoch(b []byte, offset int64, epoch int32) []byte {
	out := slices.Clone(b)
	binary.BigEndian.PutUint64(out[0:], uint64(offset))
	binary.BigEndian.PutUint32(out[12:], uint32(epoch))
	return out
}

func TestStorageAppendReadRoundTripByteExact(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), nil)
	b1 := makeBatch(t, vals(3, "a"), batchOpts{})
	b2 := makeBatch(t, vals(5, "b"), batchOpts{codec: codecPtr(kgo.GzipCompression())})
	sent := slices.Clone(b1)

	info := mustAppend(t, l, b1, 7)
	if info.BaseOffset != 0 || info.LastOffset != 2 || info.RecordCount != 3 || info.LogAppendTime != -1 || info.Duplicate {
		t.Fatalf("first append: %+v", info)
	}
	if !bytes.Equal(b1, sent) {
		t.Fatal("AppendAsLeader modified the caller's buffer")
	}
	info = mustAppend(t, l, b2, 7)
	if info.BaseOffset != 3 || info.LastOffset != 7 {
		t.Fatalf("second append: %+v", info)
	}
	if got := l.LogEndOffset(); got != 8 {
		t.Fatalf("LEO = %d, want 8", got)
	}
	want := append(withOffsetEpoch(b1, 0, 7), withOffsetEpoch(b2, 3, 7)...)
	if got := readBytes(t, l, 0, 1<<20, 8, false); !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, want %d identical bytes", len(got), len(want))
	}
	// A read from inside the second batch starts at that batch.
	if got := readBytes(t, l, 5, 1<<20, 8, false); !bytes.Equal(got, withOffsetEpoch(b2, 3, 7)) {
		t.Fatal("read at offset 5 did not return exactly the second batch")
	}
	recs := readAll(t, l)
	if len(recs) != 8 || recs[0].value != "a-0" || recs[7].value != "b-4" || recs[7].offset != 7 {
		t.Fatalf("decoded %v", recs)
	}
}

func TestStorageAppendMultipleBatchesInOneCall(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), nil)
	mustAppend(t, l, makeBatch(t, vals(2, "x"), batchOpts{}), 1)
	b1 := makeBatch(t, vals(3, "a"), batchOpts{})
	b2 := makeBatch(t, vals(4, "b"), batchOpts{codec: codecPtr(kgo.Lz4Compression())})
	b3 := makeBatch(t, vals(1, "c"), batchOpts{})
	info := mustAppend(t, l, slices.Concat(b1, b2, b3), 2)
	if info.BaseOffset != 2 || info.LastOffset != 9 || info.RecordCount != 8 {
		t.Fatalf("append: %+v", info)
	}
	want := slices.Concat(withOffsetEpoch(b1, 2, 2), withOffsetEpoch(b2, 5, 2), withOffsetEpoch(b3, 9, 2))
	if got := readBytes(t, l, 2, 1<<20, 10, false); !bytes.Equal(got, want) {
		t.Fatal("multi-batch append not stored byte-exact")
	}
	if got := offsetsOf(readAll(t, l)); !slices.Equal(got, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("offsets %v", got)
	}

	// One bad batch rejects the whole call.
	bad := makeBatch(t, vals(2, "bad"), batchOpts{})
	bad[len(bad)-1] ^= 0xff
	_, err := l.AppendAsLeader(slices.Concat(makeBatch(t, vals(2, "ok"), batchOpts{}), bad), 2)
	if !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("err = %v, want ErrCorruptMessage", err)
	}
	if got := l.LogEndOffset(); got != 10 {
		t.Fatalf("LEO after rejected call = %d, want 10", got)
	}
}

func TestStorageAppendRejectsMalformed(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), nil)
	good := makeBatch(t, vals(3, "v"), batchOpts{})
	mut := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	recrc := func(b []byte) []byte { setCRC(b); return b }
	cases := []struct {
		name  string
		batch []byte
		want  error
		code  *kerr.Error
	}{
		{"empty", nil, ErrCorruptMessage, kerr.CorruptMessage},
		{"short header", good[:40], ErrCorruptMessage, kerr.CorruptMessage},
		{"truncated", good[:len(good)-1], ErrCorruptMessage, kerr.CorruptMessage},
		{"trailing bytes", append(slices.Clone(good), 1, 2, 3), ErrCorruptMessage, kerr.CorruptMessage},
		{"crc", mut(func(b []byte) []byte { b[30] ^= 1; return b }), ErrCorruptMessage, kerr.CorruptMessage},
		{"magic 1", mut(func(b []byte) []byte { b[16] = 1; return b }), ErrCorruptMessage, kerr.CorruptMessage},
		{"negative count", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], 0xffffffff); return recrc(b) }), ErrCorruptMessage, kerr.CorruptMessage},
		{"delta mismatch", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[23:], 5); return recrc(b) }), ErrCorruptMessage, kerr.CorruptMessage},
		{"huge claimed count", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[23:], 1<<30-1)
			binary.BigEndian.PutUint32(b[57:], 1<<30)
			return recrc(b)
		}), ErrCorruptMessage, kerr.CorruptMessage},
		{"codec 6", mut(func(b []byte) []byte { b[22] |= 6; return recrc(b) }), ErrCorruptMessage, kerr.CorruptMessage},
		{"control batch", mut(func(b []byte) []byte { b[22] |= attrControl; return recrc(b) }), ErrInvalidRecord, kerr.InvalidRecord},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := l.AppendAsLeader(c.batch, 0)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			var ke *kerr.Error
			if !errors.As(err, &ke) || ke != c.code || KafkaError(err) != c.code {
				t.Fatalf("kerr = %v, want %v", ke, c.code)
			}
		})
	}
	if l.LogEndOffset() != 0 || l.Size() != 0 {
		t.Fatalf("rejected batches changed the log: LEO %d size %d", l.LogEndOffset(), l.Size())
	}
}

func TestStorageAppendMessageTooLarge(t *testing.T) {
	cfg := testConfig()
	b := makeBatch(t, vals(10, "value"), batchOpts{})
	cfg.MaxMessageBytes = int32(len(b) - 1)
	l := openLog(t, t.TempDir(), cfg, nil)
	_, err := l.AppendAsLeader(b, 0)
	if !errors.Is(err, ErrMessageTooLarge) || KafkaError(err) != kerr.MessageTooLarge {
		t.Fatalf("err = %v", err)
	}
	cfg.MaxMessageBytes = int32(len(b))
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, b, 0)
}

func TestStorageAppendLogAppendTime(t *testing.T) {
	cfg := testConfig()
	cfg.TimestampType = "LogAppendTime"
	clk := newClock(1_700_000_000_000)
	l := openLog(t, t.TempDir(), cfg, clk.Now)
	b := makeBatch(t, []rec{{value: []byte("a"), ts: 5}, {value: []byte("b"), ts: 9}}, batchOpts{baseTs: 5})
	info := mustAppend(t, l, b, 0)
	if info.LogAppendTime != 1_700_000_000_000 {
		t.Fatalf("LogAppendTime = %d", info.LogAppendTime)
	}
	stored := readBytes(t, l, 0, 1<<20, 2, false)
	if _, err := checkStored(stored); err != nil {
		t.Fatalf("stored batch fails its CRC: %v", err)
	}
	h := parseHeader(stored)
	if h.maxTimestamp != 1_700_000_000_000 || !h.isLogAppendTime() || h.baseTimestamp != 5 {
		t.Fatalf("header %+v", h)
	}
	for _, r := range readAll(t, l) {
		if r.ts != 1_700_000_000_000 {
			t.Fatalf("record %v does not carry the append time", r)
		}
	}
	// Only maxTimestamp, attributes and the CRC differ from what was sent.
	want := withOffsetEpoch(b, 0, 0)
	copy(want[35:43], stored[35:43])
	copy(want[21:23], stored[21:23])
	copy(want[17:21], stored[17:21])
	if !bytes.Equal(stored, want) {
		t.Fatal("LogAppendTime changed more than maxTimestamp, attributes and CRC")
	}
}

func TestStorageAppendCompactedTopicNeedsKeys(t *testing.T) {
	cfg := testConfig()
	cfg.CleanupPolicy = "compact"
	l := openLog(t, t.TempDir(), cfg, nil)
	for _, codec := range []*kgo.CompressionCodec{nil, codecPtr(kgo.GzipCompression()), codecPtr(kgo.ZstdCompression())} {
		b := makeBatch(t, []rec{kv("k", "v"), {value: []byte("no key")}}, batchOpts{codec: codec})
		if _, err := l.AppendAsLeader(b, 0); !errors.Is(err, ErrInvalidRecord) || KafkaError(err) != kerr.InvalidRecord {
			t.Fatalf("codec %v: err = %v, want ErrInvalidRecord", codec, err)
		}
		mustAppend(t, l, makeBatch(t, []rec{kv("k", "v"), kv("k2", "")}, batchOpts{codec: codec}), 0)
	}
	if l.LogEndOffset() != 6 {
		t.Fatalf("LEO = %d, want 6", l.LogEndOffset())
	}
}

func TestStorageSegmentRollBySize(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	b := makeBatch(t, vals(4, "r"), batchOpts{})
	cfg.SegmentBytes = int64(2*len(b) + 10) // two batches per segment
	l := openLog(t, dir, cfg, nil)
	for i := range 7 {
		info := mustAppend(t, l, b, 0)
		if info.BaseOffset != int64(4*i) {
			t.Fatalf("append %d got base %d", i, info.BaseOffset)
		}
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, []int64{0, 8, 16, 24}) {
		t.Fatalf("segments %v, want [0 8 16 24]", got)
	}
	if !exists(offsetName(dir, 8, ".log")) || !exists(offsetName(dir, 0, ".index")) || !exists(offsetName(dir, 0, ".timeindex")) {
		t.Fatalf("missing Kafka-named files: %v", dirFiles(t, dir))
	}
	if got := offsetsOf(readAll(t, l)); len(got) != 28 || got[27] != 27 {
		t.Fatalf("offsets %v", got)
	}
	// A read returns one segment's batches only.
	if got := readBytes(t, l, 0, 1<<20, 28, false); len(got) != 2*len(b) {
		t.Fatalf("read spanning segments returned %d bytes, want %d", len(got), 2*len(b))
	}
	if got := readBytes(t, l, 9, 1<<20, 28, false); parseHeader(got).baseOffset != 8 || len(got) != 2*len(b) {
		t.Fatalf("read at 9: base %d, %d bytes", parseHeader(got).baseOffset, len(got))
	}
	if l.Size() != int64(7*len(b)) {
		t.Fatalf("Size = %d, want %d", l.Size(), 7*len(b))
	}
}

func TestStorageSegmentRollBySegmentMs(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentMs = 1000
	clk := newClock(1_000_000)
	l := openLog(t, dir, cfg, clk.Now)
	b := makeBatch(t, vals(1, "r"), batchOpts{})
	mustAppend(t, l, b, 0)
	clk.advance(500 * time.Millisecond)
	mustAppend(t, l, b, 0)
	clk.advance(501 * time.Millisecond) // 1001 ms after the first append
	mustAppend(t, l, b, 0)              // rolls first
	if got := segmentFiles(t, dir); !slices.Equal(got, []int64{0, 2}) {
		t.Fatalf("segments %v, want [0 2]", got)
	}
	clk.advance(1001 * time.Millisecond)
	if err := l.Maintain(); err != nil { // rolls an idle segment
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, []int64{0, 2, 3}) {
		t.Fatalf("segments %v, want [0 2 3]", got)
	}
	if err := l.Maintain(); err != nil { // an empty active segment never rolls
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); len(got) != 3 {
		t.Fatalf("segments %v", got)
	}
}

func TestStorageConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	var zero Config
	if err := zero.Validate(); err == nil {
		t.Fatal("zero Config validated")
	}
	c := DefaultConfig()
	c.SegmentBytes = 3
	err := c.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "segment.bytes" || ce.Value != "3" || KafkaError(err) != kerr.InvalidConfig {
		t.Fatalf("err = %v", err)
	}
	c = DefaultConfig()
	c.CleanupPolicy = "forever"
	if err := c.Validate(); !errors.As(err, &ce) || ce.Key != "cleanup.policy" || ce.Value != "forever" {
		t.Fatalf("err = %v", err)
	}
	if _, err := Open(t.TempDir(), c, Options{}); err == nil {
		t.Fatal("Open accepted an invalid config")
	}
}
