package status

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/topology"
)

func metadata(brokers []int32, controller int32, parts ...kmsg.MetadataResponseTopicPartition) *kmsg.MetadataResponse {
	m := kmsg.NewPtrMetadataResponse()
	m.ControllerID = controller
	for _, id := range brokers {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = id, "127.0.0.1", 9090+id
		m.Brokers = append(m.Brokers, b)
	}
	t := kmsg.NewMetadataResponseTopic()
	name := "orders"
	t.Topic = &name
	t.Partitions = parts
	m.Topics = append(m.Topics, t)
	return m
}

func part(leader int32, replicas, isr []int32) kmsg.MetadataResponseTopicPartition {
	p := kmsg.NewMetadataResponseTopicPartition()
	p.Leader, p.Replicas, p.ISR = leader, replicas, isr
	return p
}

func TestStatusClusterFromMetadata(t *testing.T) {
	local := topology.Cluster{Name: "east", Local: &topology.LocalCluster{Brokers: 3, BasePort: 9091}}
	all := []int32{1, 2, 3}
	s := ClusterFromMetadata(local, metadata([]int32{1, 3}, 1,
		part(1, all, []int32{1, 3}), part(3, all, []int32{1, 3}), part(1, all, all), part(-1, all, []int32{2})), nil)
	if !s.Reachable || s.BrokersExpected != 3 || s.BrokersUp() != 2 || s.ControllerID != 1 ||
		s.UnderReplicatedPartitions != 3 || s.OfflinePartitions != 1 || s.Healthy {
		t.Fatalf("%+v", s)
	}
	if len(s.Brokers) != 3 || s.Brokers[0].Leaders != 2 || s.Brokers[1].Up || s.Brokers[1].Addr != "127.0.0.1:9092" || s.Brokers[2].Leaders != 1 {
		t.Fatalf("brokers %+v", s.Brokers)
	}
	s = ClusterFromMetadata(local, metadata(all, 2, part(1, all, all)), nil)
	if !s.Healthy {
		t.Fatalf("whole cluster not healthy: %+v", s)
	}

	existing := topology.Cluster{Name: "msk", Bootstrap: []string{"b-1:9092"}}
	s = ClusterFromMetadata(existing, metadata([]int32{4, 5}, 4, part(4, []int32{4, 5}, []int32{4, 5})), nil)
	if !s.Healthy || s.BrokersExpected != 2 || len(s.Brokers) != 2 {
		t.Fatalf("existing: %+v", s)
	}
	s = unreachable(existing, nil)
	if s.Reachable || s.Healthy || s.ControllerID != -1 || len(s.Bootstrap) != 1 {
		t.Fatalf("unreachable: %+v", s)
	}
}

func TestStatusActiveClusterIsFirstPrimary(t *testing.T) {
	if got := activeCluster(topology.Demo()); got != "east" {
		t.Fatalf("demo active cluster %q, want east", got)
	}
	aa := &topology.Topology{Replication: []topology.Pattern{{Type: topology.ActiveActive, Clusters: []string{"a", "b"}}}}
	if got := activeCluster(aa); got != "" {
		t.Fatalf("active-active: %q, want none", got)
	}
}
