package up_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/topology"
	"github.com/kdr-io/kdr/up"
)

// TestUpMetricsCountAbortedOperations: a QA run found that an operation
// dropped by `kdr failover abort` did not show in
// kdr_failover_operations_total, which counted only results succeeded and
// failed, although the abort records it in the state's timeline that the
// metric is computed from. It aborts, through failover.Abort on a file
// store, a switchover left in progress at its preflight (nothing to undo
// on the clusters, which are never dialled), then exports that state.
func TestUpMetricsCountAbortedOperations(t *testing.T) {
	topo, err := topology.Parse([]byte(`apiVersion: kdr.io/v1
kind: Topology
metadata: {name: aborts}
clusters:
  - {name: east, bootstrap: ["127.0.0.1:1"]}
  - {name: west, bootstrap: ["127.0.0.1:2"]}
replication:
  - {type: active-passive, primary: east, standby: west}
`), "aborts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := store.Open(topo, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := st.CompareAndSwap(ctx, store.State{
		Topology: "aborts", Active: "east",
		Operation: &store.Operation{ID: "op-2", Kind: failover.KindSwitchover, From: "east", To: "west", Step: "preflight", Started: start.Add(time.Minute)},
		History: []store.Event{
			{At: start, Kind: failover.KindSwitchover, Step: failover.StepStarted},
			{At: start.Add(30 * time.Second), Kind: failover.KindSwitchover, Step: failover.StepFailed, Message: "preflight: lag"},
			{At: start.Add(time.Minute), Kind: failover.KindSwitchover, Step: failover.StepStarted},
		},
	}, 0); err != nil {
		t.Fatal(err)
	}
	res, err := failover.Abort(ctx, failover.Options{Topology: topo, StateDir: dir, Store: st, Holder: "test"})
	if err != nil || res.Operation == nil {
		t.Fatalf("abort: %+v, %v", res, err)
	}
	v, err := st.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := up.NewFailoverCollector(topo, func() (store.State, bool) { return v.State, true })
	want := `# HELP kdr_failover_operations_total Failover operations in the state's history, by result.
# TYPE kdr_failover_operations_total counter
kdr_failover_operations_total{kind="switchover",result="aborted",topology="aborts"} 1
kdr_failover_operations_total{kind="switchover",result="failed",topology="aborts"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "kdr_failover_operations_total"); err != nil {
		t.Error(err)
	}
}

// TestUpMetricsFlowExpected: kdr_up_flow_expected tells KdrMirrorDown which
// flows kdr up stops on purpose. A QA run found the alert firing
// (no_workers) for the old direction after every switchover. For the
// failover pattern's flow the direction the state has run is 1 and its
// reverse 0 (both 0 during a failback's resync); other flows are always 1.
func TestUpMetricsFlowExpected(t *testing.T) {
	topo, err := topology.Parse([]byte(`apiVersion: kdr.io/v1
kind: Topology
metadata: {name: fx}
clusters:
  - {name: east, bootstrap: ["127.0.0.1:1"]}
  - {name: west, bootstrap: ["127.0.0.1:2"]}
  - {name: nyc, bootstrap: ["127.0.0.1:3"]}
  - {name: ldn, bootstrap: ["127.0.0.1:4"]}
replication:
  - {type: active-passive, primary: east, standby: west}
  - {type: active-active, clusters: [nyc, ldn], mirror: {naming: prefix}}
`), "fx.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const head = "# HELP kdr_up_flow_expected 1 for a flow kdr up runs mirror workers for, 0 for a direction of the failover pattern's flow it keeps stopped because of the failover state.\n" +
		"# TYPE kdr_up_flow_expected gauge\n"
	for _, c := range []struct {
		name string
		st   store.State
		want string
	}{
		{"from the primary", store.State{Active: "east"}, `
kdr_up_flow_expected{flow="east->west",topology="fx"} 1
kdr_up_flow_expected{flow="west->east",topology="fx"} 0
`},
		{"after a switchover", store.State{Active: "west", Epoch: 1, Fenced: []string{"east"}}, `
kdr_up_flow_expected{flow="east->west",topology="fx"} 0
kdr_up_flow_expected{flow="west->east",topology="fx"} 1
`},
		{"during a failback's resync", store.State{Active: "west", Epoch: 1, Fenced: []string{"east"},
			Operation: &store.Operation{ID: "op-3", Kind: failover.KindFailback, From: "west", To: "east", Step: failover.StepResync, StepIndex: 4}}, `
kdr_up_flow_expected{flow="east->west",topology="fx"} 0
kdr_up_flow_expected{flow="west->east",topology="fx"} 0
`},
	} {
		col := up.NewFailoverCollector(topo, func() (store.State, bool) { return c.st, true })
		want := head + strings.TrimPrefix(c.want, "\n") +
			"kdr_up_flow_expected{flow=\"ldn->nyc\",topology=\"fx\"} 1\n" +
			"kdr_up_flow_expected{flow=\"nyc->ldn\",topology=\"fx\"} 1\n"
		if err := testutil.CollectAndCompare(col, strings.NewReader(want), "kdr_up_flow_expected"); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
