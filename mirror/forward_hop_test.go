package mirror

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/mirror/naming"
)

// TestWithHopsHeaders checks withHops's headers against naming.WithHop, the
// record path's rewrite, for every shape of provenance: none, a plain chain
// (extended in place), chains naming.WithHop normalises (spaces, empty
// entries, Unicode space, several headers), headers without values, and
// chains that name the target (left out as loops).
func TestWithHopsHeaders(t *testing.T) {
	h := func(kv ...string) []kmsg.Header {
		var out []kmsg.Header
		for i := 0; i < len(kv); i += 2 {
			hd := kmsg.Header{Key: kv[i]}
			if kv[i+1] != "<nil>" {
				hd.Value = []byte(kv[i+1])
			}
			out = append(out, hd)
		}
		return out
	}
	const prov = naming.ProvenanceHeader
	shapes := [][]kmsg.Header{
		nil,
		h("a", "1"),
		h("a", "<nil>", "b", ""),
		h(prov, "north"),
		h("a", "1", prov, "north,south", "z", "<nil>"),
		h(prov, "north, south"),
		h(prov, ",north,,south,"),
		h(prov, "north\u00a0"),
		h(prov, ""),
		h(prov, "<nil>"),
		h(prov, "north", "a", "1", prov, "south"),
		h(prov, "west"),             // a loop
		h(prov, "north,west,south"), // a loop
		h(prov, "north", prov, " west"),
	}
	var recs []kmsg.Record
	for i, hs := range shapes {
		recs = append(recs, kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: int64(i),
			Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint("v", i)), Headers: hs})
	}
	for _, localOnly := range []bool{false, true} {
		t.Run(fmt.Sprint("local records only ", localOnly), func(t *testing.T) {
			checkWithHops(t, shapes, recs, localOnly)
		})
	}
}

// checkWithHops rewrites recs, one per header shape, and checks each against
// the record path: left out when it names the target (or, with localOnly,
// any cluster), else given naming.WithHop's headers.
func checkWithHops(t *testing.T, shapes [][]kmsg.Header, recs []kmsg.Record, localOnly bool) {
	v := oneView(t, makeBatch(100, 0, 1_700_000_000_000, recs, nil))
	b, ok := withHops(v, "east", "west", localOnly)
	if !ok {
		t.Fatal("withHops could not walk the batch")
	}
	b.fixCRC()
	decoded := decodeFetched(t, b.data, 0)
	next, skipped := 0, int32(0)
	for i, hs := range shapes {
		in := make([]kgo.RecordHeader, len(hs))
		for k, hd := range hs {
			in[k] = kgo.RecordHeader{Key: hd.Key, Value: hd.Value}
		}
		if naming.Visited(in, "west") || localOnly && naming.Mirrored(in) {
			skipped++
			continue
		}
		want := naming.WithHop(in, "east")
		if next >= len(decoded) {
			t.Fatalf("record %d missing from the rewritten batch", i)
		}
		r := decoded[next]
		next++
		if string(r.Key) != fmt.Sprint("k", i) {
			t.Fatalf("rewritten record %d is %q, want k%d", next-1, r.Key, i)
		}
		if !slices.EqualFunc(r.Headers, want, func(a, b kgo.RecordHeader) bool {
			return a.Key == b.Key && string(a.Value) == string(b.Value) && (a.Value == nil) == (b.Value == nil)
		}) {
			t.Errorf("record %d: headers %q, want %q (naming.WithHop)", i, r.Headers, want)
		}
	}
	// Without localOnly the three chains naming west; with it every chain
	// naming a cluster (all but the five shapes without one).
	want := map[bool]int32{false: 3, true: int32(len(shapes)) - 5}[localOnly]
	if next != len(decoded) || b.loops != skipped || skipped != want || b.count != int32(len(decoded)) {
		t.Fatalf("%d records rewritten, %d read back, %d left out (record path %d); want %d left out", b.count, len(decoded), b.loops, skipped, want)
	}
}

// BenchmarkWithHops rewrites a batch of 100 1 KiB records with no headers,
// as the mirror bench's are, for identity naming.
func BenchmarkWithHops(b *testing.B) {
	recs := make([]kmsg.Record, 100)
	for i := range recs {
		recs[i] = kmsg.Record{OffsetDelta: int32(i), Value: make([]byte, 1024)}
	}
	v := splitOne(b, makeBatch(0, 0, 1_700_000_000_000, recs, nil))
	b.SetBytes(int64(len(v.data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := withHops(v, "east", "west", false); !ok {
			b.Fatal("not walked")
		}
	}
}

func splitOne(b *testing.B, data []byte) *batchView {
	views, _, err := splitBatches(data)
	if err != nil || len(views) != 1 {
		b.Fatal(err)
	}
	return &views[0]
}
