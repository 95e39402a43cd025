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
	walked := walkRecords(v.data[batchHeaderLen:], v.count, func(r recordHead) bool {
		if r.offDelta <= prevDelta || v.base+r.offDelta > v.last {
			return false // offsets out of the batch's range or order
		}
		prevDelta = r.offDelta
		p := r.rest
		var key, value []byte
		var ok bool
		if key, p, ok = readVarBytes(p); !ok {
			return false
		}
		if value, p, ok = readVarBytes(p); !ok {
			return false
		}
		count, k := binary.Varint(p)
		if k <= 0 || count < 0 || count > int64(len(p)) {
			return false
		}
		p = p[k:]
		hdrs = hdrs[:0]
		for range count {
			var hk, hv []byte
			if hk, p, ok = readVarBytes(p); !ok || hk == nil {
				return false
			}
			if hv, p, ok = readVarBytes(p); !ok {
				return false
			}
			hdrs = append(hdrs, kgo.RecordHeader{Key: string(hk), Value: hv})
		}
		if len(p) != 0 {
			return false
		}
		if naming.Visited(hdrs, target) {
			loops++
			return true
		}
		ts := v.first + r.tsDelta
		if v.appendTime() {
			ts = v.max
		}
		if kept == 0 {
			firstKept = ts
		}
		maxTS = max(maxTS, ts)
		rec = append(rec[:0], r.attrs)
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
		up := v.base + r.offDelta
		if i := len(runs) - 1; i >= 0 && runs[i].up+int64(runs[i].n) == up {
			runs[i].n++
		} else {
			runs = append(runs, run{up: up, idx: kept, n: 1})
		}
		kept++
		return true
	})
	if !walked {
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
