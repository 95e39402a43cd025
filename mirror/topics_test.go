package mirror

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

func TestMirrorTopicChanges(t *testing.T) {
	const targetLimit = 64 << 10
	east := startCluster(t)
	west := startCluster(t, kdrtest.WithConfig(func(c *broker.Config) { c.Log.MaxMessageBytes = targetLimit }))
	east.createTopic("a", 2)
	f := testFlow(east, west, "east", "west")
	w := startWorker(t, f)
	east.produce(seqRecords("a", 2, 0, 10)...)
	waitCount(t, west, "east.a", 10, 30*time.Second)

	// A topic created after the start is mirrored at the next refresh.
	start := time.Now()
	east.createTopic("b", 1)
	east.produce(seqRecords("b", 1, 0, 5)...)
	kdrtest.Eventually(t, 2*f.RefreshInterval+time.Second, func() (bool, string) {
		return west.hasTopic("east.b"), "east.b not created on the target"
	})
	created := time.Since(start)
	waitCount(t, west, "east.b", 5, 30*time.Second)
	t.Logf("new topic: remote topic after %s, records after %s (refresh interval %s)", created, time.Since(start), f.RefreshInterval)

	// Partition growth is mirrored, and records in the new partitions flow.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := east.adm.UpdatePartitions(ctx, 4, "a"); err != nil {
		t.Fatal(err)
	}
	// A fresh client: the test's own has the old partition count cached.
	fresh := startClient(t, east.addr)
	if err := fresh.ProduceSync(ctx, seqRecords("a", 4, 10, 8)...).FirstErr(); err != nil { // two per partition, 2 and 3 included
		t.Fatal(err)
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		e := west.ends("east.a")
		return len(e) == 4 && e[2] == 2 && e[3] == 2, fmt.Sprintf("east.a end offsets %v", e)
	})

	// A record the target cannot take is counted and skipped; the records
	// after it still flow. Its value is random, so that it is too large
	// even in the batch the source's producer compressed (the batch the
	// mirror first tries to forward whole).
	value := make([]byte, targetLimit+1024)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range value {
		value[i] = byte(rng.Uint32())
	}
	big := &kgo.Record{Topic: "a", Partition: 0, Value: value,
		Headers: []kgo.RecordHeader{{Key: "id", Value: []byte("big")}}}
	after := &kgo.Record{Topic: "a", Partition: 0, Value: []byte("after"), Headers: []kgo.RecordHeader{{Key: "id", Value: []byte("after")}}}
	east.produce(&kgo.Record{Topic: "a", Partition: 0, Value: []byte("before"), Headers: []kgo.RecordHeader{{Key: "id", Value: []byte("before")}}}, big, after)
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		recs := west.readAll("east.a")[0]
		return len(recs) > 0 && string(recs[len(recs)-1].Value) == "after", "the record after the large one has not arrived"
	})
	for _, r := range west.readAll("east.a")[0] {
		if header(r, "id") == "big" {
			t.Fatal("the too-large record reached the target")
		}
	}
	st := w.Status()
	if e := st.Errors[KindTooLarge]; e.Count != 1 {
		t.Errorf("too_large errors: %+v, want 1", e)
	}
	if ts, _ := st.Topic("a"); ts.SkippedTooLarge != 1 || ts.MaxMessageBytes != targetLimit {
		t.Errorf("status of a: %+v", ts)
	}
	if got := metricSum(t, w.reg, "kdr_mirror_errors_total", map[string]string{"kind": KindTooLarge}); got != 1 {
		t.Errorf("kdr_mirror_errors_total{kind=too_large} = %v", got)
	}

	// A topic deleted on the source is dropped; the flow goes on.
	if _, err := east.adm.DeleteTopics(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		st := w.Status()
		for _, p := range st.Partitions {
			if p.Topic == "b" {
				return false, "still owns a partition of b"
			}
		}
		return st.Errors[KindTopicDeleted].Count == 1, fmt.Sprintf("topic_deleted errors: %+v", st.Errors[KindTopicDeleted])
	})
	n := west.count("east.a")
	if err := fresh.ProduceSync(ctx, seqRecords("a", 4, 100, 20)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitCount(t, west, "east.a", n+20, 30*time.Second)
	if ts, _ := w.Status().Topic("b"); !ts.Gone {
		t.Errorf("status of b: %+v, want gone", ts)
	}
}

// TestMirrorTopicConfigSync checks that configs set on a source topic reach
// its remote topic, except the excluded ones, and follow later changes.
func TestMirrorTopicConfigSync(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := east.adm.CreateTopic(ctx, 2, 1, map[string]*string{
		"retention.ms": kadm.StringPtr("3600000"), "cleanup.policy": kadm.StringPtr("compact"),
		"min.insync.replicas": kadm.StringPtr("1"), "max.message.bytes": kadm.StringPtr("200000"),
	}, "cfg"); err != nil {
		t.Fatal(err)
	}
	startWorker(t, testFlow(east, west, "east", "west"))
	dynamic := func() map[string]string {
		rcs, err := west.adm.DescribeTopicConfigs(ctx, "east.cfg")
		if err != nil {
			return nil
		}
		rc, err := rcs.On("east.cfg", nil)
		if err != nil || rc.Err != nil {
			return nil
		}
		out := map[string]string{}
		for _, c := range rc.Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				out[c.Key] = c.MaybeValue()
			}
		}
		return out
	}
	want := map[string]string{"retention.ms": "3600000", "cleanup.policy": "compact", "max.message.bytes": "200000"}
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		got := dynamic()
		return maps.Equal(got, want), fmt.Sprintf("east.cfg configs %v, want %v (min.insync.replicas is not synced)", got, want)
	})
	if _, err := east.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("7200000")}}, "cfg"); err != nil {
		t.Fatal(err)
	}
	want["retention.ms"] = "7200000"
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		got := dynamic()
		return maps.Equal(got, want), fmt.Sprintf("east.cfg configs %v, want %v", got, want)
	})
}

// TestMirrorWarnsWhenSyncsExpireFirst: a topic the source keeps longer than
// the offset-syncs topic keeps syncs (unlimited retention, compaction, or
// a longer retention.ms) is reported as it starts being mirrored; one kept
// no longer than the syncs is not.
func TestMirrorWarnsWhenSyncsExpireFirst(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	str := func(s string) *string { return &s }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, configs := range map[string]map[string]*string{
		"forever":   {"retention.ms": str("-1")},
		"compacted": {"cleanup.policy": str("compact")},
		"month":     {"retention.ms": str("2592000000")},
		"week":      nil, // the broker's default, 7 days: as long as the syncs
		"day":       {"retention.ms": str("86400000")},
	} {
		resp, err := east.adm.CreateTopic(ctx, 1, 1, configs, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	f := testFlow(east, west, "east", "west")
	w := startWorker(t, f)
	want := map[string]string{
		"forever": "retention.ms=-1", "compacted": "cleanup.policy=compact", "month": "retention.ms=2592000000 (720h0m0s)",
		"week": "", "day": "",
	}
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		for topic, why := range want {
			ts, ok := w.Status().Topic(topic)
			if !ok || !ts.Ready {
				return false, topic + " not mirrored yet"
			}
			if why == "" && ts.SyncsExpireFirst != "" || !strings.Contains(ts.SyncsExpireFirst, why) {
				return false, fmt.Sprintf("%s: SyncsExpireFirst %q, want %q", topic, ts.SyncsExpireFirst, why)
			}
		}
		return true, ""
	})
}

// TestMirrorRecreatedSourceTopic deletes a mirrored topic on the source and
// creates one of the same name with fewer records than the mirror had
// copied: every record of the new topic reaches the target. Its offsets start
// again, so the worker's position (and the group's committed one, which a
// kdr source kept) lies past the new log's end; that was taken for an
// unclean truncation and the worker jumped to the log end, so the new
// topic's first records were never copied. The worker either saw the
// deletion at a refresh first, or only the new topic id once its fetch was
// out of range.
func TestMirrorRecreatedSourceTopic(t *testing.T) {
	for _, tc := range []struct {
		name           string
		forward, early bool // early: a refresh sees the deletion before the new topic exists
		syncDeletions  bool // the remote topic is deleted too, and created again
		fresh          int  // records written to the new topic; more than 50 pass the old position
	}{
		{"forward/deletion seen", true, true, false, 5},
		{"forward/new id seen", true, false, false, 5},
		{"records/new id seen", false, false, false, 5},
		{"forward/deletion synced", true, true, true, 5},
		// Past the old position before the worker fetches again: a fetch
		// by name would serve records 50 on, and 0-49 would be skipped.
		{"forward/grown past the position", true, false, false, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			east, west := startCluster(t), startCluster(t)
			east.createTopic("r", 2)
			f := testFlow(east, west, "east", "west")
			f.ForwardBatches, f.SyncTopicDeletions = tc.forward, tc.syncDeletions
			if !tc.early {
				// The default: the deletion and the creation a few ms
				// apart fall between two refreshes.
				f.RefreshInterval = DefaultFlow().RefreshInterval
			}
			w := startWorker(t, f)
			east.produce(seqRecords("r", 2, 0, 100)...)
			waitCount(t, west, "east.r", 100, 30*time.Second)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := east.adm.DeleteTopics(ctx, "r"); err != nil {
				t.Fatal(err)
			}
			if tc.early {
				kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
					ts, _ := w.Status().Topic("r")
					return ts.Gone && (!tc.syncDeletions || !west.hasTopic("east.r")), fmt.Sprintf("status of r: %+v; remote topic kept: %v", ts, west.hasTopic("east.r"))
				})
			}
			kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
				resp, err := east.adm.CreateTopic(ctx, 1, 1, nil, "r")
				return err == nil && resp.Err == nil, fmt.Sprintf("re-creating r: %v %v", err, resp.Err)
			})
			var fresh []*kgo.Record
			var want []string
			for i := range tc.fresh {
				v := fmt.Sprintf("new-%02d", i)
				fresh = append(fresh, &kgo.Record{Topic: "r", Partition: 0, Value: []byte(v)})
				want = append(want, v)
			}
			// A new client: the test's own produces to the old topic's id.
			if err := startClient(t, east.addr).ProduceSync(ctx, fresh...).FirstErr(); err != nil {
				t.Fatal(err)
			}

			kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
				var got []string
				for _, r := range west.readAll("east.r")[0] {
					if v := string(r.Value); strings.HasPrefix(v, "new-") {
						got = append(got, v)
					}
				}
				return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("new records on the target: %v", got)
			})
			if n, want := west.count("east.r"), int64(tc.fresh)+map[bool]int64{false: 100, true: 0}[tc.syncDeletions]; n != want {
				t.Errorf("east.r holds %d records, want %d (the old topic's 100 unless deleted with it, and the new one's %d)", n, want, tc.fresh)
			}
		})
	}
}

// TestMirrorRemoteTopicDeletedOnTarget deletes a remote topic on the target
// mid-flow: the worker re-creates it and copies on, and says what was lost
// and how to copy again (it re-created the topic with an INFO line only,
// while translated group offsets pointed into the deleted log).
func TestMirrorRemoteTopicDeletedOnTarget(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	east.createTopic("orders", 1)
	w := startWorker(t, testFlow(east, west, "east", "west"))
	east.produce(seqRecords("orders", 1, 0, 10)...)
	waitCount(t, west, "east.orders", 10, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := west.adm.DeleteTopics(ctx, "east.orders"); err != nil {
		t.Fatal(err)
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		e := w.Status().Errors[KindTopic]
		return strings.Contains(e.Last, "remote topic east.orders was deleted on the target and has been re-created") &&
			strings.Contains(e.Last, "kdr group reset-offsets kdr-mirror-east-west --topic orders --to-earliest"), fmt.Sprintf("topic errors %+v", e)
	})
	// Copying goes on into the new remote topic.
	east.produce(seqRecords("orders", 1, 10, 5)...)
	waitCount(t, west, "east.orders", 5, 30*time.Second)
}

// TestMirrorInternalTopicsReplicated runs a flow between two three-broker
// clusters whose default.replication.factor is Kafka's 1: the offset syncs,
// heartbeats and checkpoints topics get three replicas each (MM2's
// *.topic.replication.factor). The syncs and checkpoints topics took the
// cluster's default, so losing one broker lost them, and with them exact
// translation.
func TestMirrorInternalTopicsReplicated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	bin := kdrtest.Binary(t)
	east, west := kdrtest.StartCluster(t, bin, 3), kdrtest.StartCluster(t, bin, 3)
	east.WaitBrokers(3)
	west.WaitBrokers(3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if resp, err := east.Admin().CreateTopic(ctx, 1, 3, nil, "orders"); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	f := DefaultFlow()
	f.SourceAlias, f.TargetAlias = "east", "west"
	f.Source.Brokers, f.Target.Brokers = east.Bootstrap(), west.Bootstrap()
	f.RefreshInterval, f.CheckpointInterval = 500*time.Millisecond, 500*time.Millisecond
	startWorker(t, f)
	replicas := func(adm *kadm.Client, topic string) int {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil || td[topic].Err != nil || len(td[topic].Partitions) == 0 {
			return 0
		}
		return len(td[topic].Partitions[0].Replicas)
	}
	kdrtest.Eventually(t, 45*time.Second, func() (bool, string) {
		got := fmt.Sprintf("syncs %d, heartbeats %d, checkpoints %d",
			replicas(east.Admin(), "mm2-offset-syncs.west.internal"), replicas(west.Admin(), "heartbeats"), replicas(west.Admin(), "east.checkpoints.internal"))
		return got == "syncs 3, heartbeats 3, checkpoints 3", "replicas of the internal topics: " + got
	})
}

// TestMirrorTopicMissedByOneMetadataAnswer has the source answer one
// metadata request for all topics without the mirrored topic, as a broker
// still replaying an old metadata state did. The worker drops the topic as
// deleted; when the next refresh finds it again with the same topic id, it
// is the same topic, and copying must resume from the worker's positions.
// It was taken for a re-created topic and copied again from offset 0.
func TestMirrorTopicMissedByOneMetadataAnswer(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "r"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	addr := kc.ListenAddrs()[0]
	cl := startClient(t, addr)
	east := &cluster{t: t, addr: addr, cl: cl, adm: kadm.NewClient(cl)}
	west := startCluster(t)
	w := startWorker(t, testFlow(east, west, "east", "west"))
	east.produce(seqRecords("r", 1, 0, 50)...)
	waitCount(t, west, "east.r", 50, 30*time.Second)

	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	portN, _ := strconv.Atoi(port)
	// Only the topic manager's listing of all topics: the consumer's
	// requests name their topics.
	kc.ControlKey(int16(kmsg.Metadata), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		req := kr.(*kmsg.MetadataRequest)
		if req.Topics != nil {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 0, host, int32(portN)
		resp.Brokers, resp.ControllerID = append(resp.Brokers, b), 0
		return resp, nil, true
	})
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		ts, _ := w.Status().Topic("r")
		return ts.Gone, fmt.Sprintf("status of r: %+v", ts)
	})
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		ts, _ := w.Status().Topic("r")
		return !ts.Gone && ts.Ready, fmt.Sprintf("status of r: %+v", ts)
	})
	east.produce(seqRecords("r", 1, 50, 10)...)
	waitCount(t, west, "east.r", 60, 30*time.Second)
	// Anything copied again would be on the target by now: the worker
	// copies in order, and the last record is there.
	var got []string
	for _, r := range west.readAll("east.r")[0] {
		got = append(got, string(r.Value))
	}
	var want []string
	for _, r := range seqRecords("r", 1, 0, 60) {
		want = append(want, string(r.Value))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("east.r holds %d records, want the 60 once each in order:\n%v", len(got), got)
	}
}

// TestMirrorRecreatedSourceTopicTranslates re-creates a mirrored source
// topic and commits a group in the new topic: its offsets start again at 0,
// while the remote topic goes on after the deleted topic's copies. The
// group must be translated to the new topic's record on the target, not to
// the deleted topic's record at the same source offset: syncs carry the
// source topic's id, and the new id retires the old syncs. Before, the
// group was committed into the deleted topic's copies on the target.
func TestMirrorRecreatedSourceTopicTranslates(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	east.createTopic("r", 1)
	f := testFlow(east, west, "east", "west")
	f.RefreshInterval = 200 * time.Millisecond
	startWorker(t, f)
	var old []*kgo.Record
	for i := range 100 {
		old = append(old, &kgo.Record{Topic: "r", Value: []byte(fmt.Sprintf("old-%03d", i))})
	}
	east.produce(old...)
	waitCount(t, west, "east.r", 100, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := east.adm.DeleteTopics(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		resp, err := east.adm.CreateTopic(ctx, 1, 1, nil, "r")
		return err == nil && resp.Err == nil, fmt.Sprintf("re-creating r: %v %v", err, resp.Err)
	})
	var fresh []*kgo.Record
	for i := range 30 {
		fresh = append(fresh, &kgo.Record{Topic: "r", Partition: 0, Value: []byte(fmt.Sprintf("new-%03d", i))})
	}
	if err := startClient(t, east.addr).ProduceSync(ctx, fresh...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitCount(t, west, "east.r", 130, 30*time.Second)

	// A consumer read new-000 … new-009 on the source.
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: "r", Partition: 0, At: 10, LeaderEpoch: -1})
	if resps, err := east.adm.CommitOffsets(ctx, "app", commit); err != nil || resps.Error() != nil {
		t.Fatalf("committing app: %v %v", err, resps.Error())
	}
	waitGroupAt(t, west, "app", "east.r", map[int32]int64{0: 110}, 30*time.Second)
	if v := string(west.readAll("east.r")[0][110].Value); v != "new-010" {
		t.Fatalf("east.r offset 110 holds %s, want new-010", v)
	}
}
