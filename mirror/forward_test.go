package mirror

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror/mm2"
)

var testZeros = newCRCZeros()

// encodeRecord encodes one record of a batch; kmsg leaves its length to the
// caller.
func encodeRecord(r kmsg.Record) []byte {
	r.Length = 0
	body := r.AppendTo(nil)[1:] // a zero length is one varint byte
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

// makeBatch builds a magic 2 batch at base holding recs (offset deltas
// 0..n-1 unless set), with the header fields derived from them; edit may
// change any header field before the length and CRC are computed.
func makeBatch(base int64, attrs int16, firstTS int64, recs []kmsg.Record, edit func(*kmsg.RecordBatch)) []byte {
	rb := kmsg.RecordBatch{
		FirstOffset: base, PartitionLeaderEpoch: 3, Magic: 2, Attributes: attrs,
		LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: firstTS, MaxTimestamp: firstTS,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(recs)),
	}
	for _, r := range recs {
		rb.MaxTimestamp = max(rb.MaxTimestamp, firstTS+r.TimestampDelta64)
		rb.Records = append(rb.Records, encodeRecord(r)...)
	}
	if edit != nil {
		edit(&rb)
	}
	rb.Length = int32(batchHeaderLen - batchLengthBase + len(rb.Records))
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[offBatchCRC:], crc32.Checksum(b[offBatchAttrs:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// plainRecords are n records with offset deltas 0..n-1 and timestamp
// deltas 0, 1, 2, ...
func plainRecords(n int) []kmsg.Record {
	out := make([]kmsg.Record, n)
	for i := range out {
		out[i] = kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: int64(i),
			Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))}
	}
	return out
}

// oldMessage is a magic 1 message (an old message set entry) at offset with
// value: offset, size, CRC, magic, attributes, timestamp, key, value. The
// CRC is left zero: only its header is read here.
func oldMessage(offset int64, value []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(4+1+1+8+4+4+len(value)))
	b = binary.BigEndian.AppendUint32(b, 0)
	b = append(b, 1, 0)
	b = binary.BigEndian.AppendUint64(b, 1_700_000_000_000)
	b = binary.BigEndian.AppendUint32(b, math.MaxUint32) // null key
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	return append(b, value...)
}

// decodeFetched decodes batches as a consumer of partition 4 of "t" does,
// from offset from, CRCs checked.
func decodeFetched(t *testing.T, data []byte, from int64) []*kgo.Record {
	t.Helper()
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.Partition, rp.HighWatermark, rp.LastStableOffset, rp.RecordBatches = 4, math.MaxInt64, math.MaxInt64, data
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: "t", Partition: 4, Offset: from}, &rp, kgo.DefaultDecompressor(), nil)
	if fp.Err != nil {
		t.Fatalf("decoding: %v", fp.Err)
	}
	return fp.Records
}

// oneView splits b, which must be exactly one whole batch.
func oneView(t *testing.T, b []byte) *batchView {
	t.Helper()
	views, rest, err := splitBatches(b)
	if err != nil || rest != len(b) || len(views) != 1 {
		t.Fatalf("splitBatches of one %d-byte batch: %d views, rest %d, %v", len(b), len(views), rest, err)
	}
	return &views[0]
}

func TestForwardBatchRewrite(t *testing.T) {
	t.Run("split", func(t *testing.T) {
		b1 := makeBatch(0, 0, 1_700_000_000_000, plainRecords(3), nil)
		b2 := makeBatch(3, attrLogAppendTime, 1_700_000_000_100, plainRecords(2), func(rb *kmsg.RecordBatch) {
			rb.MaxTimestamp = 1_700_000_009_999
		})
		b3 := makeBatch(5, 0, 1_700_000_000_200, plainRecords(1), func(rb *kmsg.RecordBatch) { rb.PartitionLeaderEpoch = 9 })
		b4 := makeBatch(6, 0, 1_700_000_000_300, plainRecords(4), nil)
		whole := slices.Concat(b1, b2, b3)
		want := []struct {
			data                 []byte
			base, last, first, m int64
			count, epoch         int32
			attrs                int16
		}{
			{b1, 0, 2, 1_700_000_000_000, 1_700_000_000_002, 3, 3, 0},
			{b2, 3, 4, 1_700_000_000_100, 1_700_000_009_999, 2, 3, attrLogAppendTime},
			{b3, 5, 5, 1_700_000_000_200, 1_700_000_000_200, 1, 9, 0},
		}
		for _, tail := range [][]byte{nil, b4[:len(b4)-1], b4[:batchHeaderLen], b4[:batchHeaderLen-1], b4[:12], b4[:1]} {
			in := slices.Concat(whole, tail)
			views, rest, err := splitBatches(in)
			if err != nil || rest != len(whole) || len(views) != len(want) {
				t.Fatalf("tail of %d bytes: %d views, rest %d, err %v; want %d views, rest %d", len(tail), len(views), rest, err, len(want), len(whole))
			}
			off := 0
			for i, w := range want {
				v := views[i]
				if !bytes.Equal(v.data, w.data) || &v.data[0] != &in[off] || cap(v.data) != len(v.data) {
					t.Fatalf("view %d: data is not bytes %d..%d of the input (or can grow into the next batch)", i, off, off+len(w.data))
				}
				if v.magic != 2 || v.base != w.base || v.last != w.last || v.count != w.count || v.epoch != w.epoch ||
					v.attrs != w.attrs || v.first != w.first || v.max != w.m {
					t.Fatalf("view %d: %+v", i, v)
				}
				if err := v.checkCRC(); err != nil {
					t.Fatalf("view %d: %v", i, err)
				}
				off += len(w.data)
			}
		}
		// The whole of b4 is a fourth batch.
		if views, rest, err := splitBatches(slices.Concat(whole, b4)); err != nil || len(views) != 4 || rest != len(whole)+len(b4) || views[3].base != 6 || views[3].last != 9 {
			t.Fatalf("four batches: %d views, rest %d, %v", len(views), rest, err)
		}
		if views, rest, err := splitBatches(nil); views != nil || rest != 0 || err != nil {
			t.Fatalf("no bytes: %v, %d, %v", views, rest, err)
		}

		// Lengths and deltas no batch can have: an error, and rest is where
		// the bad batch starts.
		for name, bad := range map[string][]byte{
			"length below a header": func() []byte {
				b := slices.Clone(b2)
				binary.BigEndian.PutUint32(b[offBatchLength:], batchHeaderLen-batchLengthBase-1)
				return b
			}(),
			"negative length": func() []byte {
				b := slices.Clone(b2)
				binary.BigEndian.PutUint32(b[offBatchLength:], math.MaxUint32)
				return b
			}(),
			"negative last offset delta": makeBatch(3, 0, 0, plainRecords(1), func(rb *kmsg.RecordBatch) { rb.LastOffsetDelta = -2 }),
			"negative count":             makeBatch(3, 0, 0, plainRecords(1), func(rb *kmsg.RecordBatch) { rb.NumRecords = -1 }),
		} {
			views, rest, err := splitBatches(slices.Concat(b1, bad))
			if err == nil || rest != len(b1) || len(views) != 1 || views[0].base != 0 {
				t.Errorf("%s: %d views, rest %d, err %v; want 1 view, rest %d, an error", name, len(views), rest, err, len(b1))
			}
		}

		// An old message format is returned with its magic, base offset and
		// bytes, for the decoder.
		old := oldMessage(7, bytes.Repeat([]byte("x"), 60))
		views, rest, err := splitBatches(slices.Concat(old, b1))
		if err != nil || rest != len(old)+len(b1) || len(views) != 2 || views[0].magic != 1 || views[0].base != 7 ||
			!bytes.Equal(views[0].data, old) || views[1].base != 0 {
			t.Fatalf("old format then a batch: %d views, rest %d, %v", len(views), rest, err)
		}
	})

	t.Run("short old message at the end", func(t *testing.T) {
		// A whole magic 0/1 message smaller than a v2 batch header (34 bytes
		// of overhead plus a small value) that ends the fetched bytes: it is
		// complete and must be returned, or the worker fetches it again and
		// again without copying it until newer records follow it.
		old := oldMessage(7, []byte("small"))
		views, rest, err := splitBatches(old)
		if err != nil || rest != len(old) || len(views) != 1 || views[0].magic != 1 || views[0].base != 7 {
			t.Errorf("a whole %d-byte magic 1 message: %d views, rest %d, err %v; want it as one view, rest %d", len(old), len(views), rest, err, len(old))
		}
	})

	t.Run("forwardable", func(t *testing.T) {
		const ts = 1_700_000_000_000
		compacted := []kmsg.Record{{OffsetDelta: 0, Key: []byte("a")}, {OffsetDelta: 2, Key: []byte("c")}}
		for _, c := range []struct {
			name  string
			batch []byte
			from  int64
			ok    bool
			why   string
		}{
			{"plain", makeBatch(100, 0, ts, plainRecords(3), nil), 100, true, ""},
			{"plain, from before it", makeBatch(100, 0, ts, plainRecords(3), nil), 50, true, ""},
			{"log append time", makeBatch(100, attrLogAppendTime, ts, plainRecords(3), nil), 100, true, ""},
			{"compressed", makeBatch(100, 4, ts, plainRecords(3), nil), 100, true, ""},
			{"old magic", oldMessage(100, bytes.Repeat([]byte("x"), 60)), 100, false, "old message format"},
			{"control", makeBatch(100, attrControl|attrTransactional, ts, plainRecords(1), nil), 100, false, "transactional"},
			{"transactional", makeBatch(100, attrTransactional, ts, plainRecords(3), nil), 100, false, "transactional"},
			{"partly copied", makeBatch(100, 0, ts, plainRecords(3), nil), 101, false, "partly copied"},
			{"partly copied, last record", makeBatch(100, 0, ts, plainRecords(3), nil), 102, false, "partly copied"},
			{"compacted", makeBatch(100, 0, ts, compacted, func(rb *kmsg.RecordBatch) { rb.LastOffsetDelta = 2 }), 100, false, "compacted"},
			{"compacted to one record", makeBatch(100, 0, ts, plainRecords(1), func(rb *kmsg.RecordBatch) { rb.LastOffsetDelta = 4 }), 100, false, "compacted"},
			{"compressed with log append time", makeBatch(100, attrLogAppendTime|2, ts, plainRecords(3), nil), 100, false, "compressed with log append time"},
		} {
			v := oneView(t, c.batch)
			if ok, why := v.forwardable(c.from); ok != c.ok || why != c.why {
				t.Errorf("%s: forwardable(%d) = %v, %q; want %v, %q", c.name, c.from, ok, why, c.ok, c.why)
			}
		}
	})

	t.Run("create time", func(t *testing.T) {
		const first, appended = int64(1_700_000_000_000), int64(1_700_000_999_999)
		recs := []kmsg.Record{
			{OffsetDelta: 0, TimestampDelta64: 0, Key: []byte("k0"), Value: []byte("v0"),
				Headers: []kmsg.Header{{Key: "h", Value: []byte("1")}}},
			{OffsetDelta: 1, TimestampDelta64: 5, Value: []byte("v1"), // null key
				Headers: []kmsg.Header{{Key: "a", Value: []byte("x")}, {Key: "b"}}},
			// A tombstone of 64 bytes, a length of two varint bytes, and a
			// delta of two: the rewrite shortens both.
			{OffsetDelta: 2, TimestampDelta64: 100, Key: []byte("k2" + strings.Repeat("-", 55))},
			// A delta of three varint bytes.
			{OffsetDelta: 3, TimestampDelta64: 300_000, Key: []byte("k3"), Value: bytes.Repeat([]byte("z"), 200),
				Headers: []kmsg.Header{{Key: "long", Value: bytes.Repeat([]byte("y"), 40)}}},
		}
		// As a broker with LogAppendTime stores it: the producer's
		// timestamps in the records, the append time as the max.
		batch := makeBatch(1000, attrLogAppendTime, first, recs, func(rb *kmsg.RecordBatch) {
			rb.MaxTimestamp, rb.PartitionLeaderEpoch = appended, 7
		})
		orig := slices.Clone(batch)
		want := decodeFetched(t, orig, 0) // the records alias what they are decoded from
		if len(want) != len(recs) {
			t.Fatalf("decoded %d records of the original, want %d", len(want), len(recs))
		}
		for i, r := range want {
			if r.Timestamp.UnixMilli() != appended || r.Attrs.TimestampType() != 1 || r.Offset != 1000+int64(i) {
				t.Fatalf("original record %d: timestamp %d (type %d), offset %d", i, r.Timestamp.UnixMilli(), r.Attrs.TimestampType(), r.Offset)
			}
		}

		v := oneView(t, batch)
		raw := v.toRaw()
		if &raw.data[0] != &batch[0] {
			t.Fatal("toRaw copied the batch rather than rewrite it in place")
		}
		if raw.base != 1000 || raw.last != 1003 || raw.count != 4 || raw.epoch != 7 || raw.timestamp != appended {
			t.Fatalf("rawBatch: base %d last %d count %d epoch %d timestamp %d", raw.base, raw.last, raw.count, raw.epoch, raw.timestamp)
		}
		// Records 2 and 3 lost one and two bytes of timestamp delta, and
		// record 2 one of length.
		if got, wantLen := len(raw.data), len(batch)-(1+1+2); got != wantLen {
			t.Errorf("rewritten batch is %d bytes, want %d", got, wantLen)
		}
		d := raw.data
		if attrs := int16(binary.BigEndian.Uint16(d[offBatchAttrs:])); attrs != 0 {
			t.Errorf("attributes %#x after the rewrite, want 0 (create time)", attrs)
		}
		if f, m := int64(binary.BigEndian.Uint64(d[offBatchFirstTS:])), int64(binary.BigEndian.Uint64(d[offBatchMaxTS:])); f != appended || m != appended {
			t.Errorf("first timestamp %d, max %d; want both %d", f, m, appended)
		}
		if l := int(binary.BigEndian.Uint32(d[offBatchLength:])); l != len(d)-batchLengthBase {
			t.Errorf("length field %d for a %d-byte batch", l, len(d))
		}
		if !bytes.Equal(d[:offBatchLength], batch[:offBatchLength]) || !bytes.Equal(d[offBatchLength+4:offBatchCRC], batch[offBatchLength+4:offBatchCRC]) ||
			!bytes.Equal(d[offBatchLastDelt:offBatchFirstTS], batch[offBatchLastDelt:offBatchFirstTS]) ||
			!bytes.Equal(d[offBatchProducer:batchHeaderLen], batch[offBatchProducer:batchHeaderLen]) {
			t.Error("the rewrite changed header fields other than length, attributes, timestamps and CRC")
		}

		// Stamped twice: the rewrite is checksummed whole, then the CRC
		// follows the producer fields (a retry under a new producer ID).
		raw.stamp(99, 1, 5, testZeros)
		if err := oneView(t, raw.data).checkCRC(); err != nil {
			t.Fatalf("stamped rewrite: %v", err)
		}
		raw.stamp(77, 2, 1234, testZeros)
		if err := oneView(t, raw.data).checkCRC(); err != nil {
			t.Fatalf("rewrite stamped again: %v", err)
		}
		got := decodeFetched(t, raw.data, 0)
		if len(got) != len(want) {
			t.Fatalf("decoded %d records of the rewrite, want %d", len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Timestamp.UnixMilli() != appended || g.Attrs.TimestampType() != 0 || g.Offset != w.Offset || g.LeaderEpoch != 7 ||
				g.ProducerID != 77 || g.ProducerEpoch != 2 || !sameRecord(g, w) {
				t.Errorf("record %d after the rewrite: %+v\nbefore: %+v", i, g, w)
			}
			if (g.Key == nil) != (w.Key == nil) || (g.Value == nil) != (w.Value == nil) {
				t.Errorf("record %d: null key or value not kept", i)
			}
		}

		// Records that do not parse leave the batch as it is, for the
		// target to judge.
		cut := slices.Clone(orig)
		binary.BigEndian.PutUint32(cut[offBatchLength:], uint32(len(cut)-5-batchLengthBase))
		cut = cut[:len(cut)-5]
		before := slices.Clone(cut)
		if out, ok := withCreateTime(cut, appended); ok || !bytes.Equal(out, before) {
			t.Error("withCreateTime rewrote a batch whose last record is cut")
		}
		junk := slices.Concat(orig[:batchHeaderLen], []byte{0x02, 0x00}) // a record of one byte: no room for a timestamp
		before = slices.Clone(junk)
		if out, ok := withCreateTime(junk, appended); ok || !bytes.Equal(out, before) {
			t.Error("withCreateTime rewrote a batch with a one-byte record")
		}
	})

	t.Run("stamp", func(t *testing.T) {
		batch := makeBatch(500, 0, 1_700_000_000_000, plainRecords(5), func(rb *kmsg.RecordBatch) { rb.PartitionLeaderEpoch = 11 })
		orig := slices.Clone(batch)
		v := oneView(t, batch)
		if err := v.checkCRC(); err != nil {
			t.Fatal(err)
		}
		raw := v.toRaw()
		const pid, epoch, seq = int64(0x0102030405060708), int16(0x0a0b), int32(0x11223344)
		raw.stamp(pid, epoch, seq, testZeros)
		d := raw.data
		if !bytes.Equal(d[offBatchProducer:offBatchCount], []byte{1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x11, 0x22, 0x33, 0x44}) {
			t.Errorf("producer fields: % x", d[offBatchProducer:offBatchCount])
		}
		if !bytes.Equal(d[:offBatchCRC], orig[:offBatchCRC]) || !bytes.Equal(d[offBatchAttrs:offBatchProducer], orig[offBatchAttrs:offBatchProducer]) ||
			!bytes.Equal(d[offBatchCount:], orig[offBatchCount:]) {
			t.Error("stamp changed bytes other than the producer fields and the CRC")
		}
		if err := oneView(t, d).checkCRC(); err != nil {
			t.Fatalf("stamped: %v", err)
		}
		if crc := binary.BigEndian.Uint32(d[offBatchCRC:]); crc == binary.BigEndian.Uint32(orig[offBatchCRC:]) {
			t.Error("stamp kept the old CRC")
		}
		recs := decodeFetched(t, d, 0)
		if len(recs) != 5 {
			t.Fatalf("decoded %d records, want 5", len(recs))
		}
		for i, r := range recs {
			if r.Offset != 500+int64(i) || r.ProducerID != pid || r.ProducerEpoch != epoch || r.LeaderEpoch != 11 ||
				string(r.Value) != fmt.Sprintf("v%d", i) || r.Timestamp.UnixMilli() != 1_700_000_000_000+int64(i) {
				t.Errorf("record %d: %+v", i, r)
			}
		}
		// One byte of a record changed after the stamp: the CRC says so.
		for _, at := range []int{len(d) - 1, batchHeaderLen, offBatchAttrs, offBatchSequence} {
			bad := slices.Clone(d)
			bad[at] ^= 0x40
			if err := oneView(t, bad).checkCRC(); !errors.Is(err, errBatchCRC) {
				t.Errorf("byte %d flipped: checkCRC = %v, want %v", at, err, errBatchCRC)
			}
		}
	})

	t.Run("sequences", func(t *testing.T) {
		for _, c := range []struct{ seq, n, want int32 }{
			{0, 1, 1}, {0, 5, 5}, {100, 20, 120},
			{math.MaxInt32 - 5, 5, math.MaxInt32},
			{math.MaxInt32, 1, 0},
			{math.MaxInt32 - 1, 3, 1},
			{math.MaxInt32 - 1, 2, 0},
			{math.MaxInt32, math.MaxInt32, math.MaxInt32 - 1},
		} {
			if got := nextSequence(c.seq, c.n); got != c.want {
				t.Errorf("nextSequence(%d, %d) = %d, want %d", c.seq, c.n, got, c.want)
			}
		}
	})
}

func FuzzSplitBatches(f *testing.F) {
	plain := makeBatch(0, 0, 1_700_000_000_000, plainRecords(3), nil)
	lat := makeBatch(3, attrLogAppendTime, 1_700_000_000_000, plainRecords(2), func(rb *kmsg.RecordBatch) { rb.MaxTimestamp = 1_700_000_009_999 })
	f.Add(plain)
	f.Add(lat)
	f.Add(slices.Concat(plain, lat, plain[:40]))
	f.Add(slices.Concat(lat, oldMessage(5, bytes.Repeat([]byte("x"), 50)), plain))
	f.Add(makeBatch(0, attrTransactional|4, 0, plainRecords(2), nil))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 70))
	f.Add(make([]byte, 61))
	f.Fuzz(func(t *testing.T, in []byte) {
		views, rest, err := splitBatches(in)
		if rest < 0 || rest > len(in) {
			t.Fatalf("rest %d of %d bytes", rest, len(in))
		}
		off := 0
		for i, v := range views {
			n := len(v.data)
			if n == 0 || off+n > len(in) || &v.data[0] != &in[off] || cap(v.data) != n {
				t.Fatalf("view %d is not bytes %d..%d of the input", i, off, off+n)
			}
			off += n
			if v.magic == 2 && (v.last < v.base || v.count < 0 || n < batchHeaderLen) {
				t.Fatalf("view %d: base %d, last %d, count %d, %d bytes", i, v.base, v.last, v.count, n)
			}
			v.forwardable(0)
			if v.magic != 2 || v.compressed() {
				continue
			}
			if b, ok := withHops(&v, "east", "west", false); ok && b.count > 0 {
				// Rewritten for identity naming: one whole batch of the
				// kept records, runs covering each once.
				b.stamp(1, 2, 3, testZeros)
				w := oneView(t, b.data)
				var n int32
				for _, r := range b.pairs(0) {
					if r.Upstream < v.base || r.Upstream > v.last {
						t.Fatalf("view %d: pair %+v outside %d..%d", i, r, v.base, v.last)
					}
				}
				for _, r := range b.runs {
					n += r.n
				}
				if w.count != b.count || b.runs != nil && n != b.count || b.count+b.loops != v.count {
					t.Fatalf("view %d (%d records) rewritten: %d kept, %d loops, runs %v, header count %d", i, v.count, b.count, b.loops, b.runs, w.count)
				}
			}
			out, rewritten := withCreateTime(slices.Clone(v.data), v.max)
			if rewritten {
				// Rewritten: one whole batch, the same offsets.
				w := oneView(t, out)
				if w.base != v.base || w.last != v.last || w.count != v.count || w.attrs != v.attrs&^attrLogAppendTime || w.first != v.max {
					t.Fatalf("view %d rewritten: %+v, from %+v", i, w, v)
				}
			}
			// Stamping keeps a valid CRC valid and an invalid one invalid;
			// a log append time batch (rewritten, or left as it is when its
			// records do not parse) is checksummed anew. The worker checks
			// the CRC before it rewrites.
			valid := v.checkCRC() == nil
			fetched := slices.Clone(v.data)
			raw := v.toRaw() // spends the view: it rewrites v.data
			raw.data = slices.Clone(raw.data)
			copy(v.data[:cap(v.data)], fetched)
			v.data = v.data[:len(fetched)]
			raw.stamp(1, 2, 3, testZeros)
			if err := oneView(t, raw.data).checkCRC(); (err == nil) != (valid || v.appendTime()) {
				t.Fatalf("view %d (CRC valid %v, log append time %v) stamped: %v", i, valid, v.appendTime(), err)
			}
		}
		if off != rest {
			t.Fatalf("views cover %d bytes, rest is %d", off, rest)
		}
		// Merging whatever uncompressed batches were found never panics,
		// and a merge it makes is one whole batch over their offsets.
		var bs []*rawBatch
		for i := range views {
			if v := &views[i]; v.magic == 2 && !v.compressed() && v.contiguous() {
				b := v.toRaw()
				b.data = slices.Clone(b.data)
				if len(bs) == 0 || b.base == bs[len(bs)-1].last+1 {
					bs = append(bs, b)
				}
			}
		}
		if len(bs) > 1 {
			if m := mergeBatches(bs); m != nil {
				m.stamp(1, 2, 3, testZeros)
				if w := oneView(t, m.data); w.base != bs[0].base || w.count != m.count || w.last-w.base != int64(m.count)-1 {
					t.Fatalf("merged %d batches into %+v", len(bs), w)
				}
			}
		}
		if err == nil && len(in)-rest >= batchHeaderLen {
			// Left out only if cut.
			if n := int64(int32(binary.BigEndian.Uint32(in[rest+offBatchLength:]))) + batchLengthBase; n <= int64(len(in)-rest) {
				t.Fatalf("a whole %d-byte batch at %d left out without an error", n, rest)
			}
		}
	})
}

// createTopicConfigs creates a topic on c with configs.
func createTopicConfigs(c *cluster, name string, partitions int32, configs map[string]*string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.adm.CreateTopic(ctx, partitions, 1, configs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		c.t.Fatalf("creating %s: %v", name, err)
	}
}

// batchProducer is a client of c producing one batch per partition and
// call of produceBatch, compressed with codec.
func batchProducer(t *testing.T, c *cluster, codec kgo.CompressionCodec) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(codec), kgo.ManualFlushing(), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceBatch produces recs in one request: one batch per partition.
func produceBatch(t *testing.T, cl *kgo.Client, recs []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// franz-go places records of a topic it has no metadata for one by
	// one once the metadata arrives, and a flush under way may send the
	// first of them alone. A record for a partition no topic has loads
	// the metadata first, and fails without being written.
	probed := map[string]bool{}
	for _, r := range recs {
		if probed[r.Topic] {
			continue
		}
		probed[r.Topic] = true
		probe := &kgo.Record{Topic: r.Topic, Partition: math.MaxInt32}
		if err := cl.ProduceSync(ctx, probe).FirstErr(); err == nil {
			t.Fatalf("a record for partition %d of %s was accepted", probe.Partition, r.Topic)
		}
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			wg.Done()
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// fwdRecords are n records for topic's partition p, numbered from i, with
// compressible values, headers, distinct create timestamps, a null key and
// a tombstone now and then.
func fwdRecords(topic string, p int32, from, n int) []*kgo.Record {
	var out []*kgo.Record
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("%s-%d-%d", topic, p, i)
		r := &kgo.Record{Topic: topic, Partition: p,
			Key:       []byte("key-" + id),
			Value:     []byte(strings.Repeat("value "+id+" ", 20)),
			Headers:   []kgo.RecordHeader{{Key: "id", Value: []byte(id)}, {Key: "none"}, {Key: "seq", Value: []byte(fmt.Sprint(i))}},
			Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)*13 + int64(p)),
		}
		if topic == "zipped" {
			// Incompressible too, so that a zstd batch of ten stays larger
			// than forwardCompressed and is forwarded, not decoded.
			rng := rand.New(rand.NewPCG(uint64(p), uint64(i)))
			pad := make([]byte, forwardCompressed/10+1024) // batches of ten
			for k := range pad {
				pad[k] = byte(rng.Uint32())
			}
			r.Value = append(r.Value, pad...)
		}
		switch i % 9 {
		case 4:
			r.Key = nil
		case 7:
			r.Value = nil
		}
		out = append(out, r)
	}
	return out
}

// TestForwardLogAppendTimeAndCompression mirrors a LogAppendTime topic
// (uncompressed batches, forwarded with their append time as create time,
// and snappy ones, copied record by record) and a CreateTime topic of zstd
// batches (forwarded compressed): the target's consumers see what the
// source's see, timestamps included.
func TestForwardLogAppendTimeAndCompression(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	createTopicConfigs(east, "lat", 2, map[string]*string{"message.timestamp.type": kadm.StringPtr("LogAppendTime")})
	east.createTopic("zipped", 2)
	plain := batchProducer(t, east, kgo.NoCompression())
	snappy := batchProducer(t, east, kgo.SnappyCompression())
	zstd := batchProducer(t, east, kgo.ZstdCompression())

	// lat/0: uncompressed batches with snappy ones between them; lat/1:
	// snappy only; zipped: zstd, 10 records a batch throughout.
	const per = 10
	type step struct {
		cl    *kgo.Client
		topic string
		part  int32
	}
	next := map[string]int{}
	run := func(steps ...step) {
		for _, s := range steps {
			k := fmt.Sprintf("%s/%d", s.topic, s.part)
			produceBatch(t, s.cl, fwdRecords(s.topic, s.part, next[k], per))
			next[k] += per
		}
	}
	before := []step{
		{plain, "lat", 0}, {plain, "lat", 0}, {snappy, "lat", 0}, {plain, "lat", 0},
		{snappy, "lat", 1}, {snappy, "lat", 1},
		{zstd, "zipped", 0}, {zstd, "zipped", 1}, {zstd, "zipped", 0},
	}
	after := []step{
		{snappy, "lat", 0}, {plain, "lat", 0}, {snappy, "lat", 1},
		{zstd, "zipped", 1}, {zstd, "zipped", 0}, {zstd, "zipped", 1},
	}
	run(before...)
	w := startWorker(t, testFlow(east, west, "east", "west"))
	run(after...)
	plainBatches := 0
	for _, s := range append(before, after...) {
		if s.cl == plain {
			plainBatches++
		}
	}

	counts := map[string]int64{}
	for k, n := range next {
		counts[k[:strings.IndexByte(k, '/')]] += int64(n)
	}
	waitCount(t, west, "east.lat", counts["lat"], 30*time.Second)
	waitCount(t, west, "east.zipped", counts["zipped"], 30*time.Second)

	srcs := map[string]map[int32][]*kgo.Record{"lat": east.readAll("lat"), "zipped": east.readAll("zipped")}
	dsts := map[string]map[int32][]*kgo.Record{"lat": west.readAll("east.lat"), "zipped": west.readAll("east.zipped")}
	for _, topic := range []string{"lat", "zipped"} {
		for p := int32(0); p < 2; p++ {
			src, dst := srcs[topic][p], dsts[topic][p]
			if want := next[fmt.Sprintf("%s/%d", topic, p)]; len(src) != want || len(dst) != want {
				t.Fatalf("%s/%d: %d records on the source, %d on the target, want %d", topic, p, len(src), len(dst), want)
			}
			for i := range src {
				s, d := src[i], dst[i]
				if topic == "lat" && s.Attrs.TimestampType() != 1 {
					t.Fatalf("%s/%d@%d: timestamp type %d on the source, want log append time", topic, p, i, s.Attrs.TimestampType())
				}
				if !sameRecord(s, d) || d.Offset != s.Offset || header(d, "id") != fmt.Sprintf("%s-%d-%d", topic, p, i) {
					t.Fatalf("%s/%d record %d differs:\nsource %+v\ntarget %+v", topic, p, i, s, d)
				}
				if d.Attrs.TimestampType() != 0 {
					t.Fatalf("%s/%d@%d: timestamp type %d on the target, want create time", topic, p, i, d.Attrs.TimestampType())
				}
				// Forwarded batches keep the source's compression; lat's
				// snappy batches are copied record by record, uncompressed.
				wantCodec := uint8(0)
				if topic == "zipped" {
					wantCodec = 4
				}
				if c := d.Attrs.CompressionType(); c != wantCodec {
					t.Fatalf("%s/%d@%d: compression %d on the target, want %d", topic, p, i, c, wantCodec)
				}
			}
		}
	}
	// The source's batches are what the test means them to be.
	for i, r := range srcs["lat"][0] {
		wantCodec := uint8(0)
		if b := i / per; b == 2 || b == 4 {
			wantCodec = 2
		}
		if c := r.Attrs.CompressionType(); c != wantCodec {
			t.Fatalf("lat/0@%d: compression %d on the source, want %d", i, c, wantCodec)
		}
	}
	for _, r := range slices.Concat(srcs["lat"][1], srcs["zipped"][0], srcs["zipped"][1]) {
		if c := r.Attrs.CompressionType(); c != 2 && r.Topic == "lat" || c != 4 && r.Topic == "zipped" {
			t.Fatalf("%s/%d@%d: compression %d on the source", r.Topic, r.Partition, r.Offset, c)
		}
	}

	// Every uncompressed lat batch and every zipped batch was forwarded
	// (consecutive uncompressed ones may have been merged into one); no
	// snappy lat batch was.
	wantFwd := map[string]int64{"lat/0": int64(plainBatches), "lat/1": 0,
		"zipped/0": int64(next["zipped/0"] / per), "zipped/1": int64(next["zipped/1"] / per)}
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		st := w.Status()
		if len(st.Partitions) != 4 {
			return false, fmt.Sprintf("%d partitions owned, want 4", len(st.Partitions))
		}
		for _, ps := range st.Partitions {
			k := fmt.Sprintf("%s/%d", ps.Topic, ps.Partition)
			fwdOK := ps.Forwarded == wantFwd[k]
			if k == "lat/0" {
				fwdOK = ps.Forwarded >= 1 && ps.Forwarded <= wantFwd[k]
			}
			if !fwdOK || ps.Records != int64(next[k]) {
				return false, fmt.Sprintf("%s: %d batches forwarded, %d records copied; want %d and %d", k, ps.Forwarded, ps.Records, wantFwd[k], next[k])
			}
		}
		return true, ""
	})

	// Offset syncs map each source record to its exact copy; here the
	// copies sit at the source's offsets.
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		syncs := east.readAll(mm2.OffsetSyncsTopic("west"))
		last := map[string]int64{}
		for _, r := range syncs[0] {
			s, err := mm2.DecodeOffsetSync(r.Key, r.Value)
			if err != nil {
				t.Fatalf("offset sync at %d: %v", r.Offset, err)
			}
			src, dst := srcs[s.Topic][s.Partition], dsts[s.Topic][s.Partition]
			if s.UpstreamOffset < 0 || s.UpstreamOffset >= int64(len(src)) || s.DownstreamOffset != s.UpstreamOffset ||
				!sameRecord(src[s.UpstreamOffset], dst[s.DownstreamOffset]) {
				t.Fatalf("offset sync %+v does not map a record to its copy", s)
			}
			k := fmt.Sprintf("%s/%d", s.Topic, s.Partition)
			last[k] = max(last[k], s.UpstreamOffset)
		}
		for k, n := range next {
			if last[k] != int64(n-1) {
				return false, fmt.Sprintf("%s: newest sync is for offset %d, want %d", k, last[k], n-1)
			}
		}
		return true, ""
	})
	// The time split: every forwarded batch went out in a cycle, after a
	// fetch; each forwarding cycle counts how many were in flight with it.
	flow := map[string]string{"flow": "east->west"}
	fetches := metricSum(t, w.reg, "kdr_mirror_fetch_seconds", flow)
	cycles := metricSum(t, w.reg, "kdr_mirror_cycle_seconds", flow)
	sent := metricSum(t, w.reg, "kdr_mirror_forward_inflight_cycles", flow)
	if fetches < 1 || cycles < 1 || sent < 1 || sent > cycles {
		t.Errorf("fetches %v, cycles %v, forwarding cycles sent %v: want each at least 1, and no more forwarding cycles than cycles", fetches, cycles, sent)
	}
	for kind, e := range w.Status().Errors {
		t.Errorf("unexpected %s errors: %+v", kind, e)
	}
}

// TestForwardResumesAfterRecordsDeleted: the workers' group committed a
// position the source has since deleted; the worker resumes at the log
// start, reports the records it could not copy, and copies the rest once.
func TestForwardResumesAfterRecordsDeleted(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	east.createTopic("events", 1)
	const n, committed, deleted, per = 100, 10, 50, 20
	cl := batchProducer(t, east, kgo.NoCompression())
	for i := 0; i < n; i += per { // batches of 20: the deletion cuts 40..59
		var recs []*kgo.Record
		for j := i; j < i+per; j++ {
			recs = append(recs, &kgo.Record{Topic: "events", Key: []byte(fmt.Sprintf("k-%d", j)), Value: []byte(fmt.Sprintf("v-%d", j))})
		}
		produceBatch(t, cl, recs)
	}
	f := testFlow(east, west, "east", "west")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: "events", Partition: 0, At: committed, LeaderEpoch: -1})
	if err := east.adm.CommitAllOffsets(ctx, f.Group(), commit); err != nil {
		t.Fatal(err)
	}
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "events", Partition: 0, At: deleted, LeaderEpoch: -1})
	resps, err := east.adm.DeleteRecords(ctx, del)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := resps.Lookup("events", 0); !ok || r.Err != nil || r.LowWatermark != deleted {
		t.Fatalf("deleting records: %+v", r)
	}
	if starts, err := east.adm.ListStartOffsets(ctx, "events"); err != nil {
		t.Fatal(err)
	} else if o, _ := starts.Lookup("events", 0); o.Offset != deleted {
		t.Fatalf("log start %d after deleting, want %d", o.Offset, deleted)
	}

	w := startWorker(t, f)
	waitCount(t, west, "east.events", n-deleted, 30*time.Second)
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		offs, err := east.adm.FetchOffsets(ctx, f.Group())
		if err != nil {
			return false, err.Error()
		}
		o, _ := offs.Lookup("events", 0)
		return o.At == n, fmt.Sprintf("the workers' group is at %d, want %d", o.At, n)
	})
	got := west.readAll("east.events")[0]
	if len(got) != n-deleted {
		t.Fatalf("%d records on the target, want %d", len(got), n-deleted)
	}
	for i, r := range got {
		if want := fmt.Sprintf("v-%d", deleted+i); string(r.Value) != want || string(r.Key) != fmt.Sprintf("k-%d", deleted+i) || r.Offset != int64(i) {
			t.Fatalf("target record %d: offset %d, value %q; want %q", i, r.Offset, r.Value, want)
		}
	}
	st := w.Status()
	if ts, _ := st.Topic("events"); ts.Records != n-deleted {
		t.Errorf("status counts %d records copied, want %d", ts.Records, n-deleted)
	}
	// The deletion cut the batch 40..59: its records from 50 were decoded
	// and copied one by one, the two batches after it forwarded (merged
	// into one when both were queued together).
	if len(st.Partitions) != 1 {
		t.Fatalf("%d partitions owned, want 1", len(st.Partitions))
	}
	if fwd := st.Partitions[0].Forwarded; st.Partitions[0].Records != n-deleted || fwd < 1 || fwd > 2 || st.Partitions[0].NextOffset != n {
		t.Errorf("partition status %+v; want %d records copied, 1 or 2 batches forwarded, next offset %d", st.Partitions, n-deleted, n)
	}
	e := st.Errors[KindSource]
	if wantMsg := fmt.Sprintf("records %d to %d were deleted on the source before they were copied; resuming at %d", committed, deleted-1, deleted); e.Count < 1 || !strings.Contains(e.Last, wantMsg) {
		t.Errorf("source errors: %+v; want the last to say %q", e, wantMsg)
	}
	if got := metricSum(t, w.reg, "kdr_mirror_errors_total", map[string]string{"kind": KindSource}); got < 1 {
		t.Errorf("kdr_mirror_errors_total{kind=source} = %v, want at least 1", got)
	}
	// Offset syncs map source o to target o-50, up to the last record.
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		newest := int64(-1)
		for _, r := range east.readAll(mm2.OffsetSyncsTopic("west"))[0] {
			s, err := mm2.DecodeOffsetSync(r.Key, r.Value)
			if err != nil || s.Topic != "events" || s.Partition != 0 || s.UpstreamOffset < deleted || s.UpstreamOffset >= n ||
				s.DownstreamOffset != s.UpstreamOffset-deleted {
				t.Fatalf("offset sync %+v, %v", s, err)
			}
			newest = max(newest, s.UpstreamOffset)
		}
		return newest == n-1, fmt.Sprintf("newest offset sync is for %d, want %d", newest, n-1)
	})
}

// BenchmarkLogAppendTimeToRaw is the worker's cost for a batch of a
// LogAppendTime source topic: the CRC check, the rewrite to create time
// and the new CRC, on 100 records of 1 KiB with timestamp deltas of 0 and
// 1 ms (a producer's records a few milliseconds apart). "refetch" is the
// floor it starts from in the benchmark, restoring the fetched bytes.
func BenchmarkLogAppendTimeToRaw(b *testing.B) {
	recs := make([]kmsg.Record, 100)
	for i := range recs {
		recs[i] = kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: int64(i % 2), Value: make([]byte, 1024)}
	}
	fetched := makeBatch(0, attrLogAppendTime, 1_700_000_000_000, recs, func(rb *kmsg.RecordBatch) { rb.MaxTimestamp = 1_700_000_000_500 })
	buf := slices.Clone(fetched)
	b.Run("refetch", func(b *testing.B) {
		b.SetBytes(int64(len(fetched)))
		for b.Loop() {
			copy(buf, fetched)
		}
	})
	b.Run("toRaw", func(b *testing.B) {
		b.SetBytes(int64(len(fetched)))
		b.ReportAllocs()
		for b.Loop() {
			copy(buf, fetched)
			v := splitOne(b, buf)
			if err := v.checkCRC(); err != nil {
				b.Fatal(err)
			}
			v.toRaw().fixCRC()
		}
	})
}
