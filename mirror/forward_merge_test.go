package mirror

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror/mm2"
)

// TestForwardMergeBatches merges three consecutive batches with different
// first timestamps, negative and positive timestamp deltas, headers, null
// keys and values, and checks that a consumer reads the merged batch
// exactly as it read the three.
func TestForwardMergeBatches(t *testing.T) {
	mk := func(base int64, firstTS int64, n int) []byte {
		recs := make([]kmsg.Record, n)
		for i := range recs {
			recs[i] = kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: int64(i*7 - 5),
				Key: []byte(fmt.Sprint("k", base+int64(i))), Value: bytes.Repeat([]byte{byte(i)}, 300*i),
				Headers: []kmsg.Header{{Key: "h", Value: []byte(fmt.Sprint(base))}}}
			if i == 1 {
				recs[i].Key = nil
			}
			if i == 2 {
				recs[i].Value = nil
			}
		}
		return makeBatch(base, 0, firstTS, recs, nil)
	}
	parts := [][]byte{mk(10, 1_700_000_000_000, 3), mk(13, 1_700_000_100_000, 7), mk(20, 1_699_999_000_000, 200)}
	var want []*kgo.Record
	var bs []*rawBatch
	for _, p := range parts {
		want = append(want, decodeFetched(t, p, 0)...)
		bs = append(bs, oneView(t, p).toRaw())
	}
	m := mergeBatches(bs)
	if m == nil {
		t.Fatal("mergeBatches refused well-formed batches")
	}
	if m.base != 10 || m.last != 219 || m.count != 210 || m.timestamp != 1_700_000_000_000 {
		t.Fatalf("merged batch covers %d..%d, %d records, timestamp %d", m.base, m.last, m.count, m.timestamp)
	}
	m.stamp(7, 1, 0, testZeros)
	got := decodeFetched(t, m.data, 0)
	if len(got) != len(want) {
		t.Fatalf("%d records decoded from the merged batch, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Offset != w.Offset || !g.Timestamp.Equal(w.Timestamp) || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) ||
			(g.Key == nil) != (w.Key == nil) || (g.Value == nil) != (w.Value == nil) || fmt.Sprint(g.Headers) != fmt.Sprint(w.Headers) {
			t.Fatalf("record %d: merged %+v, want %+v", i, g, w)
		}
	}
	if v := oneView(t, m.data); v.max != 1_700_000_100_000+6*7-5 || v.checkCRC() != nil {
		t.Fatalf("merged header: max timestamp %d, CRC %v", v.max, v.checkCRC())
	}
	// Records that cannot be walked: no merge.
	bad := oneView(t, mk(300, 1, 2)).toRaw()
	bad.data[batchHeaderLen] = 0x7f // a record length past the end
	if mergeBatches([]*rawBatch{bs[0], bad}) != nil {
		t.Fatal("mergeBatches merged a batch whose records do not parse")
	}
}

// TestForwardMergesSmallBatches produces one record per batch; the worker
// merges them into few Produce batches and the target's consumers read
// every record once, as the source's do, with exact offset syncs.
func TestForwardMergesSmallBatches(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	east.createTopic("tiny", 1)
	const n = 400
	cl := batchProducer(t, east, kgo.NoCompression())
	for i := range n / 2 {
		produceBatch(t, cl, []*kgo.Record{{Topic: "tiny", Value: []byte(fmt.Sprint("v", i)), Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}}}})
	}
	w := startWorker(t, testFlow(east, west, "east", "west"))
	for i := n / 2; i < n; i++ {
		produceBatch(t, cl, []*kgo.Record{{Topic: "tiny", Value: []byte(fmt.Sprint("v", i)), Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}}}})
	}
	waitCount(t, west, "east.tiny", n, 30*time.Second)
	src, dst := east.readAll("tiny")[0], west.readAll("east.tiny")[0]
	if len(src) != n || len(dst) != n {
		t.Fatalf("%d records on the source, %d on the target, want %d", len(src), len(dst), n)
	}
	for i := range src {
		if !sameRecord(src[i], dst[i]) || dst[i].Offset != int64(i) {
			t.Fatalf("record %d: source %+v, target %+v", i, src[i], dst[i])
		}
	}
	st := w.Status()
	if len(st.Partitions) != 1 {
		t.Fatalf("%d partitions owned, want 1", len(st.Partitions))
	}
	if fwd := st.Partitions[0].Forwarded; fwd < 1 || fwd >= n/2 {
		t.Errorf("%d batches forwarded for %d one-record batches; want them merged", fwd, n)
	}
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		var newest int64 = -1
		for _, r := range east.readAll(mm2.OffsetSyncsTopic("west"))[0] {
			s, err := mm2.DecodeOffsetSync(r.Key, r.Value)
			if err != nil || s.Topic != "tiny" || s.UpstreamOffset != s.DownstreamOffset {
				t.Fatalf("offset sync %+v, %v: want upstream = downstream", s, err)
			}
			newest = max(newest, s.UpstreamOffset)
		}
		return newest == n-1, fmt.Sprintf("newest sync for offset %d, want %d", newest, n-1)
	})
	for kind, e := range w.Status().Errors {
		t.Errorf("unexpected %s errors: %+v", kind, e)
	}
}
