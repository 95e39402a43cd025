package storage

import (
	"encoding/binary"
	"hash/crc32"
	"math"
)

// Batch header layout (see doc.go for the diagram).
const (
	headerLen = 61 // bytes before the first record

	offBaseOffset    = 0
	offLength        = 8
	offLeaderEpoch   = 12
	offMagic         = 16
	offCRC           = 17
	offAttributes    = 21
	offLastDelta     = 23
	offBaseTimestamp = 27
	offMaxTimestamp  = 35
	offProducerID    = 43
	offProducerEpoch = 51
	offBaseSequence  = 53
	offRecordCount   = 57

	lengthBase = 12 // a batch is length+12 bytes: length counts what follows it

	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20

	codecZstd = 4 // the largest codec id Kafka defines

	// minRecordLen is the smallest encoded record: length, attributes,
	// timestamp delta, offset delta, key length, value length and header
	// count, one byte each. It bounds the record count an uncompressed
	// batch can honestly claim.
	minRecordLen = 7
)

// header is the decoded fixed part of a record batch.
type header struct {
	baseOffset    int64
	length        int32
	leaderEpoch   int32
	magic         int8
	crc           uint32
	attributes    int16
	lastDelta     int32
	baseTimestamp int64
	maxTimestamp  int64
	producerID    int64
	producerEpoch int16
	baseSequence  int32
	count         int32
}

// parseHeader decodes the header at the front of b, which must hold at
// least headerLen bytes.
func parseHeader(b []byte) header {
	_ = b[headerLen-1]
	be := binary.BigEndian
	return header{
		baseOffset:    int64(be.Uint64(b[offBaseOffset:])),
		length:        int32(be.Uint32(b[offLength:])),
		leaderEpoch:   int32(be.Uint32(b[offLeaderEpoch:])),
		magic:         int8(b[offMagic]),
		crc:           be.Uint32(b[offCRC:]),
		attributes:    int16(be.Uint16(b[offAttributes:])),
		lastDelta:     int32(be.Uint32(b[offLastDelta:])),
		baseTimestamp: int64(be.Uint64(b[offBaseTimestamp:])),
		maxTimestamp:  int64(be.Uint64(b[offMaxTimestamp:])),
		producerID:    int64(be.Uint64(b[offProducerID:])),
		producerEpoch: int16(be.Uint16(b[offProducerEpoch:])),
		baseSequence:  int32(be.Uint32(b[offBaseSequence:])),
		count:         int32(be.Uint32(b[offRecordCount:])),
	}
}

// size is the whole batch's length in bytes.
func (h *header) size() int64 { return int64(h.length) + lengthBase }

func (h *header) lastOffset() int64 { return h.baseOffset + int64(h.lastDelta) }

func (h *header) codec() int8 { return int8(h.attributes & attrCodecMask) }

func (h *header) isControl() bool { return h.attributes&attrControl != 0 }

func (h *header) isLogAppendTime() bool { return h.attributes&attrLogAppendTime != 0 }

// idempotent reports whether the batch carries a producer ID, i.e. its
// sequence numbers are tracked.
func (h *header) idempotent() bool { return h.producerID >= 0 }

// lastSequence is the sequence of the batch's last record: baseSequence plus
// lastOffsetDelta, wrapping past MaxInt32 to 0 as producers do.
func (h *header) lastSequence() int32 {
	if h.baseSequence > math.MaxInt32-h.lastDelta {
		return h.lastDelta - (math.MaxInt32 - h.baseSequence) - 1
	}
	return h.baseSequence + h.lastDelta
}

// crc32c is the batch checksum function. crc32.MakeTable returns the
// package's shared, SSE4.2-backed table for Castagnoli, so calling it per use
// costs nothing and leaves this package without a table variable.
func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// setCRC recomputes a batch's CRC after bytes inside it changed.
func setCRC(batch []byte) {
	binary.BigEndian.PutUint32(batch[offCRC:], crc32c(batch[offAttributes:]))
}

// checkStored validates the batch at the front of b as something the log
// may contain: a sane length that fits b, magic 2, a matching CRC, and no
// more records than offsets. Compaction can leave fewer records than
// lastOffsetDelta+1 (even none), so the count is not tied to the delta.
func checkStored(b []byte) (header, error) {
	if len(b) < headerLen {
		return header{}, corrupt("%d bytes left, a batch header needs %d", len(b), headerLen)
	}
	h := parseHeader(b)
	if h.length < headerLen-lengthBase || h.size() > int64(len(b)) {
		return h, corrupt("batch length %d with %d bytes left", h.length, len(b))
	}
	if h.magic != 2 {
		return h, corrupt("magic %d, only 2 is supported", h.magic)
	}
	if got := crc32c(b[offAttributes:h.size()]); got != h.crc {
		return h, corrupt("crc %08x, batch says %08x", got, h.crc)
	}
	if h.count < 0 || h.lastDelta < 0 || int64(h.count) > int64(h.lastDelta)+1 {
		return h, corrupt("record count %d, last offset delta %d", h.count, h.lastDelta)
	}
	return h, nil
}

// checkProduced adds what a producer's batch must also satisfy: at least one
// record, one offset per record, a known codec and, when uncompressed, room
// for the records it claims (so a small batch cannot claim a billion offsets).
func checkProduced(b []byte) (header, error) {
	h, err := checkStored(b)
	if err != nil {
		return h, err
	}
	if h.count == 0 || h.lastDelta != h.count-1 {
		return h, corrupt("record count %d with last offset delta %d", h.count, h.lastDelta)
	}
	if h.codec() > codecZstd {
		return h, corrupt("unknown compression codec %d", h.codec())
	}
	if h.codec() == 0 && int64(h.count)*minRecordLen > h.size()-headerLen {
		return h, corrupt("%d records cannot fit in %d bytes", h.count, h.size()-headerLen)
	}
	return h, nil
}
