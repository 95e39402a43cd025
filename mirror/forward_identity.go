package mirror

import (
	"encoding/binary"
	"math"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/mirror/naming"
)

// run is a stretch of consecutive source offsets copied to consecutive
// records of a rewritten batch: source offset up is its record idx.
type run struct {
	up     int64
	idx, n int32
}

// withHops rewrites an uncompressed batch for identity naming, as the
// record path does record by record (naming.Visited, naming.WithHop): a
// record whose provenance names target is left out (counted in loops), the
// others get source appended to their provenance header. Kept records are
// renumbered densely; runs map them back to source offsets. A log append
// time batch becomes create time at the append time, as in withCreateTime.
// ok is false for records it cannot walk; the caller then decodes the
// batch instead.
func withHops(v *batchView, source, target string) (b *rawBatch, ok bool) {
	recs := v.data[batchHeaderLen:]
	// Room for the hop on every record; the count is bounded by what the
	// bytes can hold (a record takes at least 7), whatever the header says.
	records := min(int(v.count), len(v.data)/7)
	out := make([]byte, batchHeaderLen, len(v.data)+records*(len(naming.ProvenanceHeader)+len(source)+8))
	copy(out, v.data[:batchHeaderLen])
	first := v.first
	if v.appendTime() {
		first = v.max
	}
	maxTS, firstKept := int64(math.MinInt64), int64(0)
	prevDelta := int64(-1)
	var (
		runs        []run
		kept, loops int32
		hdrs        []kgo.RecordHeader
		rec         []byte
	)
	for range v.count {
		length, n := binary.Varint(recs)
		if n <= 0 || length < 1 || int64(len(recs)-n) < length {
			return nil, false
		}
		p := recs[n : n+int(length)]
		recs = recs[n+int(length):]
		attrs := p[0]
		tsDelta, k := binary.Varint(p[1:])
		if k <= 0 {
			return nil, false
		}
		p = p[1+k:]
		offDelta, k := binary.Varint(p)
		if k <= 0 || offDelta <= prevDelta || v.base+offDelta > v.last {
			return nil, false // offsets out of the batch's range or order
		}
		prevDelta = offDelta
		p = p[k:]
		var key, value []byte
		if key, p, ok = readVarBytes(p); !ok {
			return nil, false
		}
		if value, p, ok = readVarBytes(p); !ok {
			return nil, false
		}
		count, k := binary.Varint(p)
		if k <= 0 || count < 0 || count > int64(len(p)) {
			return nil, false
		}
		p = p[k:]
		hdrs = hdrs[:0]
		for range count {
			var hk, hv []byte
			if hk, p, ok = readVarBytes(p); !ok || hk == nil {
				return nil, false
			}
			if hv, p, ok = readVarBytes(p); !ok {
				return nil, false
			}
			hdrs = append(hdrs, kgo.RecordHeader{Key: string(hk), Value: hv})
		}
		if len(p) != 0 {
			return nil, false
		}
		if naming.Visited(hdrs, target) {
			loops++
			continue
		}
		ts := v.first + tsDelta
		if v.appendTime() {
			ts = v.max
		}
		if kept == 0 {
			firstKept = ts
		}
		maxTS = max(maxTS, ts)
		rec = append(rec[:0], attrs)
		rec = binary.AppendVarint(rec, ts-first)
		rec = binary.AppendVarint(rec, int64(kept))
		rec = appendVarBytes(rec, key)
		rec = appendVarBytes(rec, value)
		withHop := naming.WithHop(hdrs, source)
		rec = binary.AppendVarint(rec, int64(len(withHop)))
		for _, h := range withHop {
			rec = appendVarBytes(rec, []byte(h.Key))
			rec = appendVarBytes(rec, h.Value)
		}
		out = binary.AppendVarint(out, int64(len(rec)))
		out = append(out, rec...)
		up := v.base + offDelta
		if r := len(runs) - 1; r >= 0 && runs[r].up+int64(runs[r].n) == up {
			runs[r].n++
		} else {
			runs = append(runs, run{up: up, idx: kept, n: 1})
		}
		kept++
	}
	if len(recs) != 0 {
		return nil, false
	}
	b = &rawBatch{base: v.base, last: v.last, count: kept, loops: loops, epoch: v.epoch, timestamp: firstKept,
		crcStale: true, src: [][]byte{v.data}}
	if kept == 0 {
		return b, true
	}
	be := binary.BigEndian
	be.PutUint16(out[offBatchAttrs:], uint16(v.attrs)&^attrLogAppendTime)
	be.PutUint64(out[offBatchFirstTS:], uint64(first))
	be.PutUint64(out[offBatchMaxTS:], uint64(maxTS))
	be.PutUint32(out[offBatchLastDelt:], uint32(kept-1))
	be.PutUint32(out[offBatchCount:], uint32(kept))
	be.PutUint32(out[offBatchLength:], uint32(len(out)-batchLengthBase))
	b.data = out
	if len(runs) != 1 || runs[0].up != v.base || runs[0].n != kept {
		b.runs = runs
	}
	return b, true
}

// readVarBytes reads a varint-length-prefixed byte string (-1: null).
func readVarBytes(p []byte) (b, rest []byte, ok bool) {
	n, k := binary.Varint(p)
	if k <= 0 || n < -1 || n > int64(len(p)-k) {
		return nil, nil, false
	}
	if n == -1 {
		return nil, p[k:], true
	}
	return p[k : k+int(n) : k+int(n)], p[k+int(n):], true
}

func appendVarBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	return append(binary.AppendVarint(dst, int64(len(b))), b...)
}

// pairs are the offset-sync pairs of a forwarded batch that landed at
// base on the target: the ends of each run.
func (b *rawBatch) pairs(base int64) []pair {
	runs := b.runs
	if runs == nil {
		runs = []run{{up: b.base, idx: 0, n: b.count}}
	}
	out := make([]pair, 0, 2*len(runs))
	for _, r := range runs {
		if r.n == 0 {
			continue
		}
		out = append(out, pair{Upstream: r.up, Downstream: base + int64(r.idx)})
		if r.n > 1 {
			out = append(out, pair{Upstream: r.up + int64(r.n) - 1, Downstream: base + int64(r.idx+r.n) - 1})
		}
	}
	return out
}
