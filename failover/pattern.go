package failover

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/mirror"
	"github.com/kdr-io/kdr/mirror/naming"
	"github.com/kdr-io/kdr/topology"
)

// ErrNoPattern is wrapped when the topology has no active-passive pattern
// the command can work on.
var ErrNoPattern = errors.New("failover: no active-passive pattern")

// ErrUnknownCluster is wrapped when --to names no cluster of the topology
// (a usage error).
var ErrUnknownCluster = errors.New("no such cluster")

// Pattern is the topology's active-passive pattern that failover switches:
// its flow runs Active → the other cluster.
type Pattern struct {
	Index            int // in Topology.Replication
	Primary, Standby string
	// Spec is the pattern's flow as the topology expands it
	// (Primary → Standby).
	Spec topology.FlowSpec
}

// Other is the pattern's cluster that is not c.
func (p Pattern) Other(c string) string {
	if c == p.Primary {
		return p.Standby
	}
	return p.Primary
}

// Has reports whether c is one of the pattern's clusters.
func (p Pattern) Has(c string) bool { return c == p.Primary || c == p.Standby }

// Flow is the pattern's flow from → the other cluster: the topology's
// settings, with source and target swapped when from is the standby. Its
// workers group is the default for the direction
// (kdr-mirror-<from>-<to>).
func (p Pattern) Flow(from string) mirror.Flow {
	f := p.Spec.Flow
	if from == p.Standby {
		f.SourceAlias, f.TargetAlias = f.TargetAlias, f.SourceAlias
		f.Source, f.Target = f.Target, f.Source
		f.Source.Brokers = append([]string(nil), f.Source.Brokers...)
		f.Target.Brokers = append([]string(nil), f.Target.Brokers...)
		f.WorkersGroup = ""
	}
	return f
}

// FlowSpec is Flow as a topology.FlowSpec (workers and pattern index of
// the pattern's).
func (p Pattern) FlowSpec(from string) topology.FlowSpec {
	s := p.Spec
	s.Flow = p.Flow(from)
	return s
}

// Rules are the topic rules of the flow from → other, as the mirror
// applies them.
func (p Pattern) rules(from string) (naming.Rules, mirror.Flow, error) {
	f := p.Flow(from)
	filter, err := naming.NewFilter(f.Topics, f.TopicsExclude)
	if err != nil {
		return naming.Rules{}, f, err
	}
	return naming.Rules{Policy: f.Policy(), Topics: filter}, f, nil
}

// ActivePassive returns the topology's active-passive pattern: the only
// one, or, when there are several, the one joining a and b (either order;
// give "" to accept any single pattern).
func ActivePassive(t *topology.Topology, a, b string) (Pattern, error) {
	var found []int
	for i, p := range t.Replication {
		if p.Type == topology.ActivePassive {
			found = append(found, i)
		}
	}
	if len(found) == 0 {
		if len(t.Replication) == 0 {
			return Pattern{}, fmt.Errorf("%w: topology %s has no replication patterns, so it has no active and standby cluster to fail over between",
				ErrNoPattern, t.Metadata.Name)
		}
		types := make([]string, 0, len(t.Replication))
		for _, p := range t.Replication {
			types = append(types, p.Type)
		}
		return Pattern{}, fmt.Errorf("%w: topology %s has no %s pattern (it has: %s); kdr failover works on active-passive patterns only, whose flow it reverses",
			ErrNoPattern, t.Metadata.Name, topology.ActivePassive, strings.Join(types, ", "))
	}
	var match []int
	for _, i := range found {
		p := t.Replication[i]
		in := func(c string) bool { return c == "" || c == p.Primary || c == p.Standby }
		if in(a) && in(b) {
			match = append(match, i)
		}
	}
	switch {
	case len(found) == 1 && len(match) == 0:
		p := t.Replication[found[0]]
		return Pattern{}, fmt.Errorf("%w: the active-passive pattern of topology %s joins %s and %s, not %s",
			ErrNoPattern, t.Metadata.Name, p.Primary, p.Standby, strings.Trim(a+" and "+b, " and"))
	case len(match) == 0:
		return Pattern{}, fmt.Errorf("%w: no active-passive pattern of topology %s joins %s",
			ErrNoPattern, t.Metadata.Name, strings.Trim(a+" and "+b, " and"))
	case len(match) > 1:
		return Pattern{}, fmt.Errorf("%w: topology %s has %d active-passive patterns joining %s; name clusters that pick one",
			ErrNoPattern, t.Metadata.Name, len(match), strings.Trim(a+" and "+b, " and"))
	}
	i := match[0]
	p := Pattern{Index: i, Primary: t.Replication[i].Primary, Standby: t.Replication[i].Standby}
	for _, s := range t.Flows() {
		if s.Pattern == i {
			p.Spec = s
			break
		}
	}
	return p, nil
}

// patternFor picks the pattern an operation targeting to uses: the single
// active-passive one, or the one joining to and the active cluster.
func patternFor(t *topology.Topology, st store.State, to string) (Pattern, error) {
	if t.ClusterByName(to) == nil {
		names := make([]string, 0, len(t.Clusters))
		for _, c := range t.Clusters {
			names = append(names, c.Name)
		}
		return Pattern{}, fmt.Errorf("failover: --to %s: %w in topology %s (clusters: %s)", to, ErrUnknownCluster, t.Metadata.Name, strings.Join(names, ", "))
	}
	p, err := ActivePassive(t, to, st.Active)
	if err != nil {
		return p, err
	}
	return p, nil
}

// ActiveOf is the active cluster a state document names for pattern p:
// State.Active when it is one of p's clusters, else p's primary (no
// document yet, or a document about another pattern).
func ActiveOf(p Pattern, st store.State) string {
	if p.Has(st.Active) {
		return st.Active
	}
	return p.Primary
}
