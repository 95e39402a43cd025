package mirror

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/clientsec"
	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror/mm2"
)

// TestMirrorOffsetSyncsOnTarget runs a flow whose offset syncs are kept on
// the target (offset-syncs.topic.location=target): the syncs topic,
// mm2-offset-syncs.<source>.internal as MM2 names it there, exists on the
// target only, holds MM2 OffsetSyncs of the copied partitions, and
// a group's offsets translate exactly, also after the worker is replaced
// (the new one reads the syncs back from the target).
func TestMirrorOffsetSyncsOnTarget(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	const parts, group = 3, "billing"
	east.createTopic("orders", parts)
	east.produce(seqRecords("orders", parts, 0, 600)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	commit := func(at map[int32]int64) {
		t.Helper()
		offs := kadm.Offsets{}
		for p, o := range at {
			offs.Add(kadm.Offset{Topic: "orders", Partition: p, At: o, LeaderEpoch: -1})
		}
		if err := east.adm.CommitAllOffsets(ctx, group, offs); err != nil {
			t.Fatal(err)
		}
	}
	// Each record is copied once and the target topic starts empty, so
	// the exact translation of source offset o is o.
	synced := func(at map[int32]int64) {
		t.Helper()
		waitGroupAt(t, west, group, "east.orders", at, 30*time.Second)
	}

	commit(map[int32]int64{0: 200, 1: 37, 2: 1})

	f := testFlow(east, west, "east", "west")
	f.OffsetSyncsLocation = SyncsOnTarget
	f.CheckpointInterval = 200 * time.Millisecond
	w := startWorker(t, f)
	waitCount(t, west, "east.orders", 600, 30*time.Second)
	synced(map[int32]int64{0: 200, 1: 37, 2: 1})

	// Named after the source, as MM2 names it on the target.
	syncs := mm2.OffsetSyncsTopic("east")
	for _, name := range []string{syncs, mm2.OffsetSyncsTopic("west")} {
		if east.hasTopic(name) {
			t.Errorf("%s was created on the source", name)
		}
	}
	copied := map[int32]bool{}
	for _, r := range west.readAll(syncs)[0] {
		s, err := mm2.DecodeOffsetSync(r.Key, r.Value)
		if err != nil {
			t.Fatalf("%s on the target: %v", syncs, err)
		}
		if s.Topic != "orders" || s.UpstreamOffset != s.DownstreamOffset {
			t.Fatalf("offset sync %+v: want orders with equal offsets", s)
		}
		copied[s.Partition] = true
	}
	if len(copied) != parts {
		t.Fatalf("%s on the target has syncs of partitions %v, want all %d", syncs, copied, parts)
	}

	// A new worker reads the syncs back from the target.
	w.stop()
	east.produce(seqRecords("orders", parts, 600, 300)...)
	commit(map[int32]int64{0: 290, 1: 250, 2: 3})
	startWorker(t, f)
	waitCount(t, west, "east.orders", 900, 30*time.Second)
	synced(map[int32]int64{0: 290, 1: 250, 2: 3})
	checkRecords(t, west, "east.orders", parts, 900)
}

// TestMirrorReadOnlySource mirrors from a cluster where the workers'
// principal may only read: READ and DESCRIBE (and DESCRIBE_CONFIGS) on
// topics, READ and DESCRIBE on groups, as for any consumer. With the
// offset syncs on the target every record arrives and a group's offsets
// are synced exactly; with them on the source the worker says that it may
// not create the syncs topic there, and what to do.
func TestMirrorReadOnlySource(t *testing.T) {
	const parts, group = 3, "billing"
	read := func(res kmsg.ACLResourceType, ops ...kmsg.ACLOperation) []kfake.ACL {
		var out []kfake.ACL
		for _, op := range ops {
			out = append(out, kfake.ACL{Resource: res, Name: "*", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true})
		}
		return out
	}
	acls := append(read(kmsg.ACLResourceTypeTopic, kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs),
		read(kmsg.ACLResourceTypeGroup, kmsg.ACLOperationRead, kmsg.ACLOperationDescribe)...)
	east, _ := securedCluster(t, clientsec.Plain, false, kfake.EnableACLs(), kfake.SeedTopics(parts, "orders"),
		kfake.User(clientsec.Plain, "reader", "reader-pw", acls...))
	west := startCluster(t)
	east.produce(seqRecords("orders", parts, 0, 300)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	offs := kadm.Offsets{}
	for p := range int32(parts) {
		offs.Add(kadm.Offset{Topic: "orders", Partition: p, At: int64(20 + p), LeaderEpoch: -1})
	}
	if err := east.adm.CommitAllOffsets(ctx, group, offs); err != nil {
		t.Fatal(err)
	}
	reader := clientsec.Config{SASL: clientsec.SASL{Mechanism: clientsec.Plain, Username: "reader", Password: "reader-pw"}}

	t.Run("syncs on the source", func(t *testing.T) {
		// A target of its own: what this worker copies is not counted.
		f := testFlow(east, startCluster(t), "east", "west")
		f.Source.Security = reader
		f.SyncTopicACLs = false
		w := startWorker(t, f)
		kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
			e := w.Status().Errors[KindTopic]
			return e.Count > 0 && strings.Contains(e.Last, "--offset-syncs-topic-location target"),
				fmt.Sprintf("topic errors %+v; want one saying the syncs topic cannot be created on the source", e)
		})
		t.Logf("status: %s", w.Status().Errors[KindTopic].Last)
		w.stop()
	})

	f := testFlow(east, west, "east", "west")
	f.Source.Security = reader
	f.SyncTopicACLs = false
	f.OffsetSyncsLocation = SyncsOnTarget
	f.CheckpointInterval = 200 * time.Millisecond
	startWorker(t, f)
	waitCount(t, west, "east.orders", 300, 30*time.Second)
	checkRecords(t, west, "east.orders", parts, 300)
	waitGroupAt(t, west, group, "east.orders", map[int32]int64{0: 20, 1: 21, 2: 22}, 30*time.Second)
}

// TestMirrorSpokesKeepSyncsApartOnHub: two spokes mirror a topic of the
// same name to one hub, with their offset syncs on the hub. Each flow's
// syncs topic is named after its source, as MM2 names it there, so the
// two never mix: a group on each spoke translates to its own copy, though
// spoke2's copy on the hub sits 1000 offsets further on.
func TestMirrorSpokesKeepSyncsApartOnHub(t *testing.T) {
	hub := startCluster(t)
	spokes := map[string]*cluster{"spoke1": startCluster(t), "spoke2": startCluster(t)}
	records := map[string]int{"spoke1": 100, "spoke2": 300}
	committed := map[string]int64{"spoke1": 60, "spoke2": 250}
	// spoke2's copy starts at offset 1000 on the hub.
	hub.createTopic("spoke2.orders", 1)
	hub.produce(seqRecords("spoke2.orders", 1, 0, 1000)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for alias, s := range spokes {
		s.createTopic("orders", 1)
		s.produce(seqRecords("orders", 1, 0, records[alias])...)
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: committed[alias], LeaderEpoch: -1})
		if err := s.adm.CommitAllOffsets(ctx, "billing", offs); err != nil {
			t.Fatal(err)
		}
		f := testFlow(s, hub, alias, "hub")
		f.OffsetSyncsLocation = SyncsOnTarget
		f.CheckpointInterval = 200 * time.Millisecond
		startWorker(t, f)
	}
	waitCount(t, hub, "spoke1.orders", 100, 30*time.Second)
	waitCount(t, hub, "spoke2.orders", 1300, 30*time.Second)
	waitGroupAt(t, hub, "billing", "spoke1.orders", map[int32]int64{0: 60}, 30*time.Second)
	waitGroupAt(t, hub, "billing", "spoke2.orders", map[int32]int64{0: 1250}, 30*time.Second)
	for _, name := range []string{mm2.OffsetSyncsTopic("spoke1"), mm2.OffsetSyncsTopic("spoke2")} {
		if !hub.hasTopic(name) {
			t.Errorf("the hub has no %s", name)
		}
	}
	if name := mm2.OffsetSyncsTopic("hub"); hub.hasTopic(name) {
		t.Errorf("the hub has %s, which both flows would share", name)
	}
}
