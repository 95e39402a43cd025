package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The append path never looks at records; these helpers are for the few
// places that must: timestamp lookups, compaction and the null-key check of
// compacted topics.

// record is one record of a batch, pointing into the decompressed records
// section.
type record struct {
	offsetDelta    int32
	timestampDelta int64
	key, value     []byte // nil when null
	raw            []byte // the whole encoded record, length prefix included
}

// parseRecord decodes the record at the front of b and returns it with the
// number of bytes it occupies.
func parseRecord(b []byte) (record, int, error) {
	var r record
	length, n := binary.Varint(b)
	if n <= 0 || length < 0 || length > int64(len(b)-n) {
		return r, 0, corrupt("record length")
	}
	total := n + int(length)
	body := b[n:total]
	r.raw = b[:total]
	if len(body) < 1 {
		return r, 0, corrupt("empty record")
	}
	body = body[1:] // attributes, unused in v2
	var ok bool
	var v int64
	if r.timestampDelta, body, ok = varint(body); !ok {
		return r, 0, corrupt("record timestamp delta")
	}
	if v, body, ok = varint(body); !ok || v < 0 || v > 1<<31-1 {
		return r, 0, corrupt("record offset delta")
	}
	r.offsetDelta = int32(v)
	if r.key, body, ok = nullableBytes(body); !ok {
		return r, 0, corrupt("record key")
	}
	if r.value, _, ok = nullableBytes(body); !ok {
		return r, 0, corrupt("record value")
	}
	return r, total, nil
}

func varint(b []byte) (int64, []byte, bool) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, b, false
	}
	return v, b[n:], true
}

// nullableBytes reads a varint length and that many bytes; length -1 is null.
func nullableBytes(b []byte) ([]byte, []byte, bool) {
	l, rest, ok := varint(b)
	switch {
	case !ok || l < -1 || l > int64(len(rest)):
		return nil, b, false
	case l == -1:
		return nil, rest, true
	}
	return rest[:l:l], rest[l:], true
}

// recordsSection returns a batch's records, decompressed when the batch is.
func recordsSection(dec kgo.Decompressor, batch []byte, h *header) ([]byte, error) {
	raw := batch[headerLen:h.size()]
	if h.codec() == 0 {
		return raw, nil
	}
	out, err := dec.Decompress(raw, kgo.CompressionCodecType(h.codec()))
	if err != nil {
		return nil, fmt.Errorf("%w: decompressing batch at offset %d: %v", ErrCorruptMessage, h.baseOffset, err)
	}
	return out, nil
}

// eachRecord calls fn for each of the batch's records until fn returns
// false.
func eachRecord(dec kgo.Decompressor, batch []byte, h *header, fn func(r *record) bool) error {
	data, err := recordsSection(dec, batch, h)
	if err != nil {
		return err
	}
	for i := int32(0); i < h.count; i++ {
		r, n, err := parseRecord(data)
		if err != nil {
			return fmt.Errorf("batch at offset %d, record %d: %w", h.baseOffset, i, err)
		}
		data = data[n:]
		if !fn(&r) {
			return nil
		}
	}
	return nil
}

// recordTimestamp is a record's timestamp as consumers see it: with
// LogAppendTime every record carries the batch's maxTimestamp.
func recordTimestamp(h *header, r *record) int64 {
	if h.isLogAppendTime() {
		return h.maxTimestamp
	}
	return h.baseTimestamp + r.timestampDelta
}
