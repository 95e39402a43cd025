package mirror

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror/mm2"
)

// TestCheckpointOwnershipMovesOnWorkerDeath: two workers of one flow share
// the partitions; the one owning partition 0 of the first topic (alpha) is
// the only checkpointer. When it dies abruptly (its connections to both
// clusters drop at once, with no LeaveGroup, as when its process is
// killed), the survivor takes the partition over once the session times
// out, becomes the checkpointer, and translates positions the group
// committed after the death exactly: checkpoints on the target and the
// target group's offsets point at the copies of the records the source
// offsets point at.
func TestCheckpointOwnershipMovesOnWorkerDeath(t *testing.T) {
	start := time.Now()
	// A short session so that the death is noticed quickly; the broker's
	// minimum (6 s by default) is lowered to allow it.
	east := startCluster(t, kdrtest.WithConfig(func(c *broker.Config) { c.Group.MinSessionTimeout = time.Second }))
	west := startCluster(t)
	topics := []string{"alpha", "beta"} // alpha sorts first: alpha/0 decides
	const parts, n1, n2, group = 3, 40, 200, "billing"
	for _, tp := range topics {
		east.createTopic(tp, parts)
	}
	east.produce(ownerRecords(topics, parts, 0, n1)...)

	f := testFlow(east, west, "east", "west")
	f.CheckpointInterval = 200 * time.Millisecond
	f.SessionTimeout = 3 * time.Second
	ws := []*ownerWorker{startOwnerWorker(t, f), startOwnerWorker(t, f)}
	for _, tp := range topics {
		waitCount(t, west, "east."+tp, parts*n1, 30*time.Second)
	}

	// The rebalance settles: every partition has exactly one owner, both
	// workers have some, and exactly one worker checkpoints: the owner of
	// alpha/0.
	active := -1
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		owned := map[string]int{}
		for i, w := range ws {
			ps := partitionsOf(w.running)
			if len(ps) == 0 {
				return false, fmt.Sprintf("worker %d owns nothing", i)
			}
			for _, p := range ps {
				owned[p]++
			}
		}
		if len(owned) != len(topics)*parts || slices.ContainsFunc(slices.Collect(maps.Values(owned)), func(n int) bool { return n != 1 }) {
			return false, fmt.Sprintf("owners per partition: %v", owned)
		}
		active = -1
		var states []string
		for i, w := range ws {
			st := w.Status().Checkpoint
			states = append(states, fmt.Sprintf("worker %d active=%v owns %v", i, st.Active, partitionsOf(w.running)))
			if st.Active {
				if active >= 0 {
					return false, fmt.Sprintf("two checkpointers: %v", states)
				}
				active = i
			}
		}
		if active < 0 || !slices.Contains(partitionsOf(ws[active].running), "alpha/0") {
			return false, fmt.Sprintf("want one checkpointer, the owner of alpha/0: %v", states)
		}
		return true, ""
	})
	survivor := 1 - active
	t.Logf("worker %d checkpoints (owns %v); worker %d owns %v (%.1fs)", active, partitionsOf(ws[active].running),
		survivor, partitionsOf(ws[survivor].running), time.Since(start).Seconds())

	// The group commits known positions on the source; checkpoints and the
	// target group follow them exactly.
	pos1 := map[string]map[int32]int64{
		"alpha": {0: 3, 1: 17, 2: 29},
		"beta":  {0: 0, 1: 11, 2: 38},
	}
	ownerCommit(t, east, group, pos1)
	waitCheckpointsExact(t, east, west, group, pos1, nil)

	// Settled, there is one checkpointer through several of its cycles.
	last := ws[active].Status().Checkpoint.Last
	cycles, bad := 0, ""
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		a, b := ws[active].Status().Checkpoint, ws[survivor].Status().Checkpoint
		if (!a.Active || b.Active) && bad == "" {
			bad = fmt.Sprintf("checkpointer worker %d active=%v, worker %d active=%v", active, a.Active, survivor, b.Active)
		}
		if a.Last.After(last) {
			cycles++
			last = a.Last
		}
		return cycles >= 3, fmt.Sprintf("%d checkpoint cycles seen", cycles)
	})
	if bad != "" {
		t.Errorf("after the rebalance settled: %s", bad)
	}
	cpsBefore := ws[survivor].Status().Checkpoint.Checkpoints

	// More records, and the checkpointer dies while they are copied: what
	// it copied but did not commit is copied again by the survivor, so the
	// target may hold some records twice and translations are no longer
	// the identity.
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < n2; i += 2 {
			if err := east.tryProduce(ownerRecords(topics, parts, n1+i, 2)...); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		got := west.count("east.alpha") + west.count("east.beta")
		return got >= int64(len(topics)*parts*(n1+n2/4)), fmt.Sprintf("the target holds %d records", got)
	})
	ws[active].kill()
	died := time.Now()
	t.Logf("killed worker %d (%.1fs)", active, time.Since(start).Seconds())
	<-produced

	// New positions, committed after the death: only the survivor can
	// checkpoint them. beta/2 is at the head.
	pos2 := map[string]map[int32]int64{
		"alpha": {0: n1 + 5, 1: n1 + 101, 2: n1 + 199},
		"beta":  {0: n1, 1: n1 + 150, 2: n1 + n2},
	}
	ownerCommit(t, east, group, pos2)

	// The survivor takes over everything and becomes the checkpointer.
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		ps := partitionsOf(ws[survivor].running)
		st := ws[survivor].Status().Checkpoint
		return len(ps) == len(topics)*parts && st.Active, fmt.Sprintf("survivor owns %v, active=%v", ps, st.Active)
	})
	t.Logf("survivor checkpoints %.1fs after the death", time.Since(died).Seconds())
	for _, tp := range topics {
		kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
			got := len(ownerValues(west.readAll("east." + tp)))
			return got == parts*(n1+n2), fmt.Sprintf("east.%s holds %d distinct records, want %d", tp, got, parts*(n1+n2))
		})
		t.Logf("east.%s holds %d records for %d produced", tp, west.count("east."+tp), parts*(n1+n2))
	}
	waitCheckpointsExact(t, east, west, group, pos2, func() bool {
		// The checkpoints were written by the survivor: the dead worker
		// reaches neither cluster.
		return ws[survivor].Status().Checkpoint.Checkpoints > cpsBefore
	})

	// Settled again: the survivor is the one checkpointer. The dead worker
	// has no say (its process would be gone); once brought back to finish
	// its shutdown, the stopped worker does not claim to checkpoint either.
	if st := ws[survivor].Status().Checkpoint; !st.Active || st.Last.IsZero() {
		t.Errorf("survivor checkpoint status %+v", st)
	}
	ws[active].revive()
	ws[active].stop()
	if st := ws[active].Status(); st.Running || st.Checkpoint.Active || len(st.Partitions) > 0 {
		t.Errorf("stopped worker: running=%v, checkpoint active=%v, owns %v; it is not the checkpointer any more, yet "+
			"with the survivor two workers report Checkpoint.Active",
			st.Running, st.Checkpoint.Active, partitionsOf(ws[active].running))
	}
	t.Logf("done in %.1fs", time.Since(start).Seconds())
}

// waitCheckpointsExact waits until, for every position of want (source
// topic → partition → committed offset), the newest checkpoint of group on
// the target has that upstream offset and a downstream offset holding the
// copy of the source record at it (the target's end when the position is
// the source's end), and the target group has committed it. ok, if set,
// must hold as well.
func waitCheckpointsExact(t *testing.T, src, tgt *cluster, group string, want map[string]map[int32]int64, ok func() bool) {
	t.Helper()
	cpTopic := mm2.CheckpointsTopic("east")
	srcRecs, tgtRecs := map[string]map[int32][]*kgo.Record{}, map[string]map[int32][]*kgo.Record{}
	for tp := range want {
		srcRecs[tp] = src.readAll(tp)
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		if !tgt.hasTopic(cpTopic) {
			return false, cpTopic + " does not exist"
		}
		latest := map[string]map[int32]mm2.Checkpoint{}
		for _, r := range tgt.readAll(cpTopic)[0] {
			cp, err := mm2.DecodeCheckpoint(r.Key, r.Value)
			if err != nil {
				t.Fatalf("checkpoint at %d: %v", r.Offset, err)
			}
			if cp.Group != group {
				continue
			}
			if latest[cp.Topic] == nil {
				latest[cp.Topic] = map[int32]mm2.Checkpoint{}
			}
			latest[cp.Topic][cp.Partition] = cp
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		committed, err := tgt.adm.FetchOffsets(ctx, group)
		if err != nil {
			return false, "fetching the target group's offsets: " + err.Error()
		}
		for tp, byPart := range want {
			remote := "east." + tp
			for p, u := range byPart {
				cp, found := latest[remote][p]
				if !found || cp.UpstreamOffset != u {
					return false, fmt.Sprintf("%s/%d: newest checkpoint %+v (found %v), want upstream %d", remote, p, cp, found, u)
				}
				if tgtRecs[tp] == nil {
					tgtRecs[tp] = tgt.readAll(remote)
				}
				if why := ownerSameRecord(srcRecs[tp][p], tgtRecs[tp][p], u, cp.DownstreamOffset); why != "" {
					// Reread once: the copies may have grown.
					tgtRecs[tp] = tgt.readAll(remote)
					if why = ownerSameRecord(srcRecs[tp][p], tgtRecs[tp][p], u, cp.DownstreamOffset); why != "" {
						return false, fmt.Sprintf("%s/%d: checkpoint %d → %d: %s", remote, p, u, cp.DownstreamOffset, why)
					}
				}
				if o, found := committed.Lookup(remote, p); !found || o.Err != nil || o.At != cp.DownstreamOffset {
					return false, fmt.Sprintf("%s/%d on the target: group %s at %+v, want %d", remote, p, group, o, cp.DownstreamOffset)
				}
			}
		}
		if ok != nil && !ok() {
			return false, "the condition on the workers does not hold"
		}
		return true, ""
	})
}

// ownerSameRecord says why target offset d is not the exact translation of
// source offset u ("" if it is): the record at d is the copy of the record
// at u, or, for u at the source's end, d is the target's end.
func ownerSameRecord(src, tgt []*kgo.Record, u, d int64) string {
	if u == int64(len(src)) {
		if d != int64(len(tgt)) {
			return fmt.Sprintf("source position at its end (%d), target offset %d is not the target's end %d", u, d, len(tgt))
		}
		return ""
	}
	if d < 0 || d >= int64(len(tgt)) {
		return fmt.Sprintf("target offset outside the %d records copied", len(tgt))
	}
	s, c := src[u], tgt[d]
	if string(s.Key) != string(c.Key) || string(s.Value) != string(c.Value) {
		return fmt.Sprintf("source record %s=%s, target record %s=%s", s.Key, s.Value, c.Key, c.Value)
	}
	return ""
}

// ownerRecords are records from..from+n of every partition of topics, with
// keys and values naming topic, partition and index.
func ownerRecords(topics []string, parts, from, n int) []*kgo.Record {
	var out []*kgo.Record
	for _, tp := range topics {
		for p := range parts {
			for i := from; i < from+n; i++ {
				id := fmt.Sprintf("%s-%d-%04d", tp, p, i)
				out = append(out, &kgo.Record{Topic: tp, Partition: int32(p), Key: []byte("k-" + id), Value: []byte("v-" + id)})
			}
		}
	}
	return out
}

// ownerValues counts the copies of each value.
func ownerValues(recs map[int32][]*kgo.Record) map[string]int {
	out := map[string]int{}
	for _, rs := range recs {
		for _, r := range rs {
			out[string(r.Value)]++
		}
	}
	return out
}

// ownerCommit commits positions (topic → partition → offset) for group,
// which has no members, on c.
func ownerCommit(t *testing.T, c *cluster, group string, pos map[string]map[int32]int64) {
	t.Helper()
	offs := kadm.Offsets{}
	for tp, byPart := range pos {
		for p, o := range byPart {
			offs.Add(kadm.Offset{Topic: tp, Partition: p, At: o, LeaderEpoch: -1})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.adm.CommitAllOffsets(ctx, group, offs); err != nil {
		t.Fatalf("committing %v for %s: %v", pos, group, err)
	}
}

// ownerWorker is a worker whose network can be cut: kill drops every
// connection it has to either cluster and refuses new ones, then cancels
// its Run, so that it leaves nothing behind (no commit, no LeaveGroup), as
// a killed process does; the group notices through the session timeout.
type ownerWorker struct {
	*running
	net *ownerNet
}

func startOwnerWorker(t *testing.T, f Flow) *ownerWorker {
	t.Helper()
	n := &ownerNet{conns: map[net.Conn]struct{}{}}
	reg := prometheus.NewRegistry()
	w, err := New(f, Options{Logger: testLogger(t), Registerer: reg, ClientOpts: []kgo.Opt{
		kgo.Dialer(n.dial),
		// Heartbeats well inside the short session timeout.
		kgo.HeartbeatInterval(300 * time.Millisecond),
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Worker: w, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := w.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	ow := &ownerWorker{running: r, net: n}
	// Cleanups run last-in first-out: the network comes back before the
	// worker is stopped, so that its shutdown does not wait on dead
	// connections.
	t.Cleanup(r.stop)
	t.Cleanup(n.revive)
	return ow
}

func (w *ownerWorker) kill() {
	w.net.cut()
	w.cancel()
}

func (w *ownerWorker) revive() { w.net.revive() }

// ownerNet dials the worker's connections and can cut them all.
type ownerNet struct {
	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

var errOwnerNetDown = errors.New("test: the worker's network is down")

func (n *ownerNet) dial(ctx context.Context, network, host string) (net.Conn, error) {
	n.mu.Lock()
	down := n.down
	n.mu.Unlock()
	if down {
		return nil, errOwnerNetDown
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		c.Close()
		return nil, errOwnerNetDown
	}
	oc := &ownerConn{Conn: c, n: n}
	n.conns[oc] = struct{}{}
	return oc, nil
}

// cut resets every connection (as the kernel does for a killed process)
// and refuses new ones until revive.
func (n *ownerNet) cut() {
	n.mu.Lock()
	n.down = true
	conns := slices.Collect(maps.Keys(n.conns))
	clear(n.conns)
	n.mu.Unlock()
	for _, c := range conns {
		if tc, ok := c.(*ownerConn).Conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

func (n *ownerNet) revive() {
	n.mu.Lock()
	n.down = false
	n.mu.Unlock()
}

type ownerConn struct {
	net.Conn
	n *ownerNet
}

func (c *ownerConn) Close() error {
	c.n.mu.Lock()
	delete(c.n.conns, c)
	c.n.mu.Unlock()
	return c.Conn.Close()
}
