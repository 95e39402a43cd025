package mirror

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// This file reads and rewrites record batches (magic 2) for forwarding: a
// batch fetched from the source goes to the target as it is, but for the
// producer fields (the target's idempotence is the mirror's, not the
// source producer's) and the CRC that covers them. Kafka's layout, in
// bytes: base offset 8, length 4, partition leader epoch 4, magic 1, CRC 4,
// attributes 2, last offset delta 4, first timestamp 8, max timestamp 8,
// producer ID 8, producer epoch 2, base sequence 4, record count 4, then
// the records. The CRC (CRC-32C) covers everything from the attributes on.
const (
	batchHeaderLen   = 61
	batchLengthBase  = 12 // the length field counts what follows it
	offBatchLength   = 8
	offBatchMagic    = 16
	offBatchCRC      = 17
	offBatchAttrs    = 21
	offBatchLastDelt = 23
	offBatchFirstTS  = 27
	offBatchMaxTS    = 35
	offBatchProducer = 43
	offBatchEpoch    = 51
	offBatchSequence = 53
	offBatchCount    = 57

	attrCodec         = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// rawBatch is one fetched batch, kept as bytes.
type rawBatch struct {
	data      []byte // the whole batch; rewritten in place before each send
	base      int64  // source offset of the first record
	last      int64  // source offset of the last record
	count     int32
	epoch     int32 // source partition leader epoch
	timestamp int64 // first record's timestamp (ms), for lag and latency
	crcStale  bool  // rewritten since fetched: stamp checksums it whole
	sent      bool  // stamped and sent at least once
	// Identity naming's rewrite (withHops): records left out as loops,
	// where the kept ones came from (nil: densely from base), and the
	// batches as fetched, which a split into records decodes (the rewrite
	// renumbered the records and added the hop).
	loops int32
	runs  []run
	src   [][]byte
}

// records is the bytes that count as copied: everything after the header
// (compressed, if the source compressed it).
func (b *rawBatch) records() int { return len(b.data) - batchHeaderLen }

var errBatchCRC = errors.New("record batch CRC mismatch")

// batchView is a parsed header of one batch in a fetch response.
type batchView struct {
	data  []byte
	base  int64
	last  int64
	count int32
	epoch int32
	magic int8
	attrs int16
	first int64 // first timestamp
	max   int64 // max timestamp
}

func (v *batchView) control() bool       { return v.attrs&attrControl != 0 }
func (v *batchView) transactional() bool { return v.attrs&attrTransactional != 0 }
func (v *batchView) compressed() bool    { return v.attrs&attrCodec != 0 }
func (v *batchView) appendTime() bool    { return v.attrs&attrLogAppendTime != 0 }

// contiguous reports whether the batch holds one record per offset: not
// thinned by compaction. Kafka refuses produced batches with gaps.
func (v *batchView) contiguous() bool { return int64(v.count) == v.last-v.base+1 }

// splitBatches cuts a fetch response's record bytes into batches. A
// truncated batch at the end (the broker cuts at the size limit) is left
// out; rest is where it starts. Old message formats (magic 0 and 1) are
// returned with their magic so the caller can hand them to the record
// decoder; their other fields are not read.
func splitBatches(b []byte) (views []batchView, rest int, err error) {
	off := 0
	for len(b)-off >= batchLengthBase+5 { // offset, length and magic: enough to size any format
		p := b[off:]
		n := int64(int32(binary.BigEndian.Uint32(p[offBatchLength:]))) + batchLengthBase
		if n < batchHeaderLen && p[offBatchMagic] == 2 || n < batchLengthBase+5 {
			return views, off, fmt.Errorf("record batch at byte %d claims %d bytes", off, n)
		}
		if n > int64(len(p)) {
			break
		}
		v := batchView{data: p[:n:n], magic: int8(p[offBatchMagic])}
		v.base = int64(binary.BigEndian.Uint64(p))
		if v.magic == 2 {
			v.last = v.base + int64(int32(binary.BigEndian.Uint32(p[offBatchLastDelt:])))
			v.epoch = int32(binary.BigEndian.Uint32(p[12:]))
			v.attrs = int16(binary.BigEndian.Uint16(p[offBatchAttrs:]))
			v.first = int64(binary.BigEndian.Uint64(p[offBatchFirstTS:]))
			v.max = int64(binary.BigEndian.Uint64(p[offBatchMaxTS:]))
			v.count = int32(binary.BigEndian.Uint32(p[offBatchCount:]))
			if v.last < v.base || v.count < 0 {
				return views, off, fmt.Errorf("record batch at offset %d: last offset delta %d, %d records", v.base, v.last-v.base, v.count)
			}
		}
		views = append(views, v)
		off += int(n)
	}
	return views, off, nil
}

// checkCRC verifies the batch's own checksum, so that a batch damaged on
// the source is not given a fresh, valid CRC by the rewrite.
func (v *batchView) checkCRC() error {
	want := binary.BigEndian.Uint32(v.data[offBatchCRC:])
	if got := crc32.Checksum(v.data[offBatchAttrs:], crc32.MakeTable(crc32.Castagnoli)); got != want {
		return fmt.Errorf("%w at offset %d: stored %08x, computed %08x", errBatchCRC, v.base, want, got)
	}
	return nil
}

// forwardable reports whether the batch can go to the target as it is, and
// why not: control and transactional batches need the transaction state,
// compacted batches have offset gaps Kafka refuses on produce, a batch
// starting before from has records the target holds already, and a
// compressed batch stamped with the source's append time would need
// recompressing to carry that time.
func (v *batchView) forwardable(from int64) (bool, string) {
	switch {
	case v.magic != 2:
		return false, "old message format"
	case v.control() || v.transactional():
		return false, "transactional"
	case v.base < from:
		return false, "partly copied"
	case !v.contiguous():
		return false, "compacted"
	case v.appendTime() && v.compressed():
		return false, "compressed with log append time"
	}
	return true, ""
}

// toRaw makes the batch a rawBatch. A batch with the source's log append
// time is rewritten as create time with every record at that time, which
// is what the source's consumers see; the rewrite is made in the fetched
// bytes, so the view is spent.
func (v *batchView) toRaw() *rawBatch {
	b := &rawBatch{data: v.data, base: v.base, last: v.last, count: v.count, epoch: v.epoch, timestamp: v.first}
	if v.appendTime() {
		b.data, _ = withCreateTime(v.data, v.max)
		b.timestamp, b.crcStale = v.max, true
	}
	return b
}

// withCreateTime rewrites an uncompressed batch in place with every
// record's timestamp delta zero, the first timestamp ts and the create-time
// attribute, and returns it (shorter when deltas lose bytes). A record is:
// length varint, attributes (1 byte), timestamp delta varint, offset delta
// varint, then the rest. No record grows, so each moves down over the bytes
// the ones before it gave up; a record whose delta took one byte (within
// 63 ms of the first, as most are) and that nothing before it shrank is
// not moved at all. Records that do not parse leave the batch untouched,
// for the target to judge, and ok false.
func withCreateTime(batch []byte, ts int64) (out []byte, ok bool) {
	count := int32(binary.BigEndian.Uint32(batch[offBatchCount:]))
	// Every record is checked before any is moved: a rewrite stopped half
	// way could not be undone.
	if !walkRecords(batch[batchHeaderLen:], count, func(recordHead) bool { return true }) {
		return batch, false
	}
	binary.BigEndian.PutUint16(batch[offBatchAttrs:], binary.BigEndian.Uint16(batch[offBatchAttrs:])&^attrLogAppendTime)
	binary.BigEndian.PutUint64(batch[offBatchFirstTS:], uint64(ts))
	r, w := batchHeaderLen, batchHeaderLen // read and write positions, w <= r
	for range count {
		length, n := binary.Varint(batch[r:])
		body := batch[r+n : r+n+int(length)]
		_, tn := binary.Varint(body[1:])
		next := r + n + int(length)
		if tn == 1 && w == r {
			body[1] = 0 // zigzag zero, in place
			r, w = next, next
			continue
		}
		// The new length varint and the two bytes after it end at or
		// before the old record's offset delta, so writing them keeps
		// what is still to be moved.
		attrs, rest := body[0], body[1+tn:]
		w += binary.PutVarint(batch[w:], length-int64(tn)+1)
		batch[w], batch[w+1] = attrs, 0
		w += 2 + copy(batch[w+2:], rest)
		r = next
	}
	binary.BigEndian.PutUint32(batch[offBatchLength:], uint32(w-batchLengthBase))
	return batch[:w], true
}

// stamp sets the batch's producer fields for the target and updates its
// CRC. The base offset and leader epoch are the target's to assign. CRC-32C
// is linear, so the new CRC is the old one plus the CRC of the change,
// carried past the bytes after it (z): no pass over the records, and a batch
// that arrived damaged stays detectably damaged, for the target to refuse.
// A batch rewritten since it was fetched (crcStale) is checksummed whole.
func (b *rawBatch) stamp(producerID int64, epoch int16, sequence int32, z *crcZeros) {
	d := b.data
	var old, now [offBatchCount - offBatchProducer]byte
	copy(old[:], d[offBatchProducer:offBatchCount])
	binary.BigEndian.PutUint64(d[offBatchProducer:], uint64(producerID))
	binary.BigEndian.PutUint16(d[offBatchEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(d[offBatchSequence:], uint32(sequence))
	b.sent = true
	if b.crcStale {
		b.fixCRC()
		return
	}
	copy(now[:], d[offBatchProducer:offBatchCount])
	for i := range now {
		now[i] ^= old[i]
	}
	// The register after the changed bytes alone (no pre- or
	// post-conditioning), then after the zeros that stand for the rest.
	delta := ^crc32.Update(^uint32(0), crc32.MakeTable(crc32.Castagnoli), now[:])
	delta = z.shift(delta, len(d)-offBatchCount)
	binary.BigEndian.PutUint32(d[offBatchCRC:], binary.BigEndian.Uint32(d[offBatchCRC:])^delta)
}

// crcZeros holds, for each k, the GF(2) matrix that advances a raw CRC-32C
// register over 2^k zero bytes (zlib's crc32_combine, with the squarings
// done once).
type crcZeros [32][32]uint32

func newCRCZeros() *crcZeros {
	z := new(crcZeros)
	var bit [32]uint32  // one zero bit
	bit[0] = 0x82F63B78 // Castagnoli, reflected
	for i := 1; i < 32; i++ {
		bit[i] = 1 << (i - 1)
	}
	m := bit
	for range 3 { // 2, 4, 8 bits: one byte
		m = gf2Square(&m)
	}
	for k := range z {
		z[k] = m
		m = gf2Square(&m)
	}
	return z
}

// shift advances the raw register r over n zero bytes.
func (z *crcZeros) shift(r uint32, n int) uint32 {
	for k := 0; n > 0 && k < len(z); k, n = k+1, n>>1 {
		if n&1 != 0 {
			r = gf2Times(&z[k], r)
		}
	}
	return r
}

func gf2Times(m *[32]uint32, v uint32) uint32 {
	var sum uint32
	for i := 0; v != 0; i, v = i+1, v>>1 {
		if v&1 != 0 {
			sum ^= m[i]
		}
	}
	return sum
}

func gf2Square(m *[32]uint32) [32]uint32 {
	var sq [32]uint32
	for i := range sq {
		sq[i] = gf2Times(m, m[i])
	}
	return sq
}

// Batches smaller than these are not sent alone: Kafka takes one batch per
// partition per Produce request, so small batches would cost a round trip
// each. Uncompressed ones are merged (mergeBatches); compressed ones are
// decoded and copied as records, which the producer batches again.
const (
	mergeBelow        = 128 << 10
	forwardCompressed = 64 << 10
)

// mergeable reports whether b may be merged with its neighbours: small,
// uncompressed, and never sent (a batch sent once keeps its sequences, so
// that a retry is recognised as one).
func (b *rawBatch) mergeable() bool {
	return !b.sent && b.count > 0 && len(b.data) < mergeBelow && binary.BigEndian.Uint16(b.data[offBatchAttrs:])&attrCodec == 0
}

// mergeBatches joins consecutive uncompressed batches (each contiguous,
// each starting where the one before ended) into one: every record's
// timestamp and offset deltas are rebased on the first batch, the rest of
// each record is copied as it is. It returns nil for records it cannot
// walk, and the caller sends the batches as they are.
func mergeBatches(bs []*rawBatch) *rawBatch {
	size := 0
	for _, b := range bs {
		size += len(b.data)
	}
	out := make([]byte, batchHeaderLen, size)
	copy(out, bs[0].data[:batchHeaderLen])
	first := int64(binary.BigEndian.Uint64(bs[0].data[offBatchFirstTS:]))
	maxTS := first
	var idx int64
	var hdr []byte
	for _, b := range bs {
		bFirst := int64(binary.BigEndian.Uint64(b.data[offBatchFirstTS:]))
		maxTS = max(maxTS, int64(binary.BigEndian.Uint64(b.data[offBatchMaxTS:])))
		ok := walkRecords(b.data[batchHeaderLen:], b.count, func(r recordHead) bool {
			hdr = append(hdr[:0], r.attrs)
			hdr = binary.AppendVarint(hdr, bFirst+r.tsDelta-first)
			hdr = binary.AppendVarint(hdr, idx)
			out = binary.AppendVarint(out, int64(len(hdr)+len(r.rest)))
			out = append(append(out, hdr...), r.rest...)
			idx++
			return true
		})
		if !ok {
			return nil
		}
	}
	be := binary.BigEndian
	be.PutUint32(out[offBatchLength:], uint32(len(out)-batchLengthBase))
	be.PutUint32(out[offBatchLastDelt:], uint32(idx-1))
	be.PutUint64(out[offBatchMaxTS:], uint64(maxTS))
	be.PutUint32(out[offBatchCount:], uint32(idx))
	last := bs[len(bs)-1]
	m := &rawBatch{data: out, base: bs[0].base, last: last.last, count: int32(idx), epoch: last.epoch,
		timestamp: bs[0].timestamp, crcStale: true}
	var at int32
	add := func(r run) {
		if n := len(m.runs) - 1; n >= 0 && m.runs[n].up+int64(m.runs[n].n) == r.up && m.runs[n].idx+m.runs[n].n == r.idx {
			m.runs[n].n += r.n
			return
		}
		m.runs = append(m.runs, r)
	}
	for _, b := range bs {
		m.loops += b.loops
		m.src = append(m.src, b.src...)
		if b.runs == nil {
			add(run{up: b.base, idx: at, n: b.count})
		}
		for _, r := range b.runs {
			add(run{up: r.up, idx: at + r.idx, n: r.n})
		}
		at += b.count
	}
	if len(m.src) != 0 && len(m.src) != len(bs) {
		m.src = nil // not all made by withHops (not expected): split from the merged bytes
	}
	if len(m.runs) == 1 && m.runs[0].up == m.base && m.runs[0].n == m.count {
		m.runs = nil // dense from base
	}
	return m
}

// recordHead is the front of one record of a batch, what the rewrites
// change; rest is its key, value and headers, as they are.
type recordHead struct {
	attrs             byte
	tsDelta, offDelta int64
	rest              []byte
}

// walkRecords calls fn for the count records of an uncompressed batch, in
// order, while fn returns true. It reports whether they were well formed
// and filled recs exactly.
func walkRecords(recs []byte, count int32, fn func(recordHead) bool) bool {
	for range max(count, 0) {
		length, n := binary.Varint(recs)
		if n <= 0 || length < 3 || int64(len(recs)-n) < length {
			return false
		}
		body := recs[n : n+int(length)]
		recs = recs[n+int(length):]
		ts, tn := binary.Varint(body[1:])
		if tn <= 0 {
			return false
		}
		off, on := binary.Varint(body[1+tn:])
		if on <= 0 || !fn(recordHead{attrs: body[0], tsDelta: ts, offDelta: off, rest: body[1+tn+on:]}) {
			return false
		}
	}
	return len(recs) == 0
}

// fixCRC checksums a batch rewritten since it was fetched, for a reader
// that checks it (decoding it into records).
func (b *rawBatch) fixCRC() {
	if b.crcStale {
		binary.BigEndian.PutUint32(b.data[offBatchCRC:], crc32.Checksum(b.data[offBatchAttrs:], crc32.MakeTable(crc32.Castagnoli)))
		b.crcStale = false
	}
}
