package mirror

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror/mm2"
	"github.com/kdr-io/kdr/mirror/naming"
)

// orderRecords makes n records for a 3-partition topic with keys, values,
// headers and distinct timestamps, including null keys and tombstones.
func orderRecords(prefix string, from, n int) []*kgo.Record {
	var out []*kgo.Record
	for i := from; i < from+n; i++ {
		r := &kgo.Record{
			Topic: "orders", Partition: int32(i % 3),
			Key:   []byte(fmt.Sprintf("k-%d", i)),
			Value: []byte(fmt.Sprintf("%s-%d", prefix, i)),
			Headers: []kgo.RecordHeader{
				{Key: "id", Value: []byte(fmt.Sprintf("%s-%d", prefix, i))},
				{Key: "seq", Value: []byte(strconv.Itoa(i))},
				{Key: "empty", Value: nil},
			},
			Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)*7),
		}
		switch i % 50 {
		case 7:
			r.Key = nil
		case 8:
			r.Value = nil // tombstone
		}
		out = append(out, r)
	}
	return out
}

func sameRecord(a, b *kgo.Record) bool {
	if !bytes.Equal(a.Key, b.Key) || (a.Key == nil) != (b.Key == nil) ||
		!bytes.Equal(a.Value, b.Value) || (a.Value == nil) != (b.Value == nil) ||
		a.Timestamp.UnixMilli() != b.Timestamp.UnixMilli() || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}

func TestMirrorActivePassive(t *testing.T) {
	start := time.Now()
	east, west := startCluster(t), startCluster(t)
	east.createTopic("orders", 3)
	const n = 600
	recs := orderRecords("v", 0, n)
	east.produce(recs[:n/2]...)
	w := startWorker(t, testFlow(east, west, "east", "west"))
	east.produce(recs[n/2:]...)
	waitCount(t, west, "east.orders", n, 30*time.Second)

	src, dst := east.readAll("orders"), west.readAll("east.orders")
	for p := int32(0); p < 3; p++ {
		if len(dst[p]) != len(src[p]) {
			t.Fatalf("partition %d: %d records on the target, %d on the source", p, len(dst[p]), len(src[p]))
		}
		for i := range src[p] {
			if !sameRecord(src[p][i], dst[p][i]) {
				t.Fatalf("partition %d record %d differs:\nsource %+v\ntarget %+v", p, i, src[p][i], dst[p][i])
			}
		}
	}
	if ends := west.ends("east.orders"); len(ends) != 3 {
		t.Errorf("east.orders has %d partitions, want 3", len(ends))
	}

	// Offset syncs: every one decodes, names a source partition, and maps a
	// source record to its copy; the last record of every partition is
	// synced (the emitter syncs the end of every acknowledged batch).
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		syncs := east.readAll(mm2.OffsetSyncsTopic("west"))
		last := map[int32]int64{}
		for _, r := range syncs[0] {
			s, err := mm2.DecodeOffsetSync(r.Key, r.Value)
			if err != nil {
				t.Fatalf("offset sync at %d: %v", r.Offset, err)
			}
			if s.Topic != "orders" || s.Partition < 0 || s.Partition > 2 {
				t.Fatalf("offset sync for %s/%d", s.Topic, s.Partition)
			}
			if s.UpstreamOffset >= int64(len(src[s.Partition])) || s.DownstreamOffset >= int64(len(dst[s.Partition])) ||
				!sameRecord(src[s.Partition][s.UpstreamOffset], dst[s.Partition][s.DownstreamOffset]) {
				t.Fatalf("offset sync %+v does not map a record to its copy", s)
			}
			last[s.Partition] = max(last[s.Partition], s.UpstreamOffset)
		}
		for p := int32(0); p < 3; p++ {
			if last[p] != int64(len(src[p])-1) {
				return false, fmt.Sprintf("partition %d: newest sync is for offset %d, want %d", p, last[p], len(src[p])-1)
			}
		}
		if got := w.Status().OffsetSyncs; got != int64(len(syncs[0])) {
			return false, fmt.Sprintf("status counts %d offset syncs, the topic holds %d", got, len(syncs[0]))
		}
		return true, ""
	})

	// Heartbeats reach the target and decode.
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		return west.count(mm2.HeartbeatsTopic) > 0, "no heartbeats yet"
	})
	for _, r := range west.readAll(mm2.HeartbeatsTopic)[0] {
		hb, err := mm2.DecodeHeartbeat(r.Key, r.Value)
		if err != nil || hb.SourceAlias != "east" || hb.TargetAlias != "west" || time.Since(hb.Timestamp) > time.Minute {
			t.Fatalf("heartbeat %+v, %v", hb, err)
		}
	}

	st := w.Status()
	if ts, _ := st.Topic("orders"); ts.Records != n || ts.RemoteTopic != "east.orders" {
		t.Errorf("status of orders: %+v", ts)
	}
	if got := metricSum(t, w.reg, "kdr_mirror_records_total", map[string]string{"flow": "east->west", "topic": "orders"}); got != n {
		t.Errorf("kdr_mirror_records_total = %v, want %d", got, n)
	}
	if got := metricSum(t, w.reg, "kdr_mirror_assigned_partitions", nil); got != 3 {
		t.Errorf("kdr_mirror_assigned_partitions = %v, want 3", got)
	}
	// Bytes: at least every record's key, value and headers, and at most
	// that plus a record's framing in a batch (length, attributes, deltas,
	// key and value lengths, header count: well under 32 bytes here).
	payload := 0
	for _, r := range recs {
		payload += len(r.Key) + len(r.Value)
		for _, h := range r.Headers {
			payload += len(h.Key) + len(h.Value)
		}
	}
	topicLabels := map[string]string{"flow": "east->west", "topic": "orders"}
	if got := metricSum(t, w.reg, "kdr_mirror_bytes_total", topicLabels); got < float64(payload) || got > float64(payload+32*n) {
		t.Errorf("kdr_mirror_bytes_total = %v, want between the %d bytes of keys, values and headers and %d", got, payload, payload+32*n)
	}
	// A partition's record age is its last record's, timestamped in 2023,
	// at an acknowledgement during the test; once caught up nothing is
	// behind.
	for p := range int32(3) {
		ts := src[p][len(src[p])-1].Timestamp
		lo, hi := start.Sub(ts).Seconds(), time.Since(ts).Seconds()
		age := metricSum(t, w.reg, "kdr_mirror_record_age_seconds", map[string]string{"topic": "orders", "partition": strconv.Itoa(int(p))})
		if age < lo || age > hi {
			t.Errorf("kdr_mirror_record_age_seconds{partition=%d} = %.3f s, want the age of its last record at a time in the test: %.3f..%.3f s",
				p, age, lo, hi)
		}
	}
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		lag, lagRecs := metricSum(t, w.reg, "kdr_mirror_lag_seconds", topicLabels), metricSum(t, w.reg, "kdr_mirror_lag_records", topicLabels)
		return lag == 0 && lagRecs == 0, fmt.Sprintf("caught up, yet kdr_mirror_lag_seconds sums to %v and kdr_mirror_lag_records to %v", lag, lagRecs)
	})
	// Prefix naming forwards batches (the harness's producer compresses
	// small batches, which are copied as records instead; forward_test.go
	// counts forwarded batches).
	if !st.ForwardBatches {
		t.Error("Status.ForwardBatches is false under prefix naming")
	}
	for kind, e := range st.Errors {
		t.Errorf("unexpected %s errors: %+v", kind, e)
	}
}

// waitRefreshes waits until every worker has completed n more topic
// refreshes, so that each has seen the topics that exist now.
func waitRefreshes(t *testing.T, n int64, ws ...*running) {
	t.Helper()
	for _, w := range ws {
		from := w.Status().Refreshes
		kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
			got := w.Status().Refreshes
			return got >= from+n, fmt.Sprintf("%s made %d refreshes, want %d", w.flow.Name(), got-from, n)
		})
	}
}

func TestMirrorActiveActivePrefix(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	east.createTopic("orders", 3)
	west.createTopic("orders", 3)
	ew := startWorker(t, testFlow(east, west, "east", "west"))
	we := startWorker(t, testFlow(west, east, "west", "east"))
	const ne, nw = 300, 210
	east.produce(orderRecords("east", 0, ne)...)
	west.produce(orderRecords("west", 0, nw)...)

	waitCount(t, west, "east.orders", ne, 30*time.Second)
	waitCount(t, east, "west.orders", nw, 30*time.Second)
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		return west.hasTopic("east.heartbeats") && east.hasTopic("west.heartbeats"), "heartbeats not mirrored yet"
	})
	// Both workers have now seen the remote topics on their sources more
	// than once; none may come back.
	waitRefreshes(t, 3, ew, we)
	for _, c := range []struct {
		cl   *cluster
		name string
	}{{east, "east"}, {west, "west"}} {
		for _, topic := range c.cl.topics() {
			if mm2.IsInternalTopic(topic) {
				continue
			}
			if chain := naming.SourceChain(naming.Prefix{}, topic); slices.Contains(chain, c.name) || len(chain) > 1 {
				t.Errorf("%s has %s: a record came back", c.name, topic)
			}
		}
	}
	if east.hasTopic("west.east.orders") || west.hasTopic("east.west.orders") {
		t.Fatal("a mirrored topic was mirrored back")
	}
	if got, want := ids(west.readAll("east.orders")), wantIDs("east", ne); !slices.Equal(got, want) {
		t.Errorf("east.orders on west: %d records, want %d (each once)", len(got), len(want))
	}
	if got, want := ids(east.readAll("west.orders")), wantIDs("west", nw); !slices.Equal(got, want) {
		t.Errorf("west.orders on east: %d records, want %d (each once)", len(got), len(want))
	}
	if east.count("orders") != ne || west.count("orders") != nw {
		t.Errorf("local topics changed: east orders %d, west orders %d", east.count("orders"), west.count("orders"))
	}
	ts1, _ := ew.Status().Topic("orders")
	ts2, _ := we.Status().Topic("orders")
	if ts1.Records != ne || ts2.Records != nw {
		t.Errorf("copied %d east->west and %d west->east, want %d and %d", ts1.Records, ts2.Records, ne, nw)
	}
}

// header returns the value of the record's header key.
func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// ids returns the sorted "id" headers of recs.
func ids(recs map[int32][]*kgo.Record) []string {
	var out []string
	for _, r := range flatten(recs) {
		out = append(out, header(r, "id"))
	}
	slices.Sort(out)
	return out
}

// wantIDs is the sorted ids of orderRecords(prefix, 0, n).
func wantIDs(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s-%d", prefix, i))
	}
	slices.Sort(out)
	return out
}

func TestMirrorIdentityActiveActive(t *testing.T) {
	identityActiveActive(t, func(c *cluster, recs []*kgo.Record) { c.produce(recs...) })
}

// identityActive is a running east⇄west pair under identity naming.
type identityActive struct {
	east, west *cluster
	ew, we     *running
}

// identityActiveActive runs east⇄west under identity naming, producing
// interleaved records on both sides with produce, and checks that each
// record reaches the other side exactly once, as produced plus its
// provenance, and that none comes back (counted as loops).
func identityActiveActive(t *testing.T, produce func(c *cluster, recs []*kgo.Record)) identityActive {
	t.Helper()
	east, west := startCluster(t), startCluster(t)
	east.createTopic("orders", 3)
	west.createTopic("orders", 3)
	fe, fw := testFlow(east, west, "east", "west"), testFlow(west, east, "west", "east")
	fe.Naming, fw.Naming = NamingIdentity, NamingIdentity
	ew, we := startWorker(t, fe), startWorker(t, fw)
	const ne, nw = 300, 240
	for i := 0; i < 3; i++ { // interleaved, so copies and local records mix
		produce(east, orderRecords("east", i*ne/3, ne/3))
		produce(west, orderRecords("west", i*nw/3, nw/3))
	}
	waitCount(t, east, "orders", ne+nw, 30*time.Second)
	waitCount(t, west, "orders", ne+nw, 30*time.Second)
	// Each worker has read everything on its source: it copied the local
	// records and skipped the ones the target sent it.
	for _, c := range []struct {
		w              *running
		copied, looped int64
	}{{ew, ne, nw}, {we, nw, ne}} {
		kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
			ts, _ := c.w.Status().Topic("orders")
			return ts.Records == c.copied && ts.SkippedLoop == c.looped,
				fmt.Sprintf("%s: copied %d, skipped %d as loops; want %d and %d", c.w.flow.Name(), ts.Records, ts.SkippedLoop, c.copied, c.looped)
		})
		if got := metricSum(t, c.w.reg, "kdr_mirror_records_skipped_total", map[string]string{"reason": skipLoop}); got != float64(c.looped) {
			t.Errorf("%s skipped %v records as loops, want %d", c.w.flow.Name(), got, c.looped)
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
			t.Errorf("%s orders: %d records, want %d (each once)", name, len(got), len(want))
		}
		// Provenance: a copy names where it came from; local records have
		// none; the rest of each record is what its producer sent.
		other := map[string]string{"east": "west", "west": "east"}[name]
		for _, r := range flatten(c.readAll("orders")) {
			id := header(r, "id")
			origin := naming.Provenance(r.Headers)
			if copied := strings.HasPrefix(id, other+"-"); copied && !slices.Equal(origin, []string{other}) || !copied && len(origin) != 0 {
				t.Fatalf("record %s on %s has provenance %v", id, name, origin)
			}
			orig := *r
			orig.Headers = slices.DeleteFunc(slices.Clone(r.Headers), func(h kgo.RecordHeader) bool { return h.Key == naming.ProvenanceHeader })
			if p := produced[id]; p == nil || !sameRecord(&orig, p) {
				t.Fatalf("record %s on %s: %+v, produced %+v", id, name, orig, p)
			}
		}
	}
	return identityActive{east: east, west: west, ew: ew, we: we}
}

func flatten(m map[int32][]*kgo.Record) []*kgo.Record {
	var out []*kgo.Record
	for _, rs := range m {
		out = append(out, rs...)
	}
	return out
}

// TestMirrorCompressedTarget copies with Compression zstd: the target gets
// the same records, in zstd batches.
func TestMirrorCompressedTarget(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	east.createTopic("orders", 3)
	const n = 300
	east.produce(orderRecords("compressible-compressible-compressible", 0, n)...)
	f := testFlow(east, west, "east", "west")
	f.Compression = "zstd"
	startWorker(t, f)
	waitCount(t, west, "east.orders", n, 30*time.Second)
	src, dst := east.readAll("orders"), west.readAll("east.orders")
	for p := int32(0); p < 3; p++ {
		if len(dst[p]) != len(src[p]) {
			t.Fatalf("partition %d: %d records on the target, %d on the source", p, len(dst[p]), len(src[p]))
		}
		for i := range src[p] {
			if !sameRecord(src[p][i], dst[p][i]) {
				t.Fatalf("partition %d record %d differs", p, i)
			}
			if c := dst[p][i].Attrs.CompressionType(); c != 4 {
				t.Fatalf("partition %d record %d: compression type %d on the target, want 4 (zstd)", p, i, c)
			}
		}
	}
}

// TestMirrorIdentityMeshOfThree runs an active-active mesh of three clusters
// under identity naming, every flow with LocalRecordsOnly (as a topology's
// active-active pattern of three sets it). Each record must reach each other
// cluster exactly once: forwarded on, a record reached a cluster twice,
// straight from its origin and through the third cluster (the kdr-origin
// header stops loops, not second paths), and every cluster held 5/3 of the
// records.
func TestMirrorIdentityMeshOfThree(t *testing.T) {
	names := []string{"east", "west", "central"}
	cs := map[string]*cluster{}
	for _, n := range names {
		cs[n] = startCluster(t)
		cs[n].createTopic("orders", 3)
	}
	var workers []*running
	for _, a := range names {
		for _, b := range names {
			if a != b {
				f := testFlow(cs[a], cs[b], a, b)
				f.Naming, f.LocalRecordsOnly = NamingIdentity, true
				workers = append(workers, startWorker(t, f))
			}
		}
	}
	const n = 60
	for i := range 3 { // interleaved, so copies and local records mix
		for _, name := range names {
			cs[name].produce(orderRecords(name, i*n/3, n/3)...)
		}
	}
	var want []string
	for _, name := range names {
		want = append(want, wantIDs(name, n)...)
	}
	slices.Sort(want)
	for _, name := range names {
		waitCount(t, cs[name], "orders", 3*n, 30*time.Second)
	}
	// Every worker has read its whole source: n copied, 2n skipped.
	for _, w := range workers {
		kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
			ts, _ := w.Status().Topic("orders")
			return ts.Records == n && ts.SkippedLoop == 2*n,
				fmt.Sprintf("%s: copied %d, skipped %d; want %d and %d", w.flow.Name(), ts.Records, ts.SkippedLoop, n, 2*n)
		})
	}
	waitRefreshes(t, 2, workers...)
	for _, name := range names {
		if got := ids(cs[name].readAll("orders")); !slices.Equal(got, want) {
			t.Errorf("%s orders: %d records, want %d, each once", name, len(got), len(want))
		}
	}
}
