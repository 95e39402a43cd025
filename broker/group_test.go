package broker_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// groupMember is a franz-go group consumer collecting what it reads.
type groupMember struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func startMember(t *testing.T, addr, group, topic string, balancer kgo.GroupBalancer, seen *sync.Map, opts ...kgo.Opt) *groupMember {
	t.Helper()
	cl := client(t, addr, append([]kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.Balancers(balancer),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(200 * time.Millisecond), kgo.RebalanceTimeout(5 * time.Second)}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	m := &groupMember{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { seen.Store(string(r.Value), true) })
		}
	}()
	return m
}

// stop leaves the group after committing what was consumed.
func (m *groupMember) stop(t *testing.T) {
	m.cancel()
	<-m.done
	if err := m.cl.CommitUncommittedOffsets(context.Background()); err != nil {
		t.Logf("final commit: %v", err)
	}
	m.cl.Close()
}

func produceN(t *testing.T, addr, topic, prefix string, n int) {
	t.Helper()
	p := client(t, addr, kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))})
	}
	if err := p.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func count(m *sync.Map) int {
	n := 0
	m.Range(func(any, any) bool { n++; return true })
	return n
}

// assignedPartitions returns the number of members and how many of the
// topic's partitions each partition is assigned to, from DescribeGroups.
func assignedPartitions(t *testing.T, adm *kadm.Client, group, topic string) (members int, owners map[int32]int, state string) {
	members, owners, state, err := kdrtest.GroupAssignment(ctxT(t), adm, group, topic)
	if err != nil {
		t.Fatalf("describing group %s: %v", group, err)
	}
	return members, owners, state
}

func TestBrokerGroupRebalancesAndResumesCommitsAfterRestart(t *testing.T) {
	for name, balancer := range map[string]kgo.GroupBalancer{
		"range": kgo.RangeBalancer(), "roundrobin": kgo.RoundRobinBalancer(), "sticky": kgo.StickyBalancer(), "cooperative-sticky": kgo.CooperativeStickyBalancer(),
	} {
		t.Run(name, func(t *testing.T) {
			b := kdrtest.StartBroker(t)
			adm := kadm.NewClient(client(t, b.Addr()))
			createTopic(t, adm, "g", 6, nil)
			produceN(t, b.Addr(), "g", "a", 300)
			seen := &sync.Map{}
			var members []*groupMember
			for i := 0; i < 3; i++ {
				members = append(members, startMember(t, b.Addr(), "grp", "g", balancer, seen))
			}
			kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
				n, owners, state := assignedPartitions(t, adm, "grp", "g")
				ok := n == 3 && len(owners) == 6 && state == "Stable" && count(seen) == 300
				for _, c := range owners {
					ok = ok && c == 1
				}
				return ok, fmt.Sprintf("%d members, owners %v, state %s, %d/300 records", n, owners, state, count(seen))
			})
			members[2].stop(t)
			produceN(t, b.Addr(), "g", "b", 60)
			kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
				n, owners, state := assignedPartitions(t, adm, "grp", "g")
				ok := n == 2 && len(owners) == 6 && state == "Stable" && count(seen) == 360
				for _, c := range owners {
					ok = ok && c == 1
				}
				return ok, fmt.Sprintf("%d members, owners %v, state %s, %d/360 records", n, owners, state, count(seen))
			})
			members[0].stop(t)
			members[1].stop(t)
			committed := func() int64 {
				os, err := adm.FetchOffsets(ctxT(t), "grp")
				if err != nil {
					t.Fatal(err)
				}
				var sum int64
				os.Each(func(o kadm.OffsetResponse) { sum += o.At })
				return sum
			}
			if c := committed(); c != 360 {
				t.Fatalf("committed offsets sum to %d, want 360", c)
			}
			b.Restart()
			if c := committed(); c != 360 {
				t.Fatalf("after restart committed offsets sum to %d, want 360", c)
			}
			produceN(t, b.Addr(), "g", "c", 30)
			fresh := &sync.Map{}
			m := startMember(t, b.Addr(), "grp", "g", balancer, fresh)
			kdrtest.Eventually(t, 30*time.Second, func() (bool, string) { return count(fresh) >= 30, fmt.Sprintf("%d/30", count(fresh)) })
			m.stop(t)
			var got []string
			fresh.Range(func(k, _ any) bool { got = append(got, k.(string)); return true })
			sort.Strings(got)
			if len(got) != 30 || got[0][0] != 'c' || got[29][0] != 'c' {
				t.Fatalf("after restart the group re-read old records: %d records, first %q last %q", len(got), got[0], got[len(got)-1])
			}
		})
	}
}

// TestBrokerGroupStaticMemberRestartKeepsAssignment restarts a static member
// (group.instance.id) within its session timeout: it gets its partitions back
// without a new generation.
func TestBrokerGroupStaticMemberRestartKeepsAssignment(t *testing.T) {
	b := kdrtest.StartBroker(t)
	adm := kadm.NewClient(client(t, b.Addr()))
	createTopic(t, adm, "s", 4, nil)
	seen := &sync.Map{}
	// Every rebalance hands member b its partitions again; count them.
	// b joins first so it stays the leader: a restarted static *leader*
	// re-runs the balancer client-side (KIP-814) and franz-go rejoins if
	// its plan differs, which new member ids can cause.
	var mu sync.Mutex
	assignments := 0
	bm := startMember(t, b.Addr(), "static", "s", kgo.RangeBalancer(), seen, kgo.InstanceID("b"),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { mu.Lock(); assignments++; mu.Unlock() }))
	rebalances := func() int { mu.Lock(); defer mu.Unlock(); return assignments }
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		n, owners, state := assignedPartitions(t, adm, "static", "s")
		return n == 1 && len(owners) == 4 && state == "Stable", fmt.Sprintf("%d members, %v, %s", n, owners, state)
	})
	a := startMember(t, b.Addr(), "static", "s", kgo.RangeBalancer(), seen, kgo.InstanceID("a"))
	// b is assigned twice: alone, then with a. The group turns Stable on
	// the leader's SyncGroup, before b's client has run its callback, so
	// wait for the count too.
	const before = 2
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		n, owners, state := assignedPartitions(t, adm, "static", "s")
		r := rebalances()
		return n == 2 && len(owners) == 4 && state == "Stable" && r == before, fmt.Sprintf("%d members, %v, %s, b assigned %d times", n, owners, state, r)
	})
	// A static member leaving by closing does not send LeaveGroup.
	a.cancel()
	<-a.done
	a.cl.CloseAllowingRebalance()
	a2 := startMember(t, b.Addr(), "static", "s", kgo.RangeBalancer(), seen, kgo.InstanceID("a"))
	produceN(t, b.Addr(), "s", "x", 40)
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		return count(seen) == 40, fmt.Sprintf("%d/40 records", count(seen))
	})
	if after := rebalances(); after != before {
		t.Fatalf("member b was assigned %d times, then %d: a static member restart caused a rebalance", before, after)
	}
	if n, owners, _ := assignedPartitions(t, adm, "static", "s"); n != 2 || len(owners) != 4 {
		t.Fatalf("after the restart: %d members, owners %v", n, owners)
	}
	a2.stop(t)
	bm.stop(t)
}

// TestBrokerGroupOffsetsGoWithDeletedTopic deletes a topic a group committed
// offsets on: the offsets go with it (tombstones, so also after a restart),
// as in Kafka, and a topic re-created under the name starts with none. They
// stayed once, and a mirror resuming from them on the re-created topic took
// the new log for a truncated one and skipped its first records.
func TestBrokerGroupOffsetsGoWithDeletedTopic(t *testing.T) {
	b := kdrtest.StartBroker(t)
	adm := kadm.NewClient(client(t, b.Addr()))
	createTopic(t, adm, "gone", 2, nil)
	createTopic(t, adm, "kept", 1, nil)
	produceN(t, b.Addr(), "gone", "g", 20)
	produceN(t, b.Addr(), "kept", "k", 5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: "gone", Partition: 0, At: 5, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: "gone", Partition: 1, At: 7, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: "kept", Partition: 0, At: 3, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, "grp", offs); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	committed := func() string {
		t.Helper()
		got, err := adm.FetchOffsets(ctx, "grp")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		got.Each(func(o kadm.OffsetResponse) { out = append(out, fmt.Sprintf("%s/%d=%d", o.Topic, o.Partition, o.At)) })
		sort.Strings(out)
		return fmt.Sprint(out)
	}
	if got := committed(); got != "[gone/0=5 gone/1=7 kept/0=3]" {
		t.Fatalf("committed before the deletion: %s", got)
	}
	if resp, err := adm.DeleteTopics(ctx, "gone"); err != nil || resp.Error() != nil {
		t.Fatalf("delete: %v %v", err, resp.Error())
	}
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		got := committed()
		return got == "[kept/0=3]", "committed after the deletion: " + got
	})
	b.Restart()
	adm = kadm.NewClient(client(t, b.Addr()))
	createTopic(t, adm, "gone", 1, nil)
	if got := committed(); got != "[kept/0=3]" {
		t.Fatalf("committed after a restart and the topic's re-creation: %s", got)
	}
}
