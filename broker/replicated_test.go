package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/internal/checker"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestBrokerClusterReplicatesAndFailsOver runs three broker processes:
// an RF=3 topic is created and described, acks=all records reach every
// replica, and after the leader is SIGKILLed a new leader from the ISR
// serves every acknowledged record while producing continues.
func TestBrokerClusterReplicatesAndFailsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := kdrtest.StartCluster(t, kdrtest.Binary(t), 3, "--log-level", "debug")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	resp, err := c.Admin().CreateTopic(ctx, 2, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "rep")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	for p := int32(0); p < 2; p++ {
		c.WaitISR("rep", p, 3)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.DefaultProduceTopic("rep"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			r := &kgo.Record{Value: []byte(fmt.Sprintf("v%04d", i)), Partition: 0}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
		}
	}
	produce(0, 100)
	leader := c.Leader("rep", 0)
	c.Kill(leader)
	produce(100, 200)
	newLeader := c.Leader("rep", 0)
	if newLeader == leader {
		t.Fatalf("leader still %d after kill", leader)
	}
	got := readPartition(t, c.Bootstrap(), "rep", 0, 200)
	for i, v := range got {
		if want := fmt.Sprintf("v%04d", i); v != want {
			t.Fatalf("offset %d: %q, want %q", i, v, want)
		}
	}
	c.Restart(leader)
	c.WaitISR("rep", 0, 3)
}

// readPartition reads exactly n records from offset 0 of one partition.
func readPartition(t *testing.T, seeds []string, topic string, p int32, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []string
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if int(r.Offset) != len(out) {
				t.Fatalf("offset %d after %d records", r.Offset, len(out))
			}
			out = append(out, string(r.Value))
		})
	}
	return out
}

// killCount is how many leader kills TestBrokerClusterCheckerSurvivesLeaderKills
// does: 20 in `make test`, more with KDR_KILLS (make soak).
func killCount(t *testing.T) int {
	if s := os.Getenv("KDR_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("KDR_KILLS=%q: want a positive number", s)
		}
		return n
	}
	return 20
}

// TestBrokerClusterCheckerSurvivesLeaderKills runs the checker workload
// (idempotent producer, acks=all, min.insync.replicas=2, per-key sequence
// numbers, a consumer group reading everything) while the leader of one of
// the partitions is SIGKILLed again and again. Every kill must leave zero
// acknowledged records lost, zero duplicates and every key in order, and the
// group must resume from its committed offsets.
func TestBrokerClusterCheckerSurvivesLeaderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := kdrtest.StartCluster(t, kdrtest.Binary(t), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const topic = "checked"
	resp, err := c.Admin().CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	for p := int32(0); p < 3; p++ {
		c.WaitISR(topic, p, 3)
	}
	cfg := checker.DefaultConfig(c.Bootstrap(), topic)
	cfg.Group = "checked-readers"
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	run, err := checker.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()

	acked := func() int64 { return run.Producer().Stats().Acked }
	kills := killCount(t)
	for i := range kills {
		// Progress before each kill, so every kill lands mid-stream.
		before := acked()
		kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
			return acked() >= before+200, fmt.Sprintf("kill %d: %d records acknowledged since the last kill, want 200", i, acked()-before)
		})
		p := int32(i % 3)
		leader := c.Leader(topic, p)
		c.Kill(leader)
		kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
			pd, err := c.Partition(topic, p)
			if err != nil {
				return false, err.Error()
			}
			return pd.Leader >= 0 && pd.Leader != leader, fmt.Sprintf("kill %d: %s-%d leader %d after killing %d", i, topic, p, pd.Leader, leader)
		})
		c.Restart(leader)
		for q := int32(0); q < 3; q++ {
			c.WaitISR(topic, q, 3)
		}
	}
	rep, err := run.Drain(ctx)
	if err != nil {
		t.Fatalf("drain: %v\n%s", err, rep)
	}
	t.Logf("%d leader kills: %s", kills, rep)
	if !rep.OK() || rep.Acked == 0 {
		t.Fatalf("checker: %s", rep)
	}
	if err := run.Close(); err != nil {
		t.Fatalf("closing the reader: %v", err)
	}
	res, err := checker.ResumeCheck(ctx, c.Bootstrap(), cfg.Group, topic)
	if err != nil {
		t.Fatalf("resume check: %v", err)
	}
	if !res.OK() {
		t.Fatalf("group did not resume from its commits: %s", res)
	}
}

// testWriter sends slog output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestBrokerClusterFullKillAndRestart SIGKILLs every broker at once after
// acks=all writes, restarts them all, and checks the cluster comes back with
// the same metadata (topic id, partitions, replicas) and every acknowledged
// record, then accepts new writes.
func TestBrokerClusterFullKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := kdrtest.StartCluster(t, kdrtest.Binary(t), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	resp, err := c.Admin().CreateTopic(ctx, 2, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "whole")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	for p := int32(0); p < 2; p++ {
		c.WaitISR("whole", p, 3)
	}
	before, err := c.Admin().ListTopics(ctx, "whole")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.DefaultProduceTopic("whole"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 500 {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("w%04d", i)), Partition: int32(i % 2)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	for id := int32(1); id <= 3; id++ {
		c.Kill(id)
	}
	for id := int32(1); id <= 3; id++ {
		c.Restart(id)
	}
	c.WaitBrokers(3)
	for p := int32(0); p < 2; p++ {
		c.WaitISR("whole", p, 3)
	}
	after, err := c.Admin().ListTopics(ctx, "whole")
	if err != nil {
		t.Fatal(err)
	}
	b, a := before["whole"], after["whole"]
	if a.ID != b.ID || len(a.Partitions) != 2 {
		t.Fatalf("after restart: topic id %v partitions %d, before %v %d", a.ID, len(a.Partitions), b.ID, len(b.Partitions))
	}
	for p, bp := range b.Partitions {
		if fmt.Sprint(a.Partitions[p].Replicas) != fmt.Sprint(bp.Replicas) {
			t.Fatalf("partition %d replicas %v, before %v", p, a.Partitions[p].Replicas, bp.Replicas)
		}
	}
	for p := int32(0); p < 2; p++ {
		got := readPartition(t, c.Bootstrap(), "whole", p, 250)
		for i, v := range got {
			if want := fmt.Sprintf("w%04d", 2*i+int(p)); v != want {
				t.Fatalf("partition %d offset %d: %q, want %q", p, i, v, want)
			}
		}
	}
	cl2, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.DefaultProduceTopic("whole"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	if err := cl2.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after restart: %v", err)
	}
}

// TestBrokerClusterRecreatedTopicSurvivesRestart deletes a topic, creates
// one of the same name, writes to it and restarts every broker. Raft replays
// the metadata log after a restart, so each broker first sees states in which
// the name still belongs to the deleted topic; the partition directories,
// which are the new topic's, must outlive them (they were removed as the
// older topic's once: every acknowledged record of the new topic was lost).
func TestBrokerClusterRecreatedTopicSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := kdrtest.StartCluster(t, kdrtest.Binary(t), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	create := func() kadm.TopicID {
		t.Helper()
		resp, err := c.Admin().CreateTopic(ctx, 2, 3, nil, "again")
		if err != nil || resp.Err != nil {
			t.Fatalf("create: %v %v", err, resp.Err)
		}
		for p := int32(0); p < 2; p++ {
			c.WaitISR("again", p, 3)
		}
		return resp.ID
	}
	produce := func(prefix string, n int) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.DefaultProduceTopic("again"),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("%s%04d", prefix, i)), Partition: int32(i % 2)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	old := create()
	produce("old", 100)
	if resp, err := c.Admin().DeleteTopics(ctx, "again"); err != nil || resp.Error() != nil {
		t.Fatalf("delete: %v %v", err, resp.Error())
	}
	if recreated := create(); recreated == old {
		t.Fatalf("re-created topic has the deleted one's id %v", old)
	}
	produce("new", 500)

	for id := int32(1); id <= 3; id++ {
		c.Stop(id)
	}
	for id := int32(1); id <= 3; id++ {
		c.Restart(id)
	}
	c.WaitBrokers(3)
	for p := int32(0); p < 2; p++ {
		c.WaitISR("again", p, 3)
	}
	ends, err := c.Admin().ListEndOffsets(ctx, "again")
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if o, _ := ends.Lookup("again", p); o.Offset != 250 || o.Err != nil {
			t.Fatalf("partition %d after restart: high watermark %d (%v), want 250", p, o.Offset, o.Err)
		}
		got := readPartition(t, c.Bootstrap(), "again", p, 250)
		for i, v := range got {
			if want := fmt.Sprintf("new%04d", 2*i+int(p)); v != want {
				t.Fatalf("partition %d offset %d: %q, want %q", p, i, v, want)
			}
		}
	}
	if logs := c.Logs(); strings.Contains(logs, "removing partition directory") {
		t.Errorf("a broker removed a partition directory after the restart:\n%s", logs)
	}
}

// TestBrokerClusterRestartedBrokerServesCurrentMetadata restarts a broker of
// a cluster whose topics were all created after its last metadata snapshot,
// and asks it for metadata the moment it listens. Raft replays its log only
// as the leader tells it what is committed, so a restarted broker first
// holds an old state; it served it, listing some topics or none (a mirror
// then took the missing ones for deleted and copied them again from offset
// 0) and claiming old leaderships. Its first answer must now be the
// cluster's: every topic, all three brokers, and no leadership of its own
// from before the restart (it registers fenced, which moves its
// leaderships, so any it holds again has a newer leader epoch).
func TestBrokerClusterRestartedBrokerServesCurrentMetadata(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := kdrtest.StartCluster(t, kdrtest.Binary(t), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var topics []string
	for i := range 12 {
		topics = append(topics, fmt.Sprintf("t%02d", i))
	}
	resps, err := c.Admin().CreateTopics(ctx, 2, 3, nil, topics...)
	if err != nil || resps.Error() != nil {
		t.Fatalf("create: %v %v", err, resps.Error())
	}
	for _, name := range topics {
		for p := int32(0); p < 2; p++ {
			c.WaitISR(name, p, 3)
		}
	}
	before, err := c.Admin().Metadata(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	restarted := int32(1)
	if before.Controller == restarted {
		restarted = 2 // keep the raft leader: the restarted broker must catch up from it
	}
	c.Kill(restarted)
	c.Restart(restarted)
	raw, err := kdrtest.BrokerRequest(ctx, c.Brokers[c.Index(restarted)].Addr(), kmsg.NewPtrMetadataRequest())
	if err != nil {
		t.Fatal(err)
	}
	first := raw.(*kmsg.MetadataResponse)
	type leadership struct{ leader, epoch int32 }
	got := map[string]leadership{}
	for _, tm := range first.Topics {
		for _, pm := range tm.Partitions {
			got[fmt.Sprintf("%s/%d", *tm.Topic, pm.Partition)] = leadership{pm.Leader, pm.LeaderEpoch}
		}
	}
	var problems []string
	for _, name := range topics {
		for p := int32(0); p < 2; p++ {
			key := fmt.Sprintf("%s/%d", name, p)
			old := before.Topics[name].Partitions[p]
			g, ok := got[key]
			switch {
			case !ok:
				problems = append(problems, key+" missing")
			case g.epoch < old.LeaderEpoch, g.leader == restarted && g.epoch == old.LeaderEpoch:
				problems = append(problems, fmt.Sprintf("%s: leader %d at epoch %d, the state from before the restart (leader %d at epoch %d)", key, g.leader, g.epoch, old.Leader, old.LeaderEpoch))
			}
		}
	}
	if len(first.Brokers) != 3 {
		problems = append(problems, fmt.Sprintf("%d brokers listed, want 3", len(first.Brokers)))
	}
	if len(problems) > 0 {
		t.Fatalf("broker %d's first metadata answer after its restart is not the cluster's: %v", restarted, problems)
	}
}

// TestBrokerClusterLastBrokerStopsWithoutQuorum: a broker stopped after the
// rest of its cluster is gone gives up its controlled shutdown once no
// metadata leader turns up, instead of waiting out the 5 s deadline for a
// handover no quorum is left to commit. kdr up met this when the last
// brokers of a cluster stopped together: one had forwarded its handover
// to a leader that stopped first, and stopping took 5 s longer.
func TestBrokerClusterLastBrokerStopsWithoutQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := kdrtest.StartCluster(t, kdrtest.Binary(t), 3)
	// Every broker registered and following: a broker that has not
	// registered yet has nothing to hand over and skips the handover.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if resp, err := c.Admin().CreateTopic(ctx, 3, 3, nil, "held"); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	for p := int32(0); p < 3; p++ {
		c.WaitISR("held", p, 3)
	}
	ctrl := c.Controller()
	var others []int32
	for id := int32(1); id <= 3; id++ {
		if id != ctrl {
			others = append(others, id)
		}
	}
	// One follower stops cleanly (its handover commits: two of three are
	// up), then the controller dies without a word, leaving the last
	// follower alone, still taking the dead controller for its leader.
	c.Stop(others[0])
	c.Kill(ctrl)
	start := time.Now()
	c.Stop(others[1])
	took := time.Since(start)
	logs := c.Brokers[c.Index(others[1])].Logs()
	if !strings.Contains(logs, "no metadata leader for 1s") {
		t.Fatalf("the last broker's controlled shutdown did not give up for want of a leader (stop took %v):\n%s", took, logs)
	}
	t.Logf("the last broker stopped in %v", took.Round(time.Millisecond))
}
