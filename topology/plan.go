package topology

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/mirror"
)

// Action is what a Change does.
type Action string

// Actions. Apply performs create, grow and configure; start-flow is
// information only (a flow's workers run under kdr up or kdr mirror run).
const (
	ActionCreate    Action = "create"     // create a topic
	ActionGrow      Action = "grow"       // add partitions to a topic
	ActionConfigure Action = "configure"  // set topic configs
	ActionStartFlow Action = "start-flow" // a flow is stopped (FlowWorkersState)
	ActionNone      Action = "none"       // a topic already as wanted (PlanOptions.IncludeUnchanged)
)

// Change is one difference between the clusters and the topology.
type Change struct {
	Action Action `json:"action"`
	// Cluster is the topology's name of the cluster changed (for
	// start-flow, the flow's source, which holds its workers' group).
	Cluster string `json:"cluster"`
	// Topic is the topic changed; empty for start-flow.
	Topic string `json:"topic,omitempty"`
	// Flow is the flow that wants the change, "east->west".
	Flow   string `json:"flow"`
	Detail Detail `json:"detail"`
}

// Detail says what exactly a Change does; which fields are set depends on
// the action.
type Detail struct {
	// SourceTopic is, for a remote topic, the source topic it mirrors.
	SourceTopic string `json:"source_topic,omitempty"`
	// Internal marks the mirror's own topics (heartbeats, offset syncs,
	// checkpoints).
	Internal bool `json:"internal,omitempty"`
	// Partitions is the partition count a create makes or a grow reaches;
	// CurrentPartitions the count a grow starts from.
	Partitions        int32 `json:"partitions,omitempty"`
	CurrentPartitions int32 `json:"current_partitions,omitempty"`
	// ReplicationFactor of a created topic; -1 is the cluster's default.
	ReplicationFactor int16 `json:"replication_factor,omitempty"`
	// Configs are set on a created topic.
	Configs map[string]string `json:"configs,omitempty"`
	// ConfigChanges are set by a configure, sorted by key.
	ConfigChanges []ConfigChange `json:"config_changes,omitempty"`
	// Group is, for start-flow, the workers' consumer group (no members).
	Group string `json:"group,omitempty"`
}

// ConfigChange is one topic config a configure sets.
type ConfigChange struct {
	Key string  `json:"key"`
	Old *string `json:"old"` // the current value; nil if the topic has none
	New string  `json:"new"`
}

// PlanResult is a plan: the changes, in the order ApplyPlan performs them
// (topics before the topics mirrored from them; within a flow, internal
// topics, then remote topics by source name, then start-flow).
type PlanResult struct {
	Topology string   `json:"topology"` // Metadata.Name
	Changes  []Change `json:"changes"`
	// Warnings are topics the plan skipped, each with the reason.
	Warnings []string `json:"warnings,omitempty"`
}

// Count is the number of changes with action a.
func (r *PlanResult) Count(a Action) int {
	n := 0
	for _, c := range r.Changes {
		if c.Action == a {
			n++
		}
	}
	return n
}

// HasChanges reports whether applying would change a cluster: some
// create, grow or configure.
func (r *PlanResult) HasChanges() bool {
	return r.Count(ActionCreate)+r.Count(ActionGrow)+r.Count(ActionConfigure) > 0
}

// Plan compares the clusters with t and returns what ApplyPlan would change
// so that every flow's (opts.Flows, by default t's) remote and internal
// topics exist, as the flows' workers would create them (see
// mirror.Flow.RemoteTopicSpec and InternalTopics), and which flows are
// stopped (FlowWorkersState). It reads the clusters and changes nothing.
// Topics that the plan itself creates are mirrored onward by later flows
// (east.orders created on west appears as west.east.orders on a cluster
// west mirrors to), as the workers would.
// A cluster that cannot be reached fails the plan with a *ClusterError.
func Plan(ctx context.Context, t *Topology, opts PlanOptions) (*PlanResult, error) {
	flows := opts.Flows
	if flows == nil {
		flows = t.Flows()
	}
	for _, f := range flows {
		if err := f.Flow.Validate(); err != nil {
			return nil, fmt.Errorf("topology: flow %s: %w", f.Name(), err)
		}
	}
	cs := newConns(t, opts)
	defer cs.close()
	p := &planner{conns: cs, opts: opts, states: map[string]*clusterState{}, changes: []Change{}}
	// Rounds until nothing new: a topic created for one flow may be the
	// source of another. Each hop adds a cluster alias under prefix
	// naming and cycles stop at the clusters, so len(clusters)+1 rounds
	// reach every topic; more would only repeat conflicting configures.
	for round := 0; round <= len(t.Clusters); round++ {
		before := len(p.changes)
		for _, f := range flows {
			if err := p.flow(ctx, f.Flow); err != nil {
				return nil, err
			}
		}
		if len(p.changes) == before {
			break
		}
	}
	for _, f := range flows {
		if err := p.workers(ctx, f.Flow); err != nil {
			return nil, err
		}
	}
	if opts.IncludeUnchanged {
		p.unchanged()
	}
	return &PlanResult{Topology: t.Metadata.Name, Changes: p.changes, Warnings: p.warnings}, nil
}

// planner holds the clusters as the plan so far would leave them.
type planner struct {
	conns    *conns
	opts     PlanOptions
	states   map[string]*clusterState
	changes  []Change
	warnings []string
	seen     []Change // unchanged topics, for IncludeUnchanged
}

// clusterState is one cluster's topics, read once and then updated with
// the planned changes.
type clusterState struct {
	conn   *conn
	topics map[string]*topicState
}

// topicState is a topic as it is, or as the plan leaves it.
type topicState struct {
	detail  kadm.TopicDetail
	configs []kadm.Config // as described (every config, with its source)
	err     error         // listing or describing the topic failed
	planned bool          // created by the plan
}

func (t *topicState) partitions() int32 { return int32(len(t.detail.Partitions)) }

// value is the topic's current value of config key.
func (t *topicState) value(key string) (string, bool) {
	for _, c := range t.configs {
		if c.Key == key && c.Value != nil {
			return *c.Value, true
		}
	}
	return "", false
}

// set records a config set on the topic (as a topic-level config, so that
// it is synced onward).
func (t *topicState) set(key, value string) {
	for i, c := range t.configs {
		if c.Key == key {
			t.configs[i].Value, t.configs[i].Source = &value, kmsg.ConfigSourceDynamicTopicConfig
			return
		}
	}
	t.configs = append(t.configs, kadm.Config{Key: key, Value: &value, Source: kmsg.ConfigSourceDynamicTopicConfig})
}

// state reads the named cluster's topics and their configs, once.
func (p *planner) state(ctx context.Context, name string) (*clusterState, error) {
	if s, ok := p.states[name]; ok {
		return s, nil
	}
	c, err := p.conns.get(ctx, name)
	if err != nil {
		return nil, err
	}
	var tds kadm.TopicDetails
	if err := c.do(ctx, "listing topics", func(ctx context.Context) (err error) {
		tds, err = c.adm.ListTopics(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	s := &clusterState{conn: c, topics: map[string]*topicState{}}
	var names []string
	for name, td := range tds {
		s.topics[name] = &topicState{detail: td, err: td.Err}
		if td.Err == nil {
			names = append(names, name)
		}
	}
	if len(names) > 0 {
		var rcs kadm.ResourceConfigs
		if err := c.do(ctx, "describing topic configs", func(ctx context.Context) (err error) {
			rcs, err = c.adm.DescribeTopicConfigs(ctx, names...)
			return err
		}); err != nil {
			return nil, err
		}
		for _, rc := range rcs {
			ts := s.topics[rc.Name]
			if ts == nil {
				continue
			}
			if rc.Err != nil {
				ts.err = rc.Err
				continue
			}
			ts.configs = rc.Configs
		}
	}
	p.states[name] = s
	return s, nil
}

// flow plans one flow against the current state: its internal topics,
// then a remote topic for each source topic it mirrors.
func (p *planner) flow(ctx context.Context, f mirror.Flow) error {
	src, err := p.state(ctx, f.SourceAlias)
	if err != nil {
		return err
	}
	tgt, err := p.state(ctx, f.TargetAlias)
	if err != nil {
		return err
	}
	srcInternal, tgtInternal := f.InternalTopics(src.conn.brokers, tgt.conn.brokers)
	for _, spec := range srcInternal {
		p.ensureInternal(f, f.SourceAlias, src, spec)
	}
	for _, spec := range tgtInternal {
		p.ensureInternal(f, f.TargetAlias, tgt, spec)
	}
	rules := f.TopicRules()
	for _, name := range slices.Sorted(maps.Keys(src.topics)) {
		st := src.topics[name]
		if st.err != nil {
			continue
		}
		if ok, _ := rules.ShouldReplicate(f.SourceAlias, f.TargetAlias, name); !ok {
			continue
		}
		p.ensureRemote(f, tgt, name, st)
	}
	return nil
}

// ensureInternal plans the creation of a missing internal topic. Existing
// ones are left as they are, as the workers leave them.
func (p *planner) ensureInternal(f mirror.Flow, cluster string, s *clusterState, spec mirror.TopicSpec) {
	if ts, ok := s.topics[spec.Name]; ok && !errors.Is(ts.err, kerr.UnknownTopicOrPartition) {
		p.noteUnchanged(f, cluster, spec.Name, Detail{Internal: true})
		return
	}
	p.create(f, cluster, s, spec, Detail{Internal: true})
}

// ensureRemote plans the remote topic of source topic name: created,
// grown, or reconfigured, as a worker would.
func (p *planner) ensureRemote(f mirror.Flow, tgt *clusterState, name string, st *topicState) {
	sd := st.detail
	sd.Topic = name
	spec := f.RemoteTopicSpec(sd, f.SyncedConfigs(st.configs), tgt.conn.brokers)
	detail := Detail{SourceTopic: name}
	ts, exists := tgt.topics[spec.Name]
	switch {
	case !exists || errors.Is(ts.err, kerr.UnknownTopicOrPartition):
		p.create(f, f.TargetAlias, tgt, spec, detail)
		return
	case ts.err != nil:
		p.warnings = append(p.warnings, fmt.Sprintf("%s/%s (remote topic of %s/%s, flow %s): skipped: %v",
			f.TargetAlias, spec.Name, f.SourceAlias, name, f.Name(), ts.err))
		return
	}
	changed := false
	if have := ts.partitions(); have < spec.Partitions {
		d := detail
		d.Partitions, d.CurrentPartitions = spec.Partitions, have
		p.add(Change{Action: ActionGrow, Cluster: f.TargetAlias, Topic: spec.Name, Flow: f.Name(), Detail: d})
		ts.detail.Partitions = sd.Partitions
		changed = true
	}
	var diffs []ConfigChange
	for _, k := range slices.Sorted(maps.Keys(spec.Configs)) {
		v := spec.Configs[k]
		old, ok := ts.value(k)
		if ok && old == v {
			continue
		}
		cc := ConfigChange{Key: k, New: v}
		if ok {
			cc.Old = &old
		}
		diffs = append(diffs, cc)
		ts.set(k, v)
	}
	if len(diffs) > 0 {
		d := detail
		d.ConfigChanges = diffs
		p.add(Change{Action: ActionConfigure, Cluster: f.TargetAlias, Topic: spec.Name, Flow: f.Name(), Detail: d})
		changed = true
	}
	if !changed {
		p.noteUnchanged(f, f.TargetAlias, spec.Name, detail)
	}
}

// create plans a topic's creation and adds it to the state, so that later
// flows see it (and mirror it onward).
func (p *planner) create(f mirror.Flow, cluster string, s *clusterState, spec mirror.TopicSpec, d Detail) {
	d.Partitions, d.ReplicationFactor, d.Configs = spec.Partitions, spec.ReplicationFactor, spec.Configs
	p.add(Change{Action: ActionCreate, Cluster: cluster, Topic: spec.Name, Flow: f.Name(), Detail: d})
	rf := max(int(spec.ReplicationFactor), 1)
	td := kadm.TopicDetail{Topic: spec.Name, Partitions: kadm.PartitionDetails{}}
	for i := range spec.Partitions {
		td.Partitions[i] = kadm.PartitionDetail{Topic: spec.Name, Partition: i, Replicas: make([]int32, rf)}
	}
	ts := &topicState{detail: td, planned: true}
	for _, k := range slices.Sorted(maps.Keys(spec.Configs)) {
		ts.set(k, spec.Configs[k])
	}
	s.topics[spec.Name] = ts
}

func (p *planner) add(c Change) { p.changes = append(p.changes, c) }

func (p *planner) noteUnchanged(f mirror.Flow, cluster, topic string, d Detail) {
	if p.opts.IncludeUnchanged {
		p.seen = append(p.seen, Change{Action: ActionNone, Cluster: cluster, Topic: topic, Flow: f.Name(), Detail: d})
	}
}

// unchanged appends an ActionNone change for each topic that the plan saw
// as wanted and changes nowhere, once each.
func (p *planner) unchanged() {
	touched := map[[2]string]bool{}
	for _, c := range p.changes {
		touched[[2]string{c.Cluster, c.Topic}] = true
	}
	for _, c := range p.seen {
		key := [2]string{c.Cluster, c.Topic}
		if !touched[key] {
			touched[key] = true
			p.changes = append(p.changes, c)
		}
	}
}

// workers adds a start-flow change if the flow is stopped as kdr status
// judges it (FlowWorkersState): its workers group has no members on the
// source although the source has a topic the flow mirrors. An empty group
// with nothing to mirror is idle workers as much as absent ones, and is
// not flagged.
func (p *planner) workers(ctx context.Context, f mirror.Flow) error {
	c, err := p.conns.get(ctx, f.SourceAlias)
	if err != nil {
		return err
	}
	var groups kadm.DescribedGroups
	if err := c.do(ctx, "describing group "+f.Group(), func(ctx context.Context) (err error) {
		groups, err = c.adm.DescribeGroups(ctx, f.Group())
		return err
	}); err != nil {
		return err
	}
	members := 0
	if g, ok := groups[f.Group()]; ok && g.Err == nil {
		members = len(g.Members)
	}
	// The topics as they are: those the plan would create do not exist
	// for the workers yet.
	var topics []string
	for name, ts := range p.states[f.SourceAlias].topics {
		if ts.err == nil && !ts.planned {
			topics = append(topics, name)
		}
	}
	if FlowWorkersState(f, members, topics) != FlowStopped {
		return nil
	}
	p.add(Change{Action: ActionStartFlow, Cluster: f.SourceAlias, Flow: f.Name(), Detail: Detail{Group: f.Group()}})
	return nil
}
