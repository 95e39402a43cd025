package recordbatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestRecordBatchBuildWalkEveryCodec(t *testing.T) {
	codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			comp, err := kgo.DefaultCompressor(codec)
			if err != nil {
				t.Fatal(err)
			}
			var recs []Record
			for i := 0; i < 50; i++ {
				recs = append(recs, Record{Key: []byte(fmt.Sprint("k", i)), Value: bytes.Repeat([]byte{byte(i)}, 100), TimestampMs: 1000 + int64(i)})
			}
			recs[7].Value = nil // tombstone survives
			b, err := Build(recs, Options{BaseOffset: 40, TimestampMs: 1000, Compressor: comp})
			if err != nil {
				t.Fatal(err)
			}
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(b); err != nil {
				t.Fatal(err)
			}
			if uint32(rb.CRC) != crc32.Checksum(b[21:], crc32c) || int(rb.Length) != len(b)-12 {
				t.Fatalf("bad crc or length")
			}
			var got []Decoded
			if err := Walk(append(b, b[:30]...), func(d Decoded) error { got = append(got, d); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(got) != 50 {
				t.Fatalf("walked %d records", len(got))
			}
			for i, d := range got {
				if d.Offset != int64(40+i) || d.Timestamp != 1000+int64(i) || string(d.Key) != fmt.Sprint("k", i) || (i == 7) != (d.Value == nil) {
					t.Fatalf("record %d: %+v", i, d)
				}
			}
			if n := NextOffset(append(b, 1, 2, 3)); n != 90 {
				t.Fatalf("NextOffset %d, want 90", n)
			}
		})
	}
}

// TestEachHeader reads two batches' headers back, the second stamped as
// a broker stamps LogAppendTime, and leaves out a trailing partial batch.
func TestEachHeader(t *testing.T) {
	a, err := Build([]Record{{Value: []byte("a")}, {Value: []byte("b")}}, Options{BaseOffset: 10, TimestampMs: 1000})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build([]Record{{Value: []byte("c")}}, Options{BaseOffset: 12, TimestampMs: 2000})
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|0x8)
	binary.BigEndian.PutUint64(b[35:], 2500)
	SetCRC(b)
	var got []Header
	EachHeader(slices.Concat(a, b, b[:30]), func(h Header) { got = append(got, h) })
	want := []Header{
		{BaseOffset: 10, LastOffset: 11, Magic: 2, MaxTimestamp: 1000},
		{BaseOffset: 12, LastOffset: 12, Magic: 2, Attributes: 0x8, MaxTimestamp: 2500},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("headers %+v, want %+v", got, want)
	}
	if got[0].LogAppendTime() || !got[1].LogAppendTime() {
		t.Fatalf("LogAppendTime %v, %v; want false, true", got[0].LogAppendTime(), got[1].LogAppendTime())
	}
}
