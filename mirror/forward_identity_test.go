package mirror

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror/mm2"
	"github.com/kdr-io/kdr/mirror/naming"
)

// TestForwardIdentityActiveActive is active-active under identity naming
// with uncompressed batches, which the workers forward after rewriting
// them (withHops): each record reaches the other side exactly once with
// its provenance, none comes back (the copies are left out of the batches
// as loops), and every offset sync maps a source record to its copy.
func TestForwardIdentityActiveActive(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	east.createTopic("orders", 3)
	west.createTopic("orders", 3)
	fe, fw := testFlow(east, west, "east", "west"), testFlow(west, east, "west", "east")
	fe.Naming, fw.Naming = NamingIdentity, NamingIdentity
	ew, we := startWorker(t, fe), startWorker(t, fw)
	pe, pw := batchProducer(t, east, kgo.NoCompression()), batchProducer(t, west, kgo.NoCompression())
	const ne, nw = 300, 240
	for i := 0; i < 3; i++ { // interleaved, so copies and local records mix in one log
		produceBatch(t, pe, orderRecords("east", i*ne/3, ne/3))
		produceBatch(t, pw, orderRecords("west", i*nw/3, nw/3))
	}
	waitCount(t, east, "orders", ne+nw, 30*time.Second)
	waitCount(t, west, "orders", ne+nw, 30*time.Second)
	for _, c := range []struct {
		w              *running
		copied, looped int64
	}{{ew, ne, nw}, {we, nw, ne}} {
		kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
			ts, _ := c.w.Status().Topic("orders")
			return ts.Records == c.copied && ts.SkippedLoop == c.looped,
				fmt.Sprintf("%s: copied %d, skipped %d as loops; want %d and %d", c.w.flow.Name(), ts.Records, ts.SkippedLoop, c.copied, c.looped)
		})
		st := c.w.Status()
		var fwd int64
		for _, p := range st.Partitions {
			fwd += p.Forwarded
		}
		if !st.ForwardBatches || fwd < 3 {
			t.Errorf("%s: ForwardBatches %v, %d batches forwarded; want the local batches forwarded", c.w.flow.Name(), st.ForwardBatches, fwd)
		}
		if got := metricSum(t, c.w.reg, "kdr_mirror_records_skipped_total", map[string]string{"reason": skipLoop}); got != float64(c.looped) {
			t.Errorf("%s: kdr_mirror_records_skipped_total{reason=loop} = %v, want %d", c.w.flow.Name(), got, c.looped)
		}
	}
	waitRefreshes(t, 2, ew, we)
	produced := map[string]*kgo.Record{}
	for _, r := range append(orderRecords("east", 0, ne), orderRecords("west", 0, nw)...) {
		produced[header(r, "id")] = r
	}
	want := slices.Sorted(slices.Values(append(wantIDs("east", ne), wantIDs("west", nw)...)))
	for name, c := range map[string]*cluster{"east": east, "west": west} {
		if got := ids(c.readAll("orders")); !slices.Equal(got, want) {
			t.Errorf("%s orders: %d records, want %d, each once", name, len(got), len(want))
		}
		// A copy names where it came from; local records have none; the
		// rest of each record is the producer's.
		other := map[string]string{"east": "west", "west": "east"}[name]
		for _, r := range flatten(c.readAll("orders")) {
			id := header(r, "id")
			origin := naming.Provenance(r.Headers)
			if copied := strings.HasPrefix(id, other+"-"); copied && !slices.Equal(origin, []string{other}) || !copied && len(origin) != 0 {
				t.Fatalf("record %s on %s has provenance %v", id, name, origin)
			}
			// The rest is what the producer sent.
			orig := *r
			orig.Headers = slices.DeleteFunc(slices.Clone(r.Headers), func(h kgo.RecordHeader) bool { return h.Key == naming.ProvenanceHeader })
			if w := produced[id]; w == nil || !sameRecord(&orig, w) {
				t.Fatalf("record %s on %s: %+v, produced %+v", id, name, orig, w)
			}
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
