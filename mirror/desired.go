package mirror

import (
	"context"
	"regexp"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/mirror/mm2"
	"github.com/kdr-io/kdr/mirror/naming"
)

// The topics a flow's workers create, computed without running a worker,
// so that a planner (kdr topology plan) predicts exactly what the workers
// would do. The workers use the same functions.

// TopicSpec is a topic as a flow's workers create it.
type TopicSpec struct {
	Name       string
	Partitions int32
	// ReplicationFactor is -1 for the cluster's default
	// (default.replication.factor).
	ReplicationFactor int16
	// Configs are set at creation (and, for remote topics, kept in sync).
	Configs map[string]string
}

// TopicRules are the rules the flow's workers select source topics with:
// Policy, Topics/TopicsExclude, MM2's internal-topic and cycle rules (see
// naming.Rules.ShouldReplicate). Call Validate first; invalid patterns
// select nothing.
func (f Flow) TopicRules() naming.Rules {
	filter, _ := naming.NewFilter(f.Topics, f.TopicsExclude)
	return naming.Rules{Policy: f.Policy(), Topics: filter}
}

// SyncedConfigs returns the configs of a source topic (as described by
// DescribeTopicConfigs) that the workers set on its remote topic: those set
// on the topic itself, minus ConfigsExclude and sensitive ones. Nil when
// SyncTopicConfigs is off.
func (f Flow) SyncedConfigs(configs []kadm.Config) map[string]string {
	if !f.SyncTopicConfigs {
		return nil
	}
	excluded, _ := naming.ParsePatterns(f.ConfigsExclude)
	return syncedConfigs(configs, excluded)
}

// RemoteTopicSpec is the remote topic the workers create for source topic
// sd on a target with targetBrokers brokers: named by the naming policy,
// with the source's partition count and replication factor (or
// ReplicationFactor), and configs (from SyncedConfigs).
func (f Flow) RemoteTopicSpec(sd kadm.TopicDetail, configs map[string]string, targetBrokers int) TopicSpec {
	return TopicSpec{
		Name:              f.Policy().RemoteTopic(f.SourceAlias, sd.Topic),
		Partitions:        int32(len(sd.Partitions)),
		ReplicationFactor: remoteRF(f, sd, targetBrokers),
		Configs:           configs,
	}
}

// InternalTopics are the MM2 topics the workers create: the offset-syncs
// topic (cleanup.policy=delete, retention.ms from OffsetSyncsRetention) on
// the source, or on the target with OffsetSyncsLocation SyncsOnTarget; on
// the target the heartbeats topic (compacted, unless heartbeats are
// disabled) and the checkpoints topic (compacted). Each has one partition.
//
// Their replication factor is InternalReplicationFactor on their cluster, of
// sourceBrokers or targetBrokers brokers, as the workers create them.
func (f Flow) InternalTopics(sourceBrokers, targetBrokers int) (source, target []TopicSpec) {
	syncsRF := f.InternalReplicationFactor(sourceBrokers)
	if f.OffsetSyncsLocation == SyncsOnTarget {
		syncsRF = f.InternalReplicationFactor(targetBrokers)
	}
	syncs := TopicSpec{
		Name: f.SyncsTopic(), Partitions: 1, ReplicationFactor: syncsRF,
		Configs: map[string]string{
			"cleanup.policy": "delete",
			"retention.ms":   strconv.FormatInt(f.OffsetSyncsRetention.Milliseconds(), 10),
		},
	}
	if f.OffsetSyncsLocation == SyncsOnTarget {
		target = append(target, syncs)
	} else {
		source = append(source, syncs)
	}
	if f.HeartbeatInterval > 0 {
		target = append(target, TopicSpec{
			Name: mm2.HeartbeatsTopic, Partitions: 1, ReplicationFactor: f.InternalReplicationFactor(targetBrokers),
			Configs: map[string]string{"cleanup.policy": "compact"},
		})
	}
	target = append(target, TopicSpec{
		Name: mm2.CheckpointsTopic(f.SourceAlias), Partitions: 1, ReplicationFactor: f.InternalReplicationFactor(targetBrokers),
		Configs: map[string]string{"cleanup.policy": "compact"},
	})
	return source, target
}

// syncedConfigs keeps the topic-level, non-sensitive, non-excluded configs.
func syncedConfigs(configs []kadm.Config, excluded []*regexp.Regexp) map[string]string {
	m := map[string]string{}
	for _, c := range configs {
		if c.Source != kmsg.ConfigSourceDynamicTopicConfig || c.Sensitive || c.Value == nil || configExcluded(excluded, c.Key) {
			continue
		}
		m[c.Key] = *c.Value
	}
	return m
}

// remoteRF is ReplicationFactor, or the source topic's (its partition 0's
// replica count) capped at the target's broker count.
func remoteRF(f Flow, sd kadm.TopicDetail, brokers int) int16 {
	if f.ReplicationFactor > 0 {
		return f.ReplicationFactor
	}
	rf := int16(1)
	if p, ok := sd.Partitions[0]; ok && len(p.Replicas) > 0 {
		rf = int16(len(p.Replicas))
	}
	return min(rf, int16(max(brokers, 1)))
}

// InternalReplicationFactor is the replication factor of the internal topics
// (heartbeats, checkpoints, offset syncs) on a cluster of brokers brokers:
// ReplicationFactor, or 3 capped at the broker count (MM2 uses 3).
func (f Flow) InternalReplicationFactor(brokers int) int16 {
	if f.ReplicationFactor > 0 {
		return f.ReplicationFactor
	}
	return int16(min(max(brokers, 1), 3))
}

// BrokerCount is the number of brokers adm's cluster lists, at least 1: the
// count InternalReplicationFactor takes.
func BrokerCount(ctx context.Context, adm *kadm.Client) (int, error) {
	m, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return 0, err
	}
	return max(len(m.Brokers), 1), nil
}
