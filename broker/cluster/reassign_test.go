package cluster_test

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
)

func TestClusterReassignmentCompletesWhenAddedReplicasJoinTheISR(t *testing.T) {
	f := fsmWith(live(1, 2, 3, 4), nil, part(1, ids(1, 2, 3), ids(1, 2, 3)))
	res, err := f.Apply(&cluster.AlterPartitionReassignments{Topic: "t", Replicas: ids(2, 3, 4)})
	if err != nil {
		t.Fatal(err)
	}
	moving := cluster.Partition{Leader: 1, PartitionEpoch: 1, Replicas: ids(2, 3, 4, 1), ISR: ids(1, 2, 3),
		AddingReplicas: ids(4), RemovingReplicas: ids(1)}
	if !reflect.DeepEqual(res, moving) {
		t.Fatalf("reassigning: %+v, want %+v", res, moving)
	}
	wantList := []cluster.Reassignment{{Topic: "t", Replicas: ids(2, 3, 4, 1), AddingReplicas: ids(4), RemovingReplicas: ids(1)}}
	if got := f.State().Reassignments(); !reflect.DeepEqual(got, wantList) {
		t.Fatalf("Reassignments() = %+v", got)
	}
	if n := f.State().UnderReplicated(); n != 0 {
		t.Fatalf("a replica being added counted as under-replicated (%d)", n)
	}

	// The leader adds 4 once it caught up: the move completes and the
	// removed leader hands over to the first target replica.
	res, err = f.Apply(&cluster.AlterPartition{Topic: "t", LeaderID: 1, PartitionEpoch: 1, NewISR: ids(1, 2, 3, 4)})
	if err != nil {
		t.Fatal(err)
	}
	done := cluster.Partition{Leader: 2, LeaderEpoch: 1, PartitionEpoch: 2, Replicas: ids(2, 3, 4), ISR: ids(2, 3, 4)}
	if !reflect.DeepEqual(res, done) || !reflect.DeepEqual(f.State().Topics["t"].Partitions[0], done) {
		t.Fatalf("completed: %+v, want %+v", res, done)
	}
	if got := f.State().Reassignments(); got != nil {
		t.Fatalf("Reassignments() after completion = %+v", got)
	}
}

func TestClusterAlterPartitionReassignments(t *testing.T) {
	inProgress := cluster.Partition{Leader: 1, PartitionEpoch: 1, Replicas: ids(2, 3, 4, 1), ISR: ids(1, 2, 3),
		AddingReplicas: ids(4), RemovingReplicas: ids(1)}
	for name, c := range map[string]struct {
		before cluster.Partition
		cmd    cluster.AlterPartitionReassignments
		err    *kerr.Error
		after  cluster.Partition
	}{
		"nothing added completes at once, leader moves": {
			before: part(1, ids(1, 2, 3), ids(1, 2, 3)),
			cmd:    cluster.AlterPartitionReassignments{Topic: "t", Replicas: ids(3, 2)},
			after:  cluster.Partition{Leader: 3, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: ids(3, 2), ISR: ids(2, 3)},
		},
		"reorder only": {
			before: part(1, ids(1, 2, 3), ids(1, 2, 3)),
			cmd:    cluster.AlterPartitionReassignments{Topic: "t", Replicas: ids(3, 2, 1)},
			after:  cluster.Partition{Leader: 1, PartitionEpoch: 1, Replicas: ids(3, 2, 1), ISR: ids(1, 2, 3)},
		},
		"same replicas: nothing to do": {
			before: part(1, ids(1, 2, 3), ids(1, 2, 3)),
			cmd:    cluster.AlterPartitionReassignments{Topic: "t", Replicas: ids(1, 2, 3)},
			after:  part(1, ids(1, 2, 3), ids(1, 2, 3)),
		},
		"removal waits while no target replica is in sync": {
			before: part(1, ids(1, 2), ids(1)),
			cmd:    cluster.AlterPartitionReassignments{Topic: "t", Replicas: ids(2)},
			after:  cluster.Partition{Leader: 1, PartitionEpoch: 1, Replicas: ids(2, 1), ISR: ids(1), RemovingReplicas: ids(1)},
		},
		"cancel reverts": {
			before: inProgress,
			cmd:    cluster.AlterPartitionReassignments{Topic: "t"},
			after:  cluster.Partition{Leader: 1, PartitionEpoch: 2, Replicas: ids(2, 3, 1), ISR: ids(1, 2, 3)},
		},
		"new target replaces the one in progress": {
			before: inProgress,
			cmd:    cluster.AlterPartitionReassignments{Topic: "t", Replicas: ids(1, 2, 4)},
			after: cluster.Partition{Leader: 1, PartitionEpoch: 2, Replicas: ids(1, 2, 4, 3), ISR: ids(1, 2, 3),
				AddingReplicas: ids(4), RemovingReplicas: ids(3)},
		},
		"cancel without one": {
			before: part(1, ids(1, 2), ids(1, 2)), cmd: cluster.AlterPartitionReassignments{Topic: "t"},
			err: kerr.NoReassignmentInProgress, after: part(1, ids(1, 2), ids(1, 2)),
		},
		"duplicate broker": {
			before: part(1, ids(1, 2), ids(1, 2)), cmd: cluster.AlterPartitionReassignments{Topic: "t", Replicas: ids(3, 3)},
			err: kerr.InvalidReplicaAssignment, after: part(1, ids(1, 2), ids(1, 2)),
		},
		"unregistered broker": {
			before: part(1, ids(1, 2), ids(1, 2)), cmd: cluster.AlterPartitionReassignments{Topic: "t", Replicas: ids(1, 9)},
			err: kerr.InvalidReplicaAssignment, after: part(1, ids(1, 2), ids(1, 2)),
		},
		"empty target": {
			before: part(1, ids(1, 2), ids(1, 2)), cmd: cluster.AlterPartitionReassignments{Topic: "t", Replicas: []int32{}},
			err: kerr.InvalidReplicaAssignment, after: part(1, ids(1, 2), ids(1, 2)),
		},
		"unknown partition": {
			before: part(1, ids(1, 2), ids(1, 2)), cmd: cluster.AlterPartitionReassignments{Topic: "t", Partition: 2, Replicas: ids(1)},
			err: kerr.UnknownTopicOrPartition, after: part(1, ids(1, 2), ids(1, 2)),
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := fsmWith(live(1, 2, 3, 4), nil, c.before)
			_, err := f.Apply(&c.cmd)
			wantCode(t, err, c.err)
			if got := f.State().Topics["t"].Partitions[0]; !reflect.DeepEqual(got, c.after) {
				t.Fatalf("partition %+v, want %+v", got, c.after)
			}
		})
	}
}
