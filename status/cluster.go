package status

import (
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/topology"
)

// ClusterFromMetadata builds a cluster's status from its Metadata answer
// (err when it gave none).
func ClusterFromMetadata(c topology.Cluster, meta *kmsg.MetadataResponse, err error) Cluster {
	if err != nil || meta == nil {
		return unreachable(c, err)
	}
	s := base(c)
	s.Reachable = true
	s.ControllerID = meta.ControllerID

	leaders := map[int32]int{}
	for _, t := range meta.Topics {
		for _, p := range t.Partitions {
			if p.Leader < 0 || p.ErrorCode == kerr.LeaderNotAvailable.Code {
				s.OfflinePartitions++
			} else {
				leaders[p.Leader]++
			}
			if len(p.ISR) < len(p.Replicas) {
				s.UnderReplicatedPartitions++
			}
		}
	}
	listed := map[int32]string{}
	for _, b := range meta.Brokers {
		listed[b.NodeID] = b.Host + ":" + strconv.Itoa(int(b.Port))
	}
	if c.Local != nil {
		addrs := c.BootstrapServers()
		s.BrokersExpected = len(addrs)
		for i, addr := range addrs {
			id := int32(i + 1)
			if a, ok := listed[id]; ok {
				addr = a
			}
			_, up := listed[id]
			s.Brokers = append(s.Brokers, Broker{ID: id, Addr: addr, Up: up, Leaders: leaders[id]})
			delete(listed, id)
		}
	} else {
		s.BrokersExpected = len(listed)
	}
	for id, addr := range listed { // an existing cluster's, or extra local ones
		s.Brokers = append(s.Brokers, Broker{ID: id, Addr: addr, Up: true, Leaders: leaders[id]})
	}
	slices.SortFunc(s.Brokers, func(a, b Broker) int { return int(a.ID) - int(b.ID) })
	s.Healthy = s.BrokersUp() >= s.BrokersExpected && s.ControllerID >= 0 && s.OfflinePartitions == 0
	return s
}

func base(c topology.Cluster) Cluster {
	return Cluster{Name: c.Name, Region: c.Region, Bootstrap: c.BootstrapServers(), ControllerID: -1, Brokers: []Broker{}}
}

func unreachable(c topology.Cluster, err error) Cluster {
	s := base(c)
	if err != nil {
		s.Error = err.Error()
	}
	if c.Local != nil {
		s.BrokersExpected = c.Local.Brokers
		for i, addr := range c.BootstrapServers() {
			s.Brokers = append(s.Brokers, Broker{ID: int32(i + 1), Addr: addr})
		}
	}
	return s
}
