package mirror

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestRemoteTopicSpecReplicationFactor: a remote topic takes the source
// topic's replication factor capped at the target's broker count, or the
// flow's ReplicationFactor as it is: an operator's explicit choice is not
// lowered quietly.
func TestRemoteTopicSpecReplicationFactor(t *testing.T) {
	replicas := func(n int) kadm.TopicDetail {
		d := kadm.TopicDetail{Topic: "orders", Partitions: kadm.PartitionDetails{}}
		for p := range int32(4) {
			pd := kadm.PartitionDetail{Topic: "orders", Partition: p}
			for b := range n {
				pd.Replicas = append(pd.Replicas, int32(b+1))
			}
			d.Partitions[p] = pd
		}
		return d
	}
	for _, c := range []struct {
		sourceRF, override, targetBrokers int
		want                              int16
	}{
		{3, 0, 5, 3}, // the source's
		{3, 0, 2, 2}, // capped at the target's brokers
		{1, 0, 3, 1},
		{3, 2, 5, 2}, // the flow's override
		{1, 3, 3, 3},
		{3, 4, 2, 4}, // an override is not capped
	} {
		f := DefaultFlow()
		f.SourceAlias, f.TargetAlias = "east", "west"
		f.ReplicationFactor = int16(c.override)
		spec := f.RemoteTopicSpec(replicas(c.sourceRF), nil, c.targetBrokers)
		if spec.ReplicationFactor != c.want || spec.Partitions != 4 || spec.Name != "east.orders" {
			t.Errorf("source RF %d, override %d, %d target brokers: %+v, want east.orders, 4 partitions, RF %d",
				c.sourceRF, c.override, c.targetBrokers, spec, c.want)
		}
	}
}

// TestInternalTopicsFollowSyncsLocation: the offset-syncs topic is among
// the source's internal topics, or the target's with OffsetSyncsLocation
// SyncsOnTarget (which kdr topology plan creates there).
func TestInternalTopicsFollowSyncsLocation(t *testing.T) {
	names := func(specs []TopicSpec) string {
		var out []string
		for _, s := range specs {
			out = append(out, s.Name)
		}
		return strings.Join(out, ",")
	}
	f := DefaultFlow()
	f.SourceAlias, f.TargetAlias = "east", "west"
	src, tgt := f.InternalTopics(3, 3)
	if names(src) != "mm2-offset-syncs.west.internal" || names(tgt) != "heartbeats,east.checkpoints.internal" {
		t.Errorf("syncs on the source: source %s, target %s", names(src), names(tgt))
	}
	f.OffsetSyncsLocation = SyncsOnTarget
	src, tgt = f.InternalTopics(3, 3)
	if names(src) != "" || names(tgt) != "mm2-offset-syncs.east.internal,heartbeats,east.checkpoints.internal" {
		t.Errorf("syncs on the target: source %s, target %s", names(src), names(tgt))
	}
}
