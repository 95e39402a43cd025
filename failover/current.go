package failover

import (
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/topology"
)

// CurrentFlow is one flow of a topology as the failover state has it run.
type CurrentFlow struct {
	// Spec is the direction that runs: for the failover pattern's flow,
	// from the active cluster; for the others, as the topology expands
	// them. While the flow does not run (Running false) it is the
	// topology's direction.
	Spec topology.FlowSpec
	// Follows marks the failover pattern's flow, whose direction follows
	// the state.
	Follows bool
	// Running is false while the state wants the flow stopped: during a
	// failback's resync step, when the old primary's topics are being
	// deleted and re-copied and nothing may mirror into it.
	Running bool
}

// CurrentFlows are t's flows, in the order and at the indexes of
// t.Flows(), as state st has them run. The failover pattern is the one
// ActivePassive(t, "", "") picks; a topology without a single
// active-passive pattern has no flow that follows the state. kdr up runs
// exactly these flows and kdr status reports on them, so that both agree
// on which direction is current.
func CurrentFlows(t *topology.Topology, st store.State) []CurrentFlow {
	p, err := ActivePassive(t, "", "")
	hasPattern := err == nil
	specs := t.Flows()
	out := make([]CurrentFlow, len(specs))
	for i, spec := range specs {
		out[i] = CurrentFlow{Spec: spec, Running: true}
		if hasPattern && spec.Pattern == p.Index {
			out[i].Follows = true
			if want, ok := PatternFlow(p, st); ok {
				out[i].Spec = want
			} else {
				out[i].Running = false
			}
		}
	}
	return out
}

// PatternFlow is the direction pattern p's flow runs in under state st
// (from ActiveOf(p, st)), or false when it must not run at all (a
// failback's resync step).
func PatternFlow(p Pattern, st store.State) (topology.FlowSpec, bool) {
	if op := st.Operation; op != nil && op.Kind == KindFailback && op.Step == StepResync {
		return topology.FlowSpec{}, false
	}
	return p.FlowSpec(ActiveOf(p, st)), true
}
