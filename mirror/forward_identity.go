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
// others get source appended to their provenance header. With localOnly
// (Flow.LocalRecordsOnly) a record that was mirrored into the source is
// left out as well, and counted the same way. Kept records are
// renumbered densely; runs map them back to source offsets. A log append
// time batch becomes create time at the append time, as in withCreateTime.
// ok is false for records it cannot walk; the caller then decodes the
// batch instead.
func withHops(v *batchView, source, target string, localOnly bool) (b *rawBatch, ok bool) {
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
		prov, walked := scanProvenance(p, count, target)
		if !walked {
			return false
		}
		if prov.visited || localOnly && prov.mirrored {
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
		if prov.n == 0 || prov.n == 1 && prov.clean {
			rec = appendHopInPlace(rec, p, count, prov.n == 0, source)
		} else {
			// Spaces, empty entries or several provenance headers:
			// naming.WithHop's normal form, through decoded headers.
			hdrs = hdrs[:0]
			for q := p; len(q) > 0; {
				hk, q2, _ := readVarBytes(q)
				hv, q3, _ := readVarBytes(q2)
				hdrs = append(hdrs, kgo.RecordHeader{Key: string(hk), Value: hv})
				q = q3
			}
			withHop := naming.WithHop(hdrs, source)
			rec = binary.AppendVarint(rec, int64(len(withHop)))
			for _, h := range withHop {
				rec = appendVarBytes(rec, []byte(h.Key))
				rec = appendVarBytes(rec, h.Value)
			}
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

// provenance is what scanProvenance learnt of a record's headers.
type provenance struct {
	n       int  // naming.ProvenanceHeader headers
	clean   bool // the one such header is a plain chain: "a,b", no spaces or empty entries
	visited bool // the chain names the target
	// mirrored: the chain names some cluster (naming.Mirrored).
	mirrored bool
}

// scanProvenance walks the count headers in p, which must be exactly
// them, without allocating. walked is false for headers it cannot read.
func scanProvenance(p []byte, count int64, target string) (prov provenance, walked bool) {
	for range count {
		hk, rest, ok := readVarBytes(p)
		if !ok || hk == nil {
			return prov, false
		}
		hv, rest, ok := readVarBytes(rest)
		if !ok {
			return prov, false
		}
		p = rest
		if string(hk) != naming.ProvenanceHeader {
			continue
		}
		prov.n++
		prov.clean = plainChain(hv)
		h := []kgo.RecordHeader{{Key: naming.ProvenanceHeader, Value: hv}}
		prov.visited = prov.visited || naming.Visited(h, target)
		prov.mirrored = prov.mirrored || naming.Mirrored(h)
	}
	return prov, len(p) == 0
}

// plainChain reports whether v is aliases joined by single commas, printable
// ASCII without spaces and no empty entries: the form naming.WithHop
// writes, which the hop then extends by appending ",alias". (Anything else,
// Unicode spaces included, goes through naming.WithHop's trimming.)
func plainChain(v []byte) bool {
	if len(v) == 0 || v[0] == ',' || v[len(v)-1] == ',' {
		return false
	}
	for i, c := range v {
		if c <= ' ' || c >= 0x7f || c == ',' && v[i-1] == ',' {
			return false
		}
	}
	return true
}

// appendHopInPlace appends the count headers in p to rec as they are,
// except that the provenance header gets ",source" appended, or, when add
// is set (there is none), a provenance header of source is added last:
// what naming.WithHop makes of headers with at most one, plain, chain.
func appendHopInPlace(rec, p []byte, count int64, add bool, source string) []byte {
	n := count
	if add {
		n++
	}
	rec = binary.AppendVarint(rec, n)
	for q := p; len(q) > 0; {
		hk, q2, _ := readVarBytes(q)
		hv, q3, _ := readVarBytes(q2)
		if string(hk) == naming.ProvenanceHeader {
			rec = appendVarBytes(rec, hk)
			rec = binary.AppendVarint(rec, int64(len(hv)+1+len(source)))
			rec = append(append(append(rec, hv...), ','), source...)
		} else {
			rec = append(rec, q[:len(q)-len(q3)]...)
		}
		q = q3
	}
	if add {
		rec = binary.AppendVarint(rec, int64(len(naming.ProvenanceHeader)))
		rec = append(rec, naming.ProvenanceHeader...)
		rec = binary.AppendVarint(rec, int64(len(source)))
		rec = append(rec, source...)
	}
	return rec
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
