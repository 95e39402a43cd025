package mirror

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestMirrorTranslatesAcrossCompactionGaps: a compacted source topic has
// offsets with no record. The mirror copies the survivors (contiguous on
// the target), and a group committed on the source at a removed offset, at
// a survivor in the middle, at the first survivor and at the head translates to
// the target offset of the first record it had not consumed: a consumer
// of the group on the target reads exactly the survivors after each
// committed offset, no duplicate, no gap.
func TestMirrorTranslatesAcrossCompactionGaps(t *testing.T) {
	east := startCluster(t, kdrtest.WithConfig(func(c *broker.Config) { c.LogMaintenanceInterval = 50 * time.Millisecond }))
	west := startCluster(t)
	const topic, group = "accounts", "ledger"
	str := func(s string) *string { return &s }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := east.adm.CreateTopic(ctx, 2, 1, map[string]*string{
		"cleanup.policy": str("compact"), "segment.bytes": str("300"),
		"min.cleanable.dirty.ratio": str("0.01"), "delete.retention.ms": str("0"),
	}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	// Five rounds over ten keys per partition, each round closed by a key
	// written only once, one record per produce so that segments roll
	// between them: compaction keeps the last round and the once-written
	// keys, and the offsets between them become gaps.
	const rounds, keys = 5, 10
	produced := int64(0)
	for r := range rounds {
		for k := range keys + 1 {
			key := fmt.Sprintf("acct-%d", k)
			if k == keys {
				key = fmt.Sprintf("once-%d", r)
			}
			for p := range int32(2) {
				east.produce(&kgo.Record{Topic: topic, Partition: p, Key: []byte(key),
					Value: []byte(fmt.Sprintf("p%d-round%d-%s", p, r, key))})
				produced++
			}
		}
	}
	// Compacted to the end: each partition keeps the last round and the
	// once-written keys, and nothing more is cleaned once the mirror runs.
	var src map[int32][]*kgo.Record
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		src = east.readAll(topic)
		return len(src[0]) == keys+rounds && len(src[1]) == keys+rounds,
			fmt.Sprintf("%d and %d of %d records per partition left; want %d", len(src[0]), len(src[1]), produced/2, keys+rounds)
	})

	// Where the group stands on each partition: in the middle of a run of
	// removed offsets (a gap, far behind the head), at a survivor
	// in the middle, at the first survivor and at the head. (An offset
	// before the first survivor, in a compacted prefix the mirror never
	// copied a record of, is not translated: no sync covers it, as in MM2.)
	// gap is an offset in the middle of the n-th run of removed offsets
	// between two survivors.
	gap := func(rs []*kgo.Record, n int) int64 {
		for i := 1; i < len(rs); i++ {
			if rs[i].Offset > rs[i-1].Offset+1 {
				if n == 0 {
					return (rs[i-1].Offset + rs[i].Offset) / 2
				}
				n--
			}
		}
		t.Fatalf("fewer gaps than wanted between survivors at %d..%d", rs[0].Offset, rs[len(rs)-1].Offset)
		return 0
	}
	ends := east.ends(topic)
	positions := []map[int32]int64{
		{0: gap(src[0], 0), 1: src[1][len(src[1])/2].Offset},
		{0: src[0][0].Offset, 1: ends[1]},
		{0: gap(src[0], 2), 1: gap(src[1], 1)},
	}
	f := testFlow(east, west, "east", "west")
	f.CheckpointInterval = 200 * time.Millisecond
	// The remote topic keeps every record copied: with the source's configs
	// it would be compacted too, and the target's own gaps are not what is
	// tested here.
	f.SyncTopicConfigs = false
	startWorker(t, f)
	remote := "east." + topic
	checkTargetHolds(t, west, remote, src)

	checkGroupsFollow(t, east, west, topic, remote, group, src, positions)
}

// checkTargetHolds waits until remote on tgt holds the records of copied
// (per partition, the source records the mirror copies, in order) and
// checks that it holds exactly them, at offsets 0, 1, 2...
func checkTargetHolds(t *testing.T, tgt *cluster, remote string, copied map[int32][]*kgo.Record) {
	t.Helper()
	var n int
	for _, rs := range copied {
		n += len(rs)
	}
	waitCount(t, tgt, remote, int64(n), 30*time.Second)
	got := tgt.readAll(remote)
	for p, rs := range copied {
		if len(got[p]) != len(rs) {
			t.Fatalf("partition %d: %d records on the target, %d copied from the source", p, len(got[p]), len(rs))
		}
		for i, r := range rs {
			if g := got[p][i]; !sameRecord(g, r) || g.Offset != int64(i) {
				t.Fatalf("partition %d: target offset %d holds %s=%s, want source offset %d's %s=%s",
					p, g.Offset, g.Key, g.Value, r.Offset, r.Key, r.Value)
			}
		}
	}
}

// checkGroupsFollow commits a group on src for each of positions (source
// topic's partition → offset) and checks that the mirror commits it on tgt
// at the target offset of the first copied record at or after each offset,
// and that a consumer of the group on tgt reads exactly the copied records
// from there. copied holds, per partition, the source records the mirror
// copies, in order: the record at index i is at target offset i.
func checkGroupsFollow(t *testing.T, src, tgt *cluster, topic, remote, group string, copied map[int32][]*kgo.Record, positions []map[int32]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, committed := range positions {
		g := fmt.Sprintf("%s-%d", group, i)
		commit := kadm.Offsets{}
		want := map[int32]int64{} // the target offset of the first copied record at or after the committed offset
		var rest []string         // what the group had not consumed
		for p, o := range committed {
			commit.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
			want[p] = int64(len(copied[p]))
			for j, r := range copied[p] {
				if r.Offset >= o {
					want[p] = int64(j)
					break
				}
			}
			for _, r := range copied[p][want[p]:] {
				rest = append(rest, string(r.Value))
			}
		}
		if err := src.adm.CommitAllOffsets(ctx, g, commit); err != nil {
			t.Fatal(err)
		}
		kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
			got, err := tgt.adm.FetchOffsets(ctx, g)
			if err != nil {
				return false, err.Error()
			}
			for p, o := range want {
				if r, ok := got.Lookup(remote, p); !ok || r.Err != nil || r.At != o {
					return false, fmt.Sprintf("group %s, partition %d committed at %d on the source: %+v on the target, want %d",
						g, p, committed[p], r, o)
				}
			}
			return true, ""
		})
		if got := readGroup(t, tgt, g, remote, want); !slices.Equal(got, sorted(rest)) {
			t.Fatalf("group %s read %v on the target, want the %d copied records after its source offsets %v: %v",
				g, got, len(rest), committed, sorted(rest))
		}
	}
}

// readGroup reads topic on c as group from its committed offsets to the
// end offsets and returns the values sorted; from gives, per partition,
// where the group stands, to know when nothing is left.
func readGroup(t *testing.T, c *cluster, group, topic string, from map[int32]int64) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends := c.ends(topic)
	reached := map[int32]bool{}
	for p, o := range from {
		reached[p] = o >= ends[p]
	}
	all := func() bool {
		for _, r := range reached {
			if !r {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for !all() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s as %s: %d records before the deadline; partitions at their end: %v", topic, group, len(got), reached)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, string(r.Value))
			if r.Offset >= ends[r.Partition]-1 {
				reached[r.Partition] = true
			}
		})
	}
	return sorted(got)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
