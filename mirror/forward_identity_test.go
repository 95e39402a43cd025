package mirror

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror/mm2"
	"github.com/kdr-io/kdr/mirror/offsets"
)

// TestForwardIdentityActiveActive is active-active under identity naming
// with uncompressed batches, which the workers forward after rewriting
// them (withHops): each record reaches the other side exactly once with
// its provenance, none comes back (the copies are left out of the batches
// as loops), and every offset sync maps a source record to its copy.
func TestForwardIdentityActiveActive(t *testing.T) {
	producers := map[*cluster]*kgo.Client{}
	aa := identityActiveActive(t, func(c *cluster, recs []*kgo.Record) {
		if producers[c] == nil {
			producers[c] = batchProducer(t, c, kgo.NoCompression())
		}
		produceBatch(t, producers[c], recs)
	})
	east, west, ew, we := aa.east, aa.west, aa.ew, aa.we
	for _, w := range []*running{ew, we} {
		st := w.Status()
		var fwd int64
		for _, p := range st.Partitions {
			fwd += p.Forwarded
		}
		if !st.ForwardBatches || fwd < 3 {
			t.Errorf("%s: ForwardBatches %v, %d batches forwarded; want the local batches forwarded", w.flow.Name(), st.ForwardBatches, fwd)
		}
	}
	// Offset syncs (east->west, on east): each maps an east record to its
	// copy on west, across the gaps the left-out copies leave.
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		src, dst := east.readAll("orders"), west.readAll("orders")
		newest := map[int32]int64{}
		for _, r := range east.readAll(mm2.OffsetSyncsTopic("west"))[0] {
			s, err := mm2.DecodeOffsetSync(r.Key, r.Value)
			if err != nil {
				t.Fatalf("offset sync at %d: %v", r.Offset, err)
			}
			if s.Topic != "orders" {
				continue // heartbeats are mirrored too
			}
			if offsets.IsPosition(r) {
				// The worker passed west-made records after its last copy:
				// the next east-made record lands at the position.
				pos := offsets.PositionFromWire(offsets.Pair{Upstream: s.UpstreamOffset, Downstream: s.DownstreamOffset})
				src, dst, u, d := src[s.Partition], dst[s.Partition], pos.Upstream, pos.Downstream
				next := u
				for next < int64(len(src)) && !strings.HasPrefix(header(src[next], "id"), "east-") {
					next++
				}
				if u < 1 || u > int64(len(src)) || strings.HasPrefix(header(src[u-1], "id"), "east-") || d > int64(len(dst)) ||
					next < int64(len(src)) && d < int64(len(dst)) && header(src[next], "id") != header(dst[d], "id") {
					t.Fatalf("position %+v: the record before it is not a west-made one, or the next east-made record does not land there", s)
				}
				continue
			}
			if s.UpstreamOffset >= int64(len(src[s.Partition])) || s.DownstreamOffset >= int64(len(dst[s.Partition])) ||
				header(src[s.Partition][s.UpstreamOffset], "id") != header(dst[s.Partition][s.DownstreamOffset], "id") {
				t.Fatalf("offset sync %+v does not map a record to its copy", s)
			}
			newest[s.Partition] = max(newest[s.Partition], s.UpstreamOffset)
		}
		for p := int32(0); p < 3; p++ {
			// The newest east-made record of the partition is synced.
			last := int64(-1)
			for i, r := range src[p] {
				if strings.HasPrefix(header(r, "id"), "east-") {
					last = int64(i)
				}
			}
			if newest[p] < last {
				return false, fmt.Sprintf("partition %d: newest sync for offset %d, want at least %d", p, newest[p], last)
			}
		}
		return true, ""
	})
	for _, w := range []*running{ew, we} {
		for kind, e := range w.Status().Errors {
			t.Errorf("%s: unexpected %s errors: %+v", w.flow.Name(), kind, e)
		}
	}
}
