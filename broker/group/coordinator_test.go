package group

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/storage"
	"github.com/kdr-io/kdr/internal/recordbatch"
)

// storageLog is a Log on real partition logs in a temp dir, the way the
// broker stores __consumer_offsets.
type storageLog struct {
	mu   sync.Mutex
	dir  string
	logs map[int32]*storage.Log
}

func newStorageLog(t *testing.T) *storageLog {
	l := &storageLog{dir: t.TempDir(), logs: map[int32]*storage.Log{}}
	t.Cleanup(func() {
		for _, pl := range l.logs {
			pl.Close()
		}
	})
	return l
}

func (l *storageLog) part(p int32) *storage.Log {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pl, ok := l.logs[p]; ok {
		return pl
	}
	cfg := storage.DefaultConfig()
	cfg.CleanupPolicy = "compact"
	pl, err := storage.Open(fmt.Sprintf("%s/p%d", l.dir, p), cfg, storage.Options{})
	if err != nil {
		panic(err)
	}
	l.logs[p] = pl
	return pl
}

func (l *storageLog) Append(_ context.Context, p int32, records []Record) error {
	recs := make([]recordbatch.Record, len(records))
	for i, r := range records {
		recs[i] = recordbatch.Record{Key: r.Key, Value: r.Value}
	}
	b, err := recordbatch.Build(recs, recordbatch.Options{TimestampMs: time.Now().UnixMilli()})
	if err != nil {
		return err
	}
	_, err = l.part(p).AppendAsLeader(b, 0)
	return err
}

func (l *storageLog) Replay(p int32, fn func(Record) error) error {
	pl := l.part(p)
	s, err := pl.Read(pl.LogStartOffset(), 1<<30, pl.LogEndOffset(), true)
	if err != nil {
		return err
	}
	defer s.Close()
	data, err := s.ReadAll(nil)
	if err != nil {
		return err
	}
	return recordbatch.Walk(data, func(d recordbatch.Decoded) error { return fn(Record{Key: d.Key, Value: d.Value}) })
}

func testCoordinator(t *testing.T, log Log) *Coordinator {
	cfg := DefaultConfig()
	cfg.OffsetsTopicPartitions = 4
	cfg.InitialRebalanceDelay = 0
	cfg.MinSessionTimeout = 50 * time.Millisecond
	c, err := New(cfg, log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 4; p++ {
		if err := c.LoadPartition(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(c.Close)
	return c
}

func joinReq(group, member string, session time.Duration) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version, r.Group, r.MemberID, r.ProtocolType = 9, group, member, "consumer"
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = int32(session.Milliseconds()), 2000
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte("meta-"+member)
	r.Protocols = []kmsg.JoinGroupRequestProtocol{p}
	return r
}

// joinAll runs the MEMBER_ID_REQUIRED round trip then joins n members
// concurrently, returning their join responses.
func joinAll(t *testing.T, c *Coordinator, group string, n int, session time.Duration) []*kmsg.JoinGroupResponse {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		r := c.JoinGroup(context.Background(), joinReq(group, "", session))
		if r.ErrorCode != kerr.MemberIDRequired.Code || r.MemberID == "" {
			t.Fatalf("first join: code %d id %q, want MEMBER_ID_REQUIRED with an id", r.ErrorCode, r.MemberID)
		}
		ids[i] = r.MemberID
	}
	out := make([]*kmsg.JoinGroupResponse, n)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out[i] = c.JoinGroup(context.Background(), joinReq(group, ids[i], session))
		}(i)
	}
	wg.Wait()
	return out
}

func TestGroupPartitionForMatchesJavaHashCode(t *testing.T) {
	c, _ := New(DefaultConfig(), nil, Options{})
	for id, want := range map[string]int32{"": 0, "a": 47, "my-group": 12, "console-consumer-12345": 6, "kdr": 41} {
		if got := c.PartitionFor(id); got != want {
			t.Errorf("PartitionFor(%q) = %d, want %d", id, got, want)
		}
	}
}

func TestGroupJoinSyncThreeMembersAndRejoin(t *testing.T) {
	c := testCoordinator(t, newStorageLog(t))
	resps := joinAll(t, c, "g", 3, time.Minute)
	leader := resps[0].LeaderID
	for _, r := range resps {
		if r.ErrorCode != 0 || r.Generation != 1 || r.LeaderID != leader || *r.Protocol != "range" {
			t.Fatalf("join: %+v", r)
		}
		if (r.MemberID == leader) != (len(r.Members) == 3) {
			t.Fatalf("member %s got %d members (leader %s)", r.MemberID, len(r.Members), leader)
		}
	}
	// Followers block in SyncGroup until the leader syncs.
	got := make(chan *kmsg.SyncGroupResponse, 3)
	for _, r := range resps {
		if r.MemberID == leader {
			continue
		}
		go func(id string) {
			s := kmsg.NewPtrSyncGroupRequest()
			s.Group, s.Generation, s.MemberID = "g", 1, id
			got <- c.SyncGroup(context.Background(), s)
		}(r.MemberID)
	}
	s := kmsg.NewPtrSyncGroupRequest()
	s.Group, s.Generation, s.MemberID = "g", 1, leader
	for _, r := range resps {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = r.MemberID, []byte("for-"+r.MemberID)
		s.GroupAssignment = append(s.GroupAssignment, a)
	}
	if lr := c.SyncGroup(context.Background(), s); lr.ErrorCode != 0 || string(lr.MemberAssignment) != "for-"+leader {
		t.Fatalf("leader sync: %+v", lr)
	}
	for i := 0; i < 2; i++ {
		r := <-got
		if r.ErrorCode != 0 || len(r.MemberAssignment) == 0 {
			t.Fatalf("follower sync: %+v", r)
		}
	}
	// A fourth member joining makes the others rebalance.
	newcomer := make(chan *kmsg.JoinGroupResponse, 1)
	id := c.JoinGroup(context.Background(), joinReq("g", "", time.Minute)).MemberID
	go func() { newcomer <- c.JoinGroup(context.Background(), joinReq("g", id, time.Minute)) }()
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.Generation, hb.MemberID = "g", 1, leader
	deadline := time.Now().Add(5 * time.Second)
	for c.Heartbeat(context.Background(), hb).ErrorCode != kerr.RebalanceInProgress.Code {
		if time.Now().After(deadline) {
			t.Fatal("heartbeat never said REBALANCE_IN_PROGRESS")
		}
	}
	var wg sync.WaitGroup
	for _, r := range resps {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			if jr := c.JoinGroup(context.Background(), joinReq("g", id, time.Minute)); jr.Generation != 2 {
				t.Errorf("rejoin of %s: generation %d, want 2", id, jr.Generation)
			}
		}(r.MemberID)
	}
	wg.Wait()
	if r := <-newcomer; r.Generation != 2 || r.ErrorCode != 0 {
		t.Fatalf("newcomer: %+v", r)
	}
	// Old generation is rejected.
	hb.Generation = 1
	if code := c.Heartbeat(context.Background(), hb).ErrorCode; code != kerr.IllegalGeneration.Code {
		t.Fatalf("old generation heartbeat: %d, want ILLEGAL_GENERATION", code)
	}
}

func TestGroupMemberThatDoesNotRejoinIsRemoved(t *testing.T) {
	c := testCoordinator(t, newStorageLog(t))
	resps := joinAll(t, c, "g", 2, 100*time.Millisecond)
	// Nobody heartbeats: both sessions expire and the group empties.
	deadline := time.Now().Add(5 * time.Second)
	for {
		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Groups = []string{"g"}
		g := c.DescribeGroups(context.Background(), dg).Groups[0]
		if g.State == "Empty" && len(g.Members) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group still %s with %d members", g.State, len(g.Members))
		}
		time.Sleep(10 * time.Millisecond)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.Generation, hb.MemberID = "g", resps[0].Generation, resps[0].MemberID
	if code := c.Heartbeat(context.Background(), hb).ErrorCode; code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member heartbeat: %d, want UNKNOWN_MEMBER_ID", code)
	}
}

func commit(c *Coordinator, group string, gen int32, member string, topic string, offsets map[int32]int64) *kmsg.OffsetCommitResponse {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version, r.Group, r.Generation, r.MemberID = 8, group, gen, member
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		meta := fmt.Sprint("m", p)
		rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p, o, 3, &meta
		rt.Partitions = append(rt.Partitions, rp)
	}
	r.Topics = append(r.Topics, rt)
	return c.OffsetCommit(context.Background(), r)
}

func fetch(c *Coordinator, group string) map[string]map[int32]kmsg.OffsetFetchResponseGroupTopicPartition {
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 8
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	r.Groups = append(r.Groups, g)
	out := map[string]map[int32]kmsg.OffsetFetchResponseGroupTopicPartition{}
	for _, t := range c.OffsetFetch(context.Background(), r).Groups[0].Topics {
		out[t.Topic] = map[int32]kmsg.OffsetFetchResponseGroupTopicPartition{}
		for _, p := range t.Partitions {
			out[t.Topic][p.Partition] = p
		}
	}
	return out
}

func TestGroupCommitsAndMembersSurviveReload(t *testing.T) {
	log := newStorageLog(t)
	c := testCoordinator(t, log)
	resps := joinAll(t, c, "g", 1, time.Minute)
	m := resps[0]
	s := kmsg.NewPtrSyncGroupRequest()
	s.Group, s.Generation, s.MemberID = "g", m.Generation, m.MemberID
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = m.MemberID, []byte("all")
	s.GroupAssignment = append(s.GroupAssignment, a)
	c.SyncGroup(context.Background(), s)
	if r := commit(c, "g", m.Generation, m.MemberID, "t", map[int32]int64{0: 10, 1: 20}); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %+v", r)
	}
	if r := commit(c, "g", m.Generation+1, m.MemberID, "t", map[int32]int64{0: 99}); r.Topics[0].Partitions[0].ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("wrong-generation commit: %+v", r)
	}
	if r := commit(c, "g", -1, "", "t", map[int32]int64{0: 99}); r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("admin commit to an active group: %+v", r)
	}
	c.Close()

	re := testCoordinator(t, log)
	got := fetch(re, "g")
	if p := got["t"][0]; p.Offset != 10 || p.LeaderEpoch != 3 || *p.Metadata != "m0" {
		t.Fatalf("after reload partition 0: %+v", p)
	}
	if p := got["t"][1]; p.Offset != 20 {
		t.Fatalf("after reload partition 1: %+v", p)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"g"}
	g := re.DescribeGroups(context.Background(), dg).Groups[0]
	if g.State != "Stable" || len(g.Members) != 1 || g.Members[0].MemberID != m.MemberID || string(g.Members[0].MemberAssignment) != "all" {
		t.Fatalf("after reload: %+v", g)
	}
	// The restored member keeps heartbeating in its generation.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.Generation, hb.MemberID = "g", m.Generation, m.MemberID
	if code := re.Heartbeat(context.Background(), hb).ErrorCode; code != 0 {
		t.Fatalf("heartbeat after reload: %d", code)
	}
}

func TestGroupDeleteGroupsThenReloadForgetsIt(t *testing.T) {
	log := newStorageLog(t)
	c := testCoordinator(t, log)
	commit(c, "simple", -1, "", "t", map[int32]int64{0: 5})
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"simple", "nope"}
	r := c.DeleteGroups(context.Background(), del)
	if r.Groups[0].ErrorCode != 0 || r.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete: %+v", r.Groups)
	}
	c.Close()
	re := testCoordinator(t, log)
	if got := fetch(re, "simple"); len(got) != 0 {
		t.Fatalf("deleted group still has offsets: %v", got)
	}
	lg := kmsg.NewPtrListGroupsRequest()
	if groups := re.ListGroups(context.Background(), lg).Groups; len(groups) != 0 {
		t.Fatalf("deleted group listed: %+v", groups)
	}
}

func TestGroupStaticMemberRejoinFencesOldID(t *testing.T) {
	c := testCoordinator(t, newStorageLog(t))
	inst := "instance-1"
	j := joinReq("s", "", time.Minute)
	j.InstanceID = &inst
	first := c.JoinGroup(context.Background(), j)
	if first.ErrorCode != 0 || first.Generation != 1 {
		t.Fatalf("static join: %+v", first)
	}
	s := kmsg.NewPtrSyncGroupRequest()
	s.Group, s.Generation, s.MemberID, s.InstanceID = "s", 1, first.MemberID, &inst
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = first.MemberID, []byte("p0")
	s.GroupAssignment = append(s.GroupAssignment, a)
	c.SyncGroup(context.Background(), s)

	second := c.JoinGroup(context.Background(), j)
	if second.ErrorCode != 0 || second.Generation != 1 || second.MemberID == first.MemberID {
		t.Fatalf("static rejoin: %+v (want same generation, new id)", second)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.Generation, hb.MemberID, hb.InstanceID = "s", 1, first.MemberID, &inst
	if code := c.Heartbeat(context.Background(), hb).ErrorCode; code != kerr.FencedInstanceID.Code {
		t.Fatalf("old id heartbeat: %d, want FENCED_INSTANCE_ID", code)
	}
	s.MemberID, s.GroupAssignment = second.MemberID, nil
	if r := c.SyncGroup(context.Background(), s); r.ErrorCode != 0 || string(r.MemberAssignment) != "p0" {
		t.Fatalf("sync after static rejoin: %+v", r)
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.InstanceID = &inst
	leave.Version, leave.Group, leave.Members = 4, "s", []kmsg.LeaveGroupRequestMember{lm}
	if r := c.LeaveGroup(context.Background(), leave); r.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance id: %+v", r.Members)
	}
}

// FuzzGroupReplay feeds arbitrary key/value pairs to the partition loader.
func FuzzGroupReplay(f *testing.F) {
	f.Add(offsetRecord("g", "t", 1, &offset{offset: 5}).Key, offsetRecord("g", "t", 1, &offset{offset: 5}).Value)
	g := newGroup("g", 0, time.Now())
	g.protocol, g.protocolType = "range", "consumer"
	g.members["m"] = &member{id: "m", protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range"}}}
	gr := groupRecord("g", g)
	f.Add(gr.Key, gr.Value)
	f.Fuzz(func(t *testing.T, key, value []byte) {
		c, _ := New(DefaultConfig(), replayOnly{{Key: key, Value: value}}, Options{})
		c.replay(0)
	})
}

type replayOnly []Record

func (r replayOnly) Append(context.Context, int32, []Record) error { return nil }
func (r replayOnly) Replay(_ int32, fn func(Record) error) error {
	for _, rec := range r {
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// TestGroupReplayRefusesUnknownValueVersions: a group metadata or offset
// commit value of a version Kafka never wrote is refused by version, before
// the codec reads it. One such 21-byte value (FuzzGroupReplay's) kept the
// codec busy for 21 s and ended in a generic "not enough data".
func TestGroupReplayRefusesUnknownValueVersions(t *testing.T) {
	for _, rec := range []Record{
		{Key: []byte("\x00\x02\x00\x010"), Value: []byte("00\x010000\x01\x0100000000\x00\xd6\xd6\xd6\xd6\x03")},
		{Key: offsetRecord("g", "t", 1, &offset{offset: 5}).Key, Value: []byte("\x00\x09\x00\x00\x00\x00\x00\x00\x00\x05")},
	} {
		c, err := New(DefaultConfig(), replayOnly{rec}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.replay(0); err == nil || !strings.Contains(err.Error(), "unknown (Kafka writes 0 to 4)") {
			t.Errorf("replaying %q: %v, want the unknown version named", rec.Value, err)
		}
	}
}
