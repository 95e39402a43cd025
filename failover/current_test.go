package failover_test

import (
	"slices"
	"testing"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/topology"
)

// TestFailoverCurrentFlows: the failover pattern's flow runs from the
// state's active cluster and not at all during a failback's resync step;
// other patterns' flows are as the topology expands them.
func TestFailoverCurrentFlows(t *testing.T) {
	topo := &topology.Topology{Metadata: topology.Metadata{Name: "t"},
		Clusters: []topology.Cluster{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}},
		Replication: []topology.Pattern{
			{Type: topology.ActiveActive, Clusters: []string{"c", "d"}},
			{Type: topology.ActivePassive, Primary: "a", Standby: "b"},
		}}
	type flow struct {
		name             string
		follows, running bool
	}
	for _, tc := range []struct {
		state store.State
		want  []flow
	}{
		{store.State{}, []flow{{"c->d", false, true}, {"d->c", false, true}, {"a->b", true, true}}},
		{store.State{Active: "b", Epoch: 1}, []flow{{"c->d", false, true}, {"d->c", false, true}, {"b->a", true, true}}},
		{store.State{Active: "b", Epoch: 2, Operation: &store.Operation{Kind: failover.KindFailback, To: "a", Step: failover.StepResync}},
			[]flow{{"c->d", false, true}, {"d->c", false, true}, {"a->b", true, false}}},
		{store.State{Active: "a", Epoch: 3, Operation: &store.Operation{Kind: failover.KindFailback, To: "a", Step: "switchover:reverse"}},
			[]flow{{"c->d", false, true}, {"d->c", false, true}, {"a->b", true, true}}},
	} {
		var got []flow
		for _, f := range failover.CurrentFlows(topo, tc.state) {
			got = append(got, flow{f.Spec.Name(), f.Follows, f.Running})
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("state %+v: flows %+v, want %+v", tc.state, got, tc.want)
		}
	}
}
