package failover_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// eastExisting is a topology whose primary east is an existing cluster
// (started and killed by the test) and whose standby west kdr up runs.
const eastExisting = `apiVersion: kdr.io/v1
kind: Topology
metadata:
  name: fopromote
clusters:
  - name: east
    bootstrap: [%s]
  - name: west
    local: {brokers: 1, basePort: %d}
replication:
  - type: active-passive
    primary: east
    standby: west
mirror:
  naming: identity
  refreshInterval: 500ms
  checkpointInterval: 1s
  sessionTimeout: 6s
  offsetSyncsTopicLocation: %s
failover:
  timeouts: {fence: 10s, drain: 30s, promote: 30s}
`

// resultJSON extracts the JSON summary a failover command printed after
// its progress lines.
func resultJSON(t *testing.T, out string) failover.Result {
	t.Helper()
	i := strings.Index(out, "\n{")
	if i < 0 {
		t.Fatalf("no JSON result in:\n%s", out)
	}
	var r failover.Result
	if err := json.NewDecoder(strings.NewReader(out[i+1:])).Decode(&r); err != nil {
		t.Fatalf("decoding the result: %v\n%s", err, out)
	}
	return r
}

func values(rs []*kgo.Record) map[string]bool {
	out := map[string]bool{}
	for _, r := range rs {
		out[string(r.Value)] = true
	}
	return out
}

// TestFailoverPromoteForceAndFailback: east acknowledges records the
// mirror never copies, then dies; promote --force makes west active and
// records what it had; east comes back and is fenced; failback finds
// exactly the diverged records, preserves them in east.diverged on west,
// re-copies west's topics into east and switches back. Once with the
// flows' offset syncs on their sources, once on their targets.
func TestFailoverPromoteForceAndFailback(t *testing.T) {
	for _, loc := range []string{"source", "target"} {
		t.Run("syncs on the "+loc, func(t *testing.T) { promoteForceAndFailback(t, loc) })
	}
}

func promoteForceAndFailback(t *testing.T, syncsLocation string) {
	bin := binary(t)
	east := kdrtest.StartCluster(t, bin, 1)
	used := map[int]bool{}
	e := startEstate(t, fmt.Sprintf(eastExisting, east.Bootstrap()[0], kdrtest.FreeBasePort(t, 1, used), syncsLocation))
	ctx := context.Background()
	if _, err := east.Admin().CreateTopic(ctx, 2, 1, nil, "payments"); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if err := tryProduce(e.bootstrap("east"), "payments", fmt.Sprintf("m-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		n := len(readAll(t, e.bootstrap("west"), "payments"))
		return n == 30, fmt.Sprintf("%d of 30 records mirrored", n)
	})

	// The mirror stops (SIGSTOP), east acknowledges more, and dies.
	worker := e.endpoints().Flows[0].Workers[0].PID
	if err := syscall.Kill(worker, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var diverged []string
	for i := range 5 {
		v := fmt.Sprintf("diverged-%d", i)
		if err := tryProduce(e.bootstrap("east"), "payments", v); err != nil {
			t.Fatal(err)
		}
		diverged = append(diverged, v)
	}
	east.Kill(1)
	syscall.Kill(worker, syscall.SIGCONT)

	out, code := e.failover(nil, "promote", "west", "--force", "--output", "json")
	if code != 0 {
		t.Fatalf("promote exit %d:\n%s", code, out)
	}
	res := resultJSON(t, out)
	var got int64
	for _, ps := range res.LastReceived["payments"] {
		got += ps
	}
	if got < 30 { // at least once: a re-copy may add a few
		t.Fatalf("last received %v, want at least the 30 mirrored records over the partitions", res.LastReceived)
	}
	t.Logf("promote:\n%s", out)
	// What reached west before east died is not diverged (a fetch answered
	// just before SIGSTOP is still copied after SIGCONT); the rest is.
	onWest := values(readAll(t, e.bootstrap("west"), "payments"))
	var want []string
	for _, v := range diverged {
		if !onWest[v] {
			want = append(want, v)
		}
	}
	if len(want) == 0 {
		t.Fatalf("every record reached west before east died; nothing diverged to test")
	}
	st := e.doc()
	if st.Active != "west" || st.Epoch != 1 || !slices.Equal(st.Fenced, []string{"east"}) || st.Operation != nil {
		t.Fatalf("state after promote: %+v", st)
	}
	if !strings.Contains(out, "fence of east pending") {
		t.Errorf("promote output does not say the fence is pending:\n%s", out)
	}

	// West takes writes; east comes back and is fenced by kdr up.
	for i := range 10 {
		if err := tryProduce(e.bootstrap("west"), "payments", fmt.Sprintf("w-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	east.Brokers[0].Restart()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		_, err := east.Admin().CreateTopic(ctx, 1, 1, nil, "probe")
		return err == nil, fmt.Sprintf("creating topic probe on east: %v", err)
	})
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		err := tryProduce(e.bootstrap("east"), "probe", "x")
		return isPolicyViolation(err), fmt.Sprintf("produce to east: %v", err)
	})

	out, code = e.failover(nil, "failback", "east", "--output", "json")
	if code != 0 {
		t.Fatalf("failback exit %d:\n%s", code, out)
	}
	t.Logf("failback:\n%s", out)
	res = resultJSON(t, out)
	var gotDiverged []string
	for _, d := range res.Diverged {
		gotDiverged = append(gotDiverged, string(d.Value))
	}
	slices.Sort(gotDiverged)
	if !slices.Equal(gotDiverged, want) {
		t.Fatalf("diverged %v, want %v", gotDiverged, want)
	}
	preserved := values(readAll(t, e.bootstrap("west"), failover.DivergedTopic("east")))
	if len(preserved) != len(want) {
		t.Fatalf("east.diverged on west holds %v, want %v", preserved, want)
	}
	for _, v := range want {
		if !preserved[v] {
			t.Fatalf("%s not in east.diverged on west (%v)", v, preserved)
		}
	}

	st = e.doc()
	if st.Active != "east" || st.Epoch != 2 || !slices.Equal(st.Fenced, []string{"west"}) || st.Operation != nil {
		t.Fatalf("state after failback: %+v", st)
	}
	onEast := values(readAll(t, e.bootstrap("east"), "payments"))
	for v := range values(readAll(t, e.bootstrap("west"), "payments")) {
		if !onEast[v] {
			t.Fatalf("%s is on west but not on east after failback", v)
		}
	}
	for _, v := range want {
		if onEast[v] {
			t.Fatalf("diverged record %s is still in east's payments", v)
		}
	}
	// East is active and mirrored to west again.
	if err := tryProduce(e.bootstrap("east"), "payments", "final"); err != nil {
		t.Fatalf("produce to east after failback: %v", err)
	}
	if err := tryProduce(e.bootstrap("west"), "payments", "refused"); !isPolicyViolation(err) {
		t.Fatalf("produce to west after failback: %v, want POLICY_VIOLATION", err)
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		return values(readAll(t, e.bootstrap("west"), "payments"))["final"], "final not on west yet"
	})
	// Each flow's syncs are where the topology puts them, before and after
	// the failback's re-copy: mm2-offset-syncs.<target>.internal on the
	// flow's source, or mm2-offset-syncs.<source>.internal on its target
	// (MM2's names). Either way each cluster holds the topic named after
	// the other: with syncs on the targets, west holds east->west's.
	holds := map[string]string{"east": "mm2-offset-syncs.west.internal", "west": "mm2-offset-syncs.east.internal"}
	for cluster, syncs := range holds {
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.bootstrap(cluster)...))
		if err != nil {
			t.Fatal(err)
		}
		topics, err := kadmClient(cl).ListTopics(ctx)
		cl.Close()
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, name := range topics.Names() {
			if strings.HasPrefix(name, "mm2-offset-syncs.") {
				found = append(found, name)
			}
		}
		if !slices.Equal(found, []string{syncs}) {
			t.Errorf("offset-syncs topics on %s: %v, want %s", cluster, found, syncs)
		}
	}
}
