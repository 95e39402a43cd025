package cluster

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
)

// assign returns replica lists for count new partitions starting at index
// first. A manual assignment is checked against the registered brokers;
// otherwise replicas are placed on unfenced brokers by place.
func assign(s *State, topic string, first, count int32, rf int16, manual [][]int32) ([][]int32, error) {
	if manual != nil {
		if int32(len(manual)) != count {
			return nil, kafkaErr(kerr.InvalidReplicaAssignment, "assignment lists %d partitions, want %d", len(manual), count)
		}
		for p, replicas := range manual {
			if len(replicas) == 0 {
				return nil, kafkaErr(kerr.InvalidReplicaAssignment, "partition %d has no replicas", int32(p)+first)
			}
			seen := map[int32]bool{}
			someLive := false
			for _, id := range replicas {
				if _, ok := s.Brokers[id]; !ok {
					return nil, kafkaErr(kerr.InvalidReplicaAssignment, "partition %d names broker %d, which is not registered", int32(p)+first, id)
				}
				if seen[id] {
					return nil, kafkaErr(kerr.InvalidReplicaAssignment, "partition %d lists broker %d twice", int32(p)+first, id)
				}
				seen[id] = true
				someLive = someLive || s.live(id)
			}
			if !someLive {
				return nil, kafkaErr(kerr.InvalidReplicaAssignment, "every replica of partition %d is on a fenced broker, so it could have no leader", int32(p)+first)
			}
		}
		return manual, nil
	}
	if count <= 0 {
		return nil, kafkaErr(kerr.InvalidPartitions, "partition count %d must be positive", count)
	}
	order := placementOrder(s)
	if rf <= 0 || int(rf) > len(order) {
		return nil, kafkaErr(kerr.InvalidReplicationFactor, "replication factor %d: must be between 1 and the %d registered unfenced brokers", rf, len(order))
	}
	var h uint32 = 2166136261 // FNV-1a: stable across nodes and versions
	for i := 0; i < len(topic); i++ {
		h = (h ^ uint32(topic[i])) * 16777619
	}
	start := int(h % uint32(len(order)))
	out := make([][]int32, count)
	for p := range out {
		out[p] = place(s, order, (start+int(first)+p)%len(order), int(rf))
	}
	return out, nil
}

// placementOrder lists the unfenced brokers with racks interleaved: the
// first broker (by id) of every rack in rack-name order, then the second of
// every rack, and so on. Without racks it is simply the ids in order.
// Brokers without a rack count as one more rack named "".
func placementOrder(s *State) []int32 {
	byRack := map[string][]int32{}
	for _, id := range s.BrokerIDs() {
		if s.Brokers[id].Fenced {
			continue
		}
		rack := s.rackOf(id)
		byRack[rack] = append(byRack[rack], id)
	}
	racks := make([]string, 0, len(byRack))
	for r := range byRack {
		racks = append(racks, r)
	}
	sort.Strings(racks)
	var order []int32
	for i := 0; ; i++ {
		added := false
		for _, r := range racks {
			if i < len(byRack[r]) {
				order = append(order, byRack[r][i])
				added = true
			}
		}
		if !added {
			return order
		}
	}
}

// rackOf is broker id's rack, "" when it has none.
func (s *State) rackOf(id int32) string {
	if r := s.Brokers[id].Rack; r != nil {
		return *r
	}
	return ""
}

// place picks rf replicas, leader first, walking order from start. Each
// round takes at most one broker per rack, so replicas cover as many racks
// as there are and no rack holds two more than another. With a single rack
// (or none) this is rf consecutive brokers, round-robin.
func place(s *State, order []int32, start, rf int) []int32 {
	replicas := []int32{order[start]}
	chosen := map[int32]bool{order[start]: true}
	round := map[string]bool{s.rackOf(order[start]): true}
	for len(replicas) < rf {
		for i := 1; i < len(order) && len(replicas) < rf; i++ {
			id := order[(start+i)%len(order)]
			if chosen[id] || round[s.rackOf(id)] {
				continue
			}
			replicas = append(replicas, id)
			chosen[id], round[s.rackOf(id)] = true, true
		}
		round = map[string]bool{} // every free rack has had its turn: next round
	}
	return replicas
}

// newPartition is a new partition on replicas: all in sync, led by the
// first unfenced replica.
func newPartition(s *State, replicas []int32) Partition {
	p := Partition{Leader: -1, Replicas: replicas, ISR: append([]int32(nil), replicas...)}
	for _, id := range replicas {
		if s.live(id) {
			p.Leader = id
			break
		}
	}
	return p
}
