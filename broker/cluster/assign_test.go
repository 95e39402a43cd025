package cluster_test

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
)

// racked returns brokers 1..len(racks), broker i on racks[i-1].
func racked(racks ...string) map[int32]cluster.Broker {
	m := map[int32]cluster.Broker{}
	for i, r := range racks {
		id := int32(i + 1)
		m[id] = cluster.Broker{NodeID: id, Rack: &r, Epoch: 1}
	}
	return m
}

func createTopic(t *testing.T, f *cluster.FSM, name string, partitions int32, rf int16) *cluster.Topic {
	t.Helper()
	res, err := f.Apply(&cluster.CreateTopic{Name: name, ID: cluster.NewTopicID(), Partitions: partitions, ReplicationFactor: rf})
	if err != nil {
		t.Fatal(err)
	}
	return res.(*cluster.Topic)
}

func TestClusterRackAwareAssignment(t *testing.T) {
	brokers := racked("a", "a", "b", "b", "c", "c")
	s := cluster.NewState("c1")
	s.Brokers = brokers
	f := cluster.NewFSM(s)
	for _, name := range []string{"orders", "payments", "x"} {
		topic := createTopic(t, f, name, 12, 3)
		leaders := map[int32]int{}
		for i, p := range topic.Partitions {
			racks := map[string]bool{}
			for _, id := range p.Replicas {
				racks[*brokers[id].Rack] = true
			}
			if len(racks) != 3 || p.Leader != p.Replicas[0] || !reflect.DeepEqual(p.ISR, p.Replicas) {
				t.Fatalf("%s-%d: %+v spans racks %v", name, i, p, racks)
			}
			leaders[p.Leader]++
		}
		for id := int32(1); id <= 6; id++ {
			if leaders[id] != 2 {
				t.Fatalf("%s: leaders not spread evenly: %v", name, leaders)
			}
		}
	}

	// Deterministic: every node computes the same placement.
	again := cluster.NewState("c1")
	again.Brokers = racked("a", "a", "b", "b", "c", "c")
	g := cluster.NewFSM(again)
	if a, b := createTopic(t, g, "orders", 12, 3), f.State().Topics["orders"]; !reflect.DeepEqual(a.Partitions, b.Partitions) {
		t.Fatalf("placement differs between nodes:\n%v\n%v", a.Partitions, b.Partitions)
	}
}

func TestClusterRackAwareAssignmentUnevenRacks(t *testing.T) {
	s := cluster.NewState("c1")
	s.Brokers = racked("a", "a", "a", "b")
	f := cluster.NewFSM(s)
	for i, p := range createTopic(t, f, "t", 8, 2).Partitions {
		if racks := map[string]bool{*s.Brokers[p.Replicas[0]].Rack: true, *s.Brokers[p.Replicas[1]].Rack: true}; len(racks) != 2 {
			t.Fatalf("partition %d: %v on one rack", i, p.Replicas)
		}
	}
}

func TestClusterAssignmentSkipsFencedBrokers(t *testing.T) {
	f := fsmWith(fenced(live(1, 2, 3), 2), nil, part(1, ids(1), ids(1)))
	for i, p := range createTopic(t, f, "new", 6, 2).Partitions {
		for _, id := range p.Replicas {
			if id == 2 {
				t.Fatalf("partition %d placed on fenced broker 2: %v", i, p.Replicas)
			}
		}
	}
	_, err := f.Apply(&cluster.CreateTopic{Name: "big", Partitions: 1, ReplicationFactor: 3})
	wantCode(t, err, kerr.InvalidReplicationFactor)

	// A manual assignment may name fenced brokers, but they do not lead.
	res, err := f.Apply(&cluster.CreateTopic{Name: "manual", Partitions: 1, Assignment: [][]int32{{2, 3}}})
	if err != nil {
		t.Fatal(err)
	}
	if p := res.(*cluster.Topic).Partitions[0]; p.Leader != 3 || !reflect.DeepEqual(p.ISR, ids(2, 3)) {
		t.Fatalf("manual partition %+v, want leader 3, ISR [2 3]", p)
	}
	_, err = f.Apply(&cluster.CreateTopic{Name: "dead", Partitions: 1, Assignment: [][]int32{{2}}})
	wantCode(t, err, kerr.InvalidReplicaAssignment)
}

func TestClusterHealthCounts(t *testing.T) {
	f := fsmWith(fenced(live(1, 2, 3), 3), map[string]string{cluster.ConfigMinInsyncReplicas: "2"},
		part(1, ids(1, 2, 3), ids(1, 2, 3)),
		part(1, ids(1, 2, 3), ids(1, 2)),
		part(-1, ids(3, 1), ids(3)),
		cluster.Partition{Leader: 1, Replicas: ids(1, 2, 3), ISR: ids(1, 2), AddingReplicas: ids(3)},
	)
	s := f.State()
	if s.FencedBrokers() != 1 || s.Offline() != 1 || s.UnderReplicated() != 2 || s.UnderMinISR(1) != 1 {
		t.Fatalf("fenced %d, offline %d, under-replicated %d, under min ISR %d; want 1, 1, 2, 1",
			s.FencedBrokers(), s.Offline(), s.UnderReplicated(), s.UnderMinISR(1))
	}
}
