// Package recordbatch builds and walks Kafka v2 record batches (magic 2) for
// the places where kdr itself writes records rather than relaying a client's
// bytes: the group coordinator's __consumer_offsets records and tests.
package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// Record is a key/value pair with optional headers. A nil Value is a
// tombstone.
type Record struct {
	Key, Value []byte
	Headers    []kmsg.Header
	// TimestampMs is the record's create time; 0 means the batch's
	// timestamp.
	TimestampMs int64
}

// Options are batch-level header fields. The zero value is a
// non-idempotent, uncompressed batch at base offset 0.
type Options struct {
	BaseOffset    int64
	TimestampMs   int64 // first timestamp; records with TimestampMs 0 get it
	ProducerID    int64 // -1 (none) when zero and Idempotent is false
	ProducerEpoch int16
	BaseSequence  int32
	Idempotent    bool
	// Compressor, when set, compresses the records section (kgo's
	// DefaultCompressor); the codec bits come from its answer.
	Compressor kgo.Compressor
}

// Build encodes records as one batch with a valid CRC.
func Build(records []Record, o Options) ([]byte, error) {
	if len(records) == 0 {
		return nil, errors.New("recordbatch: a batch needs at least one record")
	}
	var body []byte
	maxTs := o.TimestampMs
	for i, r := range records {
		ts := r.TimestampMs
		if ts == 0 {
			ts = o.TimestampMs
		}
		maxTs = max(maxTs, ts)
		rec := kmsg.Record{TimestampDelta64: ts - o.TimestampMs, OffsetDelta: int32(i), Key: r.Key, Value: r.Value, Headers: r.Headers}
		enc := rec.AppendTo(nil)
		// AppendTo writes Length as given (0, one byte); the real length is
		// everything after that byte.
		body = kbin.AppendVarint(body, int32(len(enc)-1))
		body = append(body, enc[1:]...)
	}
	var attrs int16
	if o.Compressor != nil {
		compressed, codec := o.Compressor.Compress(new(bytes.Buffer), body)
		if codec != kgo.CodecNone {
			body = append([]byte(nil), compressed...)
			attrs |= int16(codec)
		}
	}
	pid, seq := int64(-1), int32(-1)
	epoch := int16(-1)
	if o.Idempotent {
		pid, epoch, seq = o.ProducerID, o.ProducerEpoch, o.BaseSequence
	}
	b := kmsg.RecordBatch{
		FirstOffset: o.BaseOffset, Magic: 2, Attributes: attrs, LastOffsetDelta: int32(len(records) - 1),
		FirstTimestamp: o.TimestampMs, MaxTimestamp: maxTs, ProducerID: pid, ProducerEpoch: epoch,
		FirstSequence: seq, NumRecords: int32(len(records)), Records: body,
	}
	out := b.AppendTo(nil)
	// Length counts everything after the length field itself.
	kbin.AppendInt32(out[8:8], int32(len(out)-12))
	SetCRC(out)
	return out, nil
}

// SetCRC recomputes the CRC-32C of one encoded batch (bytes 21..end).
func SetCRC(batch []byte) {
	kbin.AppendUint32(batch[17:17], crc32.Checksum(batch[21:], crc32c))
}

// Decoded is one record read back from a batch, with its absolute offset.
type Decoded struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []kmsg.Header
}

// Walk calls fn for every record of every batch in data (concatenated
// batches, as stored or fetched), decompressing as needed. A trailing partial
// batch is ignored, as Kafka clients do; control batches are skipped.
func Walk(data []byte, fn func(Decoded) error) error {
	dec := kgo.DefaultDecompressor()
	for len(data) >= 61 {
		var b kmsg.RecordBatch
		size := int(int32(binary.BigEndian.Uint32(data[8:12]))) + 12
		if size < 61 || size > len(data) {
			return nil
		}
		if err := b.ReadFrom(data[:size]); err != nil {
			return fmt.Errorf("recordbatch: %w", err)
		}
		data = data[size:]
		if b.Attributes&0x20 != 0 {
			continue
		}
		raw, err := dec.Decompress(b.Records, kgo.CompressionCodecType(b.Attributes&0x7))
		if err != nil {
			return fmt.Errorf("recordbatch: decompress batch at %d: %w", b.FirstOffset, err)
		}
		recs := make([]kmsg.Record, b.NumRecords)
		if err := readRecords(raw, recs); err != nil {
			return fmt.Errorf("recordbatch: batch at %d: %w", b.FirstOffset, err)
		}
		for _, r := range recs {
			ts := b.FirstTimestamp + r.TimestampDelta64
			if b.Attributes&attrLogAppendTime != 0 {
				ts = b.MaxTimestamp
			}
			if err := fn(Decoded{Offset: b.FirstOffset + int64(r.OffsetDelta), Timestamp: ts, Key: r.Key, Value: r.Value, Headers: r.Headers}); err != nil {
				return err
			}
		}
	}
	return nil
}

func readRecords(raw []byte, recs []kmsg.Record) error {
	for i := range recs {
		r := kbin.Reader{Src: raw}
		length := int(r.Varint())
		if !r.Ok() || length < 0 || length > len(r.Src) {
			return errors.New("record length out of range")
		}
		consumed := len(raw) - len(r.Src)
		if err := recs[i].ReadFrom(raw[:consumed+length]); err != nil {
			return err
		}
		raw = raw[consumed+length:]
	}
	return nil
}

// NextOffset returns the offset after the last complete batch in data, or -1
// when data holds no complete batch. Compaction can leave a batch whose last
// records are gone, so the next read position comes from the batch header
// (base offset + last offset delta + 1), not from the last record seen.
func NextOffset(data []byte) int64 {
	next := int64(-1)
	EachHeader(data, func(h Header) { next = h.LastOffset + 1 })
	return next
}

// Header is what a batch's header says of where it sits and when: its
// first and last offsets, magic, attributes and max timestamp (the broker's
// append time when the batch uses LogAppendTime).
type Header struct {
	BaseOffset, LastOffset int64
	Magic                  int8
	Attributes             int16
	MaxTimestamp           int64
}

// attrLogAppendTime is the attributes bit of a batch whose records are
// timed by the broker's append (message.timestamp.type=LogAppendTime): each
// record's timestamp is then the batch's max timestamp.
const attrLogAppendTime = 0x8

// LogAppendTime reports whether the batch's records are timed by the
// broker's append.
func (h Header) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// EachHeader calls fn with the header of every complete batch in data
// (concatenated batches, as stored or fetched), reading no record; a
// trailing partial batch is left out, as Walk leaves it.
func EachHeader(data []byte, fn func(Header)) {
	for len(data) >= 61 {
		size := int(int32(binary.BigEndian.Uint32(data[8:12]))) + 12
		if size < 61 || size > len(data) {
			return
		}
		base := int64(binary.BigEndian.Uint64(data[0:8]))
		fn(Header{
			BaseOffset:   base,
			LastOffset:   base + int64(int32(binary.BigEndian.Uint32(data[23:27]))),
			Magic:        int8(data[16]),
			Attributes:   int16(binary.BigEndian.Uint16(data[21:23])),
			MaxTimestamp: int64(binary.BigEndian.Uint64(data[35:43])),
		})
		data = data[size:]
	}
}
