package cluster_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/cluster/local"
)

func threeBrokers(t *testing.T, s cluster.Store) {
	t.Helper()
	for id := int32(1); id <= 3; id++ {
		if _, err := s.Propose(context.Background(), &cluster.RegisterBroker{Broker: cluster.Broker{NodeID: id, Host: "127.0.0.1", Port: 9090 + id}}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClusterCreateTopicSpreadsReplicas(t *testing.T) {
	s, err := local.Open(t.TempDir(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	threeBrokers(t, s)
	res, err := s.Propose(context.Background(), &cluster.CreateTopic{Name: "orders", ID: cluster.NewTopicID(), Partitions: 6, ReplicationFactor: 2})
	if err != nil {
		t.Fatal(err)
	}
	topic := res.(*cluster.Topic)
	leaders := map[int32]int{}
	for i, p := range topic.Partitions {
		if len(p.Replicas) != 2 || p.Replicas[0] == p.Replicas[1] || p.Leader != p.Replicas[0] || !reflect.DeepEqual(p.ISR, p.Replicas) {
			t.Fatalf("partition %d: %+v", i, p)
		}
		leaders[p.Leader]++
	}
	if leaders[1] != 2 || leaders[2] != 2 || leaders[3] != 2 {
		t.Fatalf("leaders not spread evenly: %v", leaders)
	}
}

func TestClusterCommandErrorsCarryKafkaCodes(t *testing.T) {
	s, err := local.Open(t.TempDir(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	threeBrokers(t, s)
	ctx := context.Background()
	create := &cluster.CreateTopic{Name: "a", ID: cluster.NewTopicID(), Partitions: 1, ReplicationFactor: 1}
	if _, err := s.Propose(ctx, create); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		cmd  cluster.Command
		want *kerr.Error
	}{
		"exists":          {create, kerr.TopicAlreadyExists},
		"rf too big":      {&cluster.CreateTopic{Name: "b", Partitions: 1, ReplicationFactor: 4}, kerr.InvalidReplicationFactor},
		"zero partitions": {&cluster.CreateTopic{Name: "b", Partitions: 0, ReplicationFactor: 1}, kerr.InvalidPartitions},
		"bad assignment":  {&cluster.CreateTopic{Name: "b", Assignment: [][]int32{{1, 9}}}, kerr.InvalidReplicaAssignment},
		"shrink":          {&cluster.CreatePartitions{Name: "a", Count: 1}, kerr.InvalidPartitions},
		"delete unknown":  {&cluster.DeleteTopic{Name: "zzz"}, kerr.UnknownTopicOrPartition},
		"alter unknown":   {&cluster.AlterTopicConfigs{Name: "zzz"}, kerr.UnknownTopicOrPartition},
	} {
		_, err := s.Propose(ctx, c.cmd)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	if _, ok := s.State().Topic("b"); ok {
		t.Fatal("a failed command left a topic behind")
	}
}

func TestClusterLocalStoreSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := local.Open(dir, "c1")
	if err != nil {
		t.Fatal(err)
	}
	threeBrokers(t, s)
	ctx := context.Background()
	id := cluster.NewTopicID()
	s.Propose(ctx, &cluster.CreateTopic{Name: "t", ID: id, Partitions: 2, ReplicationFactor: 3, Configs: map[string]string{"retention.ms": "1000"}})
	s.Propose(ctx, &cluster.CreatePartitions{Name: "t", Count: 4})
	s.Propose(ctx, &cluster.AlterTopicConfigs{Name: "t", Set: map[string]string{"cleanup.policy": "compact"}, Delete: []string{"retention.ms"}})
	first, _ := s.Propose(ctx, &cluster.AllocateProducerIDs{Count: 1000})
	second, _ := s.Propose(ctx, &cluster.AllocateProducerIDs{Count: 1000})
	if first.(int64) != 0 || second.(int64) != 1000 {
		t.Fatalf("producer id blocks %v, %v", first, second)
	}
	s.Close()

	re, err := local.Open(dir, "c1")
	if err != nil {
		t.Fatal(err)
	}
	st := re.State()
	topic, ok := st.TopicByID(id)
	if !ok || topic.Name != "t" || len(topic.Partitions) != 4 || !reflect.DeepEqual(topic.Configs, map[string]string{"cleanup.policy": "compact"}) {
		t.Fatalf("after reopen: %+v", topic)
	}
	if st.NextProducerID != 2000 || len(st.Brokers) != 3 {
		t.Fatalf("after reopen: next producer id %d, %d brokers", st.NextProducerID, len(st.Brokers))
	}
}

func TestClusterCommandEncodingRoundTrips(t *testing.T) {
	cmds := []cluster.Command{
		&cluster.RegisterBroker{Broker: cluster.Broker{NodeID: 2, Host: "h", Port: 1}},
		&cluster.CreateTopic{Name: "x", ID: cluster.NewTopicID(), Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{"a": "b"}},
		&cluster.DeleteTopic{Name: "x"},
		&cluster.CreatePartitions{Name: "x", Count: 9, Assignment: [][]int32{{1}}},
		&cluster.AlterTopicConfigs{Name: "x", Set: map[string]string{"k": "v"}, Delete: []string{"d"}, Replace: true},
		&cluster.AllocateProducerIDs{Count: 5},
	}
	for _, c := range cmds {
		b, err := cluster.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := cluster.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip: got %#v, want %#v", back, c)
		}
	}
	if _, err := cluster.Decode([]byte{200, '{', '}'}); err == nil {
		t.Fatal("unknown command type decoded")
	}
}

func TestClusterListenersSeeEveryChange(t *testing.T) {
	s, _ := local.Open(t.TempDir(), "c1")
	var seen []uint64
	s.Subscribe(func(prev, next *cluster.State) {
		if next.Index != prev.Index+1 {
			t.Errorf("index jumped %d -> %d", prev.Index, next.Index)
		}
		seen = append(seen, next.Index)
	})
	threeBrokers(t, s)
	if !reflect.DeepEqual(seen, []uint64{1, 2, 3}) {
		t.Fatalf("listener saw %v", seen)
	}
}
