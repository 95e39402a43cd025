package cluster

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// AlterPartitionReassignments starts, replaces or (with Replicas nil)
// cancels the reassignment of one partition to the target Replicas.
//
// While it runs the partition's Replicas is target followed by the current
// replicas not in target, AddingReplicas the target replicas not yet
// replicas and RemovingReplicas the current replicas not in target. The
// reassignment completes — Replicas becomes target and the removed replicas
// leave the ISR, with a new leader if the old one was removed — once every
// replica being added is in sync: at once if none is being added, else
// through the AlterPartition that adds the last one. A new target replaces
// one in progress, starting from the partition's replicas before it.
//
// Cancelling drops the replicas being added (from Replicas and the ISR);
// the remaining replicas keep their merged order, so a target that
// reordered the replicas also reorders them on cancel. Errors:
// UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (empty target,
// duplicate or unregistered broker, or no in-sync replica would be left),
// NO_REASSIGNMENT_IN_PROGRESS (cancel with none running). The result is
// the new Partition.
type AlterPartitionReassignments struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
}

// Reassignment is one partition's reassignment in progress.
type Reassignment struct {
	Topic            string
	Partition        int32
	Replicas         []int32
	AddingReplicas   []int32
	RemovingReplicas []int32
}

// Reassignments lists the reassignments in progress, in topic then
// partition order (ListPartitionReassignments).
func (s *State) Reassignments() []Reassignment {
	var out []Reassignment
	for _, name := range s.TopicNames() {
		for i, p := range s.Topics[name].Partitions {
			if reassigning(p) {
				out = append(out, Reassignment{Topic: name, Partition: int32(i), Replicas: p.Replicas,
					AddingReplicas: p.AddingReplicas, RemovingReplicas: p.RemovingReplicas})
			}
		}
	}
	return out
}

func reassigning(p Partition) bool { return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0 }

func (c *AlterPartitionReassignments) apply(s *State) (any, error) {
	t, ok := s.Topics[c.Topic]
	if !ok || c.Partition < 0 || int(c.Partition) >= len(t.Partitions) {
		return nil, kafkaErr(kerr.UnknownTopicOrPartition, "%s-%d does not exist", c.Topic, c.Partition)
	}
	p := t.Partitions[c.Partition]
	var np Partition
	var err error
	if c.Replicas == nil {
		np, err = c.cancel(s, p)
	} else {
		np, err = c.start(s, p)
	}
	if err != nil {
		return nil, err
	}
	if np, changed := bump(p, np); changed {
		s.setPartition(c.Topic, c.Partition, np)
		return np, nil
	}
	return p, nil
}

func (c *AlterPartitionReassignments) start(s *State, p Partition) (Partition, error) {
	target := c.Replicas
	if len(target) == 0 {
		return p, kafkaErr(kerr.InvalidReplicaAssignment, "%s-%d: the target replica list is empty", c.Topic, c.Partition)
	}
	for i, id := range target {
		if _, ok := s.Brokers[id]; !ok {
			return p, kafkaErr(kerr.InvalidReplicaAssignment, "%s-%d: broker %d is not registered", c.Topic, c.Partition, id)
		}
		if slices.Contains(target[:i], id) {
			return p, kafkaErr(kerr.InvalidReplicaAssignment, "%s-%d: broker %d is listed twice", c.Topic, c.Partition, id)
		}
	}
	current := without(p.Replicas, p.AddingReplicas...)
	np := p
	np.Replicas = append(append([]int32(nil), target...), without(current, target...)...)
	np.AddingReplicas = without(target, current...)
	np.RemovingReplicas = without(current, target...)
	np.ISR = only(p.ISR, np.Replicas)
	if len(np.ISR) == 0 {
		return p, kafkaErr(kerr.InvalidReplicaAssignment, "%s-%d: no in-sync replica would be left", c.Topic, c.Partition)
	}
	if p.Leader != -1 && !slices.Contains(np.Replicas, p.Leader) {
		if np.Leader, np.ISR, _ = chooseLeader(s, np, false); np.Leader == -1 {
			return p, kafkaErr(kerr.InvalidReplicaAssignment, "%s-%d: no live in-sync replica could lead", c.Topic, c.Partition)
		}
	}
	return completeReassignment(s, np), nil
}

func (c *AlterPartitionReassignments) cancel(s *State, p Partition) (Partition, error) {
	if !reassigning(p) {
		return p, kafkaErr(kerr.NoReassignmentInProgress, "%s-%d has no reassignment in progress", c.Topic, c.Partition)
	}
	np := p
	np.Replicas = without(p.Replicas, p.AddingReplicas...)
	np.ISR = without(p.ISR, p.AddingReplicas...)
	np.AddingReplicas, np.RemovingReplicas = nil, nil
	if len(np.ISR) == 0 {
		return p, kafkaErr(kerr.InvalidReplicaAssignment, "%s-%d: cannot cancel, none of the original replicas is in sync", c.Topic, c.Partition)
	}
	if slices.Contains(p.AddingReplicas, p.Leader) {
		if np.Leader, np.ISR, _ = chooseLeader(s, np, false); np.Leader == -1 {
			return p, kafkaErr(kerr.InvalidReplicaAssignment, "%s-%d: cannot cancel, no original replica could lead", c.Topic, c.Partition)
		}
	}
	return np, nil
}

// completeReassignment finishes p's reassignment if every replica being
// added is in sync and doing so leaves a leader (when p had one).
// Otherwise it returns p unchanged.
func completeReassignment(s *State, p Partition) Partition {
	if !reassigning(p) {
		return p
	}
	for _, id := range p.AddingReplicas {
		if !slices.Contains(p.ISR, id) {
			return p
		}
	}
	np := p
	np.Replicas = without(p.Replicas, p.RemovingReplicas...)
	np.ISR = without(p.ISR, p.RemovingReplicas...)
	np.AddingReplicas, np.RemovingReplicas = nil, nil
	if len(np.ISR) == 0 {
		return p
	}
	if slices.Contains(p.RemovingReplicas, p.Leader) || p.Leader == -1 {
		np.Leader, np.ISR, _ = chooseLeader(s, np, false)
		if np.Leader == -1 && p.Leader != -1 {
			return p
		}
	}
	return np
}
