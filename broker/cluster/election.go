package cluster

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Topic config keys the metadata commands read.
const (
	// ConfigUncleanLeaderElection lets a partition with no live in-sync
	// replica elect an out-of-sync one, losing the records it lacks. The
	// default (no override) is false; it is fixed here rather than taken
	// from broker config because every node must decide alike.
	ConfigUncleanLeaderElection = "unclean.leader.election.enable"
	// ConfigMinInsyncReplicas is read by State.UnderMinISR.
	ConfigMinInsyncReplicas = "min.insync.replicas"
)

// UncleanLeaderElection reports whether the topic overrides
// unclean.leader.election.enable to true.
func (t *Topic) UncleanLeaderElection() bool {
	return strings.EqualFold(strings.TrimSpace(t.Configs[ConfigUncleanLeaderElection]), "true")
}

// ElectionResult is one partition's outcome of a command that elects
// leaders. Err is nil on success, else the Kafka code to report (only
// ElectLeaders sets it). Leader is the partition's leader afterwards, -1 if
// it is offline; Unclean marks an election that chose an out-of-sync
// replica.
type ElectionResult struct {
	Topic     string
	Partition int32
	Leader    int32
	Unclean   bool
	Err       *kerr.Error
}

// live reports whether id is a registered, unfenced broker.
func (s *State) live(id int32) bool {
	b, ok := s.Brokers[id]
	return ok && !b.Fenced
}

// chooseLeader picks p's leader: the current one if it is live and in the
// ISR; else the first replica, in Replicas order, that is live and in the
// ISR; else, when unclean is true, the first live replica that is not being
// added by a reassignment (those may hold no data at all), whose ISR then
// is just itself. Without a candidate the leader is -1 and the ISR stays.
func chooseLeader(s *State, p Partition, unclean bool) (leader int32, isr []int32, wasUnclean bool) {
	if p.Leader >= 0 && s.live(p.Leader) && slices.Contains(p.ISR, p.Leader) {
		return p.Leader, p.ISR, false
	}
	for _, r := range p.Replicas {
		if slices.Contains(p.ISR, r) && s.live(r) {
			return r, p.ISR, false
		}
	}
	if unclean {
		for _, r := range p.Replicas {
			if s.live(r) && !slices.Contains(p.AddingReplicas, r) {
				return r, []int32{r}, true
			}
		}
	}
	return -1, p.ISR, false
}

// bump returns next with its epochs advanced from prev: LeaderEpoch when
// the leader changed, PartitionEpoch when anything changed. changed reports
// the latter. Every command that edits a partition ends with bump, so a
// command moves each epoch at most once.
func bump(prev, next Partition) (Partition, bool) {
	next.LeaderEpoch, next.PartitionEpoch = prev.LeaderEpoch, prev.PartitionEpoch
	if next.Leader == prev.Leader && slices.Equal(next.ISR, prev.ISR) && slices.Equal(next.Replicas, prev.Replicas) &&
		slices.Equal(next.AddingReplicas, prev.AddingReplicas) && slices.Equal(next.RemovingReplicas, prev.RemovingReplicas) {
		return prev, false
	}
	if next.Leader != prev.Leader {
		next.LeaderEpoch++
	}
	next.PartitionEpoch++
	return next, true
}

// updatePartitions calls fn for every partition, topics in name order, and
// stores the partitions fn reports changed, copying each touched topic
// once. fn must not modify the slices of the partition it is given.
func (s *State) updatePartitions(fn func(t *Topic, i int32, p Partition) (Partition, bool)) {
	for _, name := range s.TopicNames() {
		t := s.Topics[name]
		var copied *Topic
		for i, p := range t.Partitions {
			np, changed := fn(t, int32(i), p)
			if !changed {
				continue
			}
			if copied == nil {
				copied = cloneTopic(t)
				s.Topics[name] = copied
			}
			copied.Partitions[i] = np
		}
	}
}

// setPartition stores p as partition i of the named topic, copying the
// topic.
func (s *State) setPartition(name string, i int32, p Partition) {
	t := cloneTopic(s.Topics[name])
	t.Partitions[i] = p
	s.Topics[name] = t
}

// without returns a new slice of list's elements not in drop, or nil if
// none remain.
func without(list []int32, drop ...int32) []int32 {
	var out []int32
	for _, id := range list {
		if !slices.Contains(drop, id) {
			out = append(out, id)
		}
	}
	return out
}

// only returns a new slice of list's elements that are in keep.
func only(list, keep []int32) []int32 {
	var out []int32
	for _, id := range list {
		if slices.Contains(keep, id) {
			out = append(out, id)
		}
	}
	return out
}
