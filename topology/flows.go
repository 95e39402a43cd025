package topology

import (
	"fmt"
	"strconv"

	"github.com/kdr-io/kdr/mirror"
)

// FlowSpec is one flow a pattern expands into.
type FlowSpec struct {
	// Flow has aliases, brokers and every setting resolved (pattern over
	// topology over mirror.DefaultFlow).
	Flow mirror.Flow
	// Workers is how many worker processes kdr up runs for it.
	Workers int
	// Pattern is the index in Topology.Replication it comes from.
	Pattern int
}

// Name is the flow's name, "east->west".
func (f FlowSpec) Name() string { return f.Flow.Name() }

// ClusterByName returns the named cluster, or nil.
func (t *Topology) ClusterByName(name string) *Cluster {
	for i := range t.Clusters {
		if t.Clusters[i].Name == name {
			return &t.Clusters[i]
		}
	}
	return nil
}

// BootstrapServers are the cluster's bootstrap servers: Bootstrap, or
// every broker of a local cluster.
func (c Cluster) BootstrapServers() []string {
	if c.Local == nil {
		return c.Bootstrap
	}
	out := make([]string, c.Local.Brokers)
	for i := range out {
		kafka, _, _ := c.Local.LocalPorts(i)
		out[i] = c.Local.host() + ":" + strconv.Itoa(kafka)
	}
	return out
}

func (l LocalCluster) host() string {
	if l.Host == "" {
		return "127.0.0.1"
	}
	return l.Host
}

// Flows expands every pattern into its flows, in document order. Call it on
// a validated topology; unknown clusters give flows with no brokers.
func (t *Topology) Flows() []FlowSpec {
	var out []FlowSpec
	for i, p := range t.Replication {
		add := func(src, dst string, sel *TopicSelection) {
			out = append(out, t.flow(i, p, src, dst, sel))
		}
		switch p.Type {
		case ActivePassive:
			add(p.Primary, p.Standby, nil)
		case ActiveActive:
			for _, a := range p.Clusters {
				for _, b := range p.Clusters {
					if a != b {
						add(a, b, nil)
					}
				}
			}
		case HubAndSpoke:
			for _, s := range p.Spokes {
				if p.Up != nil {
					add(s, p.Hub, p.Up)
				}
			}
			for _, s := range p.Spokes {
				if p.Down != nil {
					add(p.Hub, s, p.Down)
				}
			}
		}
	}
	return out
}

func (t *Topology) flow(i int, p Pattern, src, dst string, sel *TopicSelection) FlowSpec {
	f := mirror.DefaultFlow()
	f.SourceAlias, f.TargetAlias = src, dst
	if c := t.ClusterByName(src); c != nil {
		f.Source = mirror.ClusterConn{Brokers: c.BootstrapServers(), Security: c.Security}
	}
	if c := t.ClusterByName(dst); c != nil {
		f.Target = mirror.ClusterConn{Brokers: c.BootstrapServers(), Security: c.Security}
	}
	workers := 1
	for _, m := range []MirrorSettings{t.Mirror, p.Mirror} {
		m.apply(&f)
		if m.Workers > 0 {
			workers = m.Workers
		}
	}
	if p.Type == ActiveActive && len(p.Clusters) >= 3 && f.Naming == mirror.NamingIdentity &&
		t.Mirror.LocalRecordsOnly == nil && p.Mirror.LocalRecordsOnly == nil {
		// A mesh: every cluster gets each record straight from its
		// origin, so a forwarded copy would be a second one.
		f.LocalRecordsOnly = true
	}
	if sel != nil {
		if sel.Topics != "" {
			f.Topics = sel.Topics
		}
		if sel.TopicsExclude != "" {
			f.TopicsExclude = sel.TopicsExclude
		}
	}
	return FlowSpec{Flow: f, Workers: workers, Pattern: i}
}

// apply sets the fields m sets.
func (m MirrorSettings) apply(f *mirror.Flow) {
	str := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	str(&f.Topics, m.Topics)
	str(&f.TopicsExclude, m.TopicsExclude)
	str(&f.Groups, m.Groups)
	str(&f.GroupsExclude, m.GroupsExclude)
	str(&f.Naming, m.Naming)
	str(&f.Separator, m.Separator)
	if m.RefreshInterval != 0 {
		f.RefreshInterval = m.RefreshInterval
	}
	if m.CheckpointInterval != 0 {
		f.CheckpointInterval = m.CheckpointInterval
	}
	if m.HeartbeatInterval != 0 {
		f.HeartbeatInterval = m.HeartbeatInterval
	}
	if m.SessionTimeout != 0 {
		f.SessionTimeout = m.SessionTimeout
	}
	if m.DeliveryTimeout != 0 {
		f.DeliveryTimeout = m.DeliveryTimeout
	}
	if m.ReplicationFactor != 0 {
		f.ReplicationFactor = m.ReplicationFactor
	}
	if m.BatchRecords != 0 {
		f.BatchRecords = m.BatchRecords
	}
	if m.CommitInterval != 0 {
		f.CommitInterval = m.CommitInterval
	}
	if m.OffsetSyncsRetention != 0 {
		f.OffsetSyncsRetention = m.OffsetSyncsRetention
	}
	if m.MaxBytesPerSecond != nil {
		f.MaxBytesPerSecond = *m.MaxBytesPerSecond
	}
	if m.OffsetSyncsLocation != "" {
		f.OffsetSyncsLocation = m.OffsetSyncsLocation
	}
	boolean := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	boolean(&f.SyncGroupOffsets, m.SyncGroupOffsets)
	boolean(&f.SyncTopicConfigs, m.SyncTopicConfigs)
	boolean(&f.SyncTopicACLs, m.SyncTopicACLs)
	boolean(&f.SyncTopicDeletions, m.SyncTopicDeletions)
	boolean(&f.LocalRecordsOnly, m.LocalRecordsOnly)
	boolean(&f.ForwardBatches, m.ForwardBatches)
}

// String names a flow for messages.
func (f FlowSpec) String() string {
	return fmt.Sprintf("%s (%d worker(s))", f.Name(), f.Workers)
}
