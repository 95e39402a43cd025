package cluster_test

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
)

func TestClusterFenceBroker(t *testing.T) {
	for name, c := range map[string]struct {
		brokers map[int32]cluster.Broker
		configs map[string]string
		before  cluster.Partition
		fence   cluster.FenceBroker
		err     *kerr.Error
		after   cluster.Partition
		results []cluster.ElectionResult
	}{
		"leader moves to first live ISR member": {
			brokers: live(1, 2, 3), before: part(1, ids(1, 3, 2), ids(1, 2, 3)),
			fence:   cluster.FenceBroker{NodeID: 1, Epoch: 1},
			after:   cluster.Partition{Leader: 3, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: ids(1, 3, 2), ISR: ids(2, 3)},
			results: []cluster.ElectionResult{{Topic: "t", Leader: 3}},
		},
		"follower leaves the ISR, leader epoch stays": {
			brokers: live(1, 2, 3), before: part(1, ids(1, 2, 3), ids(1, 2, 3)),
			fence: cluster.FenceBroker{NodeID: 2, Epoch: 1},
			after: cluster.Partition{Leader: 1, PartitionEpoch: 1, Replicas: ids(1, 2, 3), ISR: ids(1, 3)},
		},
		"fenced ISR members are skipped": {
			brokers: fenced(live(1, 2, 3), 2), before: part(1, ids(1, 2, 3), ids(1, 2, 3)),
			fence:   cluster.FenceBroker{NodeID: 1, Epoch: 1},
			after:   cluster.Partition{Leader: 3, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: ids(1, 2, 3), ISR: ids(2, 3)},
			results: []cluster.ElectionResult{{Topic: "t", Leader: 3}},
		},
		"last ISR member stays and the partition goes offline": {
			brokers: live(1, 2), before: part(1, ids(1, 2), ids(1)),
			fence:   cluster.FenceBroker{NodeID: 1, Epoch: 1},
			after:   cluster.Partition{Leader: -1, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: ids(1, 2), ISR: ids(1)},
			results: []cluster.ElectionResult{{Topic: "t", Leader: -1}},
		},
		"unclean election when the topic allows it": {
			brokers: live(1, 2), configs: unclean, before: part(1, ids(1, 2), ids(1)),
			fence:   cluster.FenceBroker{NodeID: 1, Epoch: 1},
			after:   cluster.Partition{Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: ids(1, 2), ISR: ids(2)},
			results: []cluster.ElectionResult{{Topic: "t", Leader: 2, Unclean: true}},
		},
		"unclean allowed but no live replica": {
			brokers: fenced(live(1, 2), 2), configs: unclean, before: part(1, ids(1, 2), ids(1)),
			fence:   cluster.FenceBroker{NodeID: 1, Epoch: 1},
			after:   cluster.Partition{Leader: -1, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: ids(1, 2), ISR: ids(1)},
			results: []cluster.ElectionResult{{Topic: "t", Leader: -1}},
		},
		"not a replica: nothing changes": {
			brokers: live(1, 2, 3), before: part(1, ids(1, 2), ids(1, 2)),
			fence: cluster.FenceBroker{NodeID: 3, Epoch: 1},
			after: part(1, ids(1, 2), ids(1, 2)),
		},
		"stale epoch": {
			brokers: live(1, 2), before: part(1, ids(1, 2), ids(1, 2)),
			fence: cluster.FenceBroker{NodeID: 1, Epoch: 0}, err: kerr.StaleBrokerEpoch,
			after: part(1, ids(1, 2), ids(1, 2)),
		},
		"unknown broker": {
			brokers: live(1, 2), before: part(1, ids(1, 2), ids(1, 2)),
			fence: cluster.FenceBroker{NodeID: 9, Epoch: 1}, err: kerr.BrokerIDNotRegistered,
			after: part(1, ids(1, 2), ids(1, 2)),
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := fsmWith(c.brokers, c.configs, c.before)
			res, err := f.Apply(&c.fence)
			wantCode(t, err, c.err)
			if got := f.State().Topics["t"].Partitions[0]; !reflect.DeepEqual(got, c.after) {
				t.Fatalf("partition %+v, want %+v", got, c.after)
			}
			if c.err != nil {
				return
			}
			if got := res.([]cluster.ElectionResult); !reflect.DeepEqual(got, c.results) {
				t.Fatalf("results %+v, want %+v", got, c.results)
			}
			if !f.State().Brokers[c.fence.NodeID].Fenced {
				t.Fatal("broker not fenced")
			}
		})
	}
}

func TestClusterUnfenceBroker(t *testing.T) {
	for name, c := range map[string]struct {
		configs map[string]string
		before  cluster.Partition
		unfence cluster.UnfenceBroker
		err     *kerr.Error
		after   cluster.Partition
	}{
		"leads offline partitions it is in sync for": {
			before:  cluster.Partition{Leader: -1, LeaderEpoch: 4, PartitionEpoch: 7, Replicas: ids(1, 2), ISR: ids(1)},
			unfence: cluster.UnfenceBroker{NodeID: 1, Epoch: 1},
			after:   cluster.Partition{Leader: 1, LeaderEpoch: 5, PartitionEpoch: 8, Replicas: ids(1, 2), ISR: ids(1)},
		},
		"out of sync: stays offline without unclean election": {
			before:  cluster.Partition{Leader: -1, Replicas: ids(1, 2), ISR: ids(2)},
			unfence: cluster.UnfenceBroker{NodeID: 1, Epoch: 1},
			after:   cluster.Partition{Leader: -1, Replicas: ids(1, 2), ISR: ids(2)},
		},
		"out of sync: leads when unclean election is enabled": {
			configs: unclean,
			before:  cluster.Partition{Leader: -1, Replicas: ids(1, 2), ISR: ids(2)},
			unfence: cluster.UnfenceBroker{NodeID: 1, Epoch: 1},
			after:   cluster.Partition{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: ids(1, 2), ISR: ids(1)},
		},
		"stale epoch": {
			before:  cluster.Partition{Leader: -1, Replicas: ids(1, 2), ISR: ids(1)},
			unfence: cluster.UnfenceBroker{NodeID: 1, Epoch: 2}, err: kerr.StaleBrokerEpoch,
			after: cluster.Partition{Leader: -1, Replicas: ids(1, 2), ISR: ids(1)},
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := fsmWith(fenced(live(1, 2), 1, 2), c.configs, c.before)
			_, err := f.Apply(&c.unfence)
			wantCode(t, err, c.err)
			if got := f.State().Topics["t"].Partitions[0]; !reflect.DeepEqual(got, c.after) {
				t.Fatalf("partition %+v, want %+v", got, c.after)
			}
			if fenced := f.State().Brokers[1].Fenced; fenced != (c.err != nil) {
				t.Fatalf("broker 1 fenced = %v", fenced)
			}
		})
	}
}

func TestClusterRegisterBrokerEpochsAndFencing(t *testing.T) {
	rack := "r1"
	f := fsmWith(live(1, 2), nil, part(1, ids(1, 2), ids(1, 2)))
	register := func(id int32, port int32) cluster.Broker {
		t.Helper()
		res, err := f.Apply(&cluster.RegisterBroker{Broker: cluster.Broker{NodeID: id, Host: "new", Port: port, Rack: &rack, Fenced: true, Epoch: 99}})
		if err != nil {
			t.Fatal(err)
		}
		b := res.(cluster.Broker)
		if b != f.State().Brokers[id] {
			t.Fatalf("result %+v, state %+v", b, f.State().Brokers[id])
		}
		return b
	}

	if b := register(3, 3); b.Epoch != 1 || b.Fenced {
		t.Fatalf("new broker: %+v, want epoch 1, unfenced", b)
	}
	if b := register(3, 33); b.Epoch != 2 || b.Fenced || b.Port != 33 || *b.Rack != "r1" {
		t.Fatalf("broker hosting nothing re-registered: %+v, want epoch 2, unfenced, new address", b)
	}
	// A restarted replica is fenced until a heartbeat unfences it; its old
	// incarnation's leadership and ISR membership go at once.
	if b := register(1, 1); b.Epoch != 2 || !b.Fenced {
		t.Fatalf("replica re-registered: %+v, want epoch 2, fenced", b)
	}
	want := cluster.Partition{Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: ids(1, 2), ISR: ids(2)}
	if got := f.State().Topics["t"].Partitions[0]; !reflect.DeepEqual(got, want) {
		t.Fatalf("partition %+v, want %+v", got, want)
	}
	if _, err := f.Apply(&cluster.UnfenceBroker{NodeID: 1, Epoch: 1}); err == nil {
		t.Fatal("unfenced with the previous incarnation's epoch")
	}
	if _, err := f.Apply(&cluster.UnfenceBroker{NodeID: 1, Epoch: 2}); err != nil || f.State().Brokers[1].Fenced {
		t.Fatalf("unfence: %v", err)
	}

	// A single-node cluster has no controller to unfence it: a restart
	// registers it unfenced, leading what it led.
	single := fsmWith(live(1), nil, part(1, ids(1), ids(1)))
	res, err := single.Apply(&cluster.RegisterBroker{Broker: cluster.Broker{NodeID: 1}})
	if err != nil || res.(cluster.Broker).Fenced || res.(cluster.Broker).Epoch != 2 {
		t.Fatalf("single node restart: %+v, %v", res, err)
	}
	if p := single.State().Topics["t"].Partitions[0]; p.Leader != 1 || p.LeaderEpoch != 0 {
		t.Fatalf("single node restart changed the partition: %+v", p)
	}
}
