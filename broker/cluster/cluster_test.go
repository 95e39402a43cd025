package cluster_test

import (
	"context"
	"encoding/json"
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
		&cluster.FenceBroker{NodeID: 3, Epoch: 7},
		&cluster.UnfenceBroker{NodeID: 3, Epoch: 8},
		&cluster.AlterPartition{Topic: "x", TopicID: cluster.NewTopicID(), Partition: 2, LeaderID: 1, BrokerEpoch: 4, LeaderEpoch: 5, PartitionEpoch: 6, NewISR: []int32{1, 3}},
		&cluster.ElectLeaders{Election: cluster.ElectUnclean, Topic: "x", Partitions: []int32{0, 2}},
		&cluster.AlterPartitionReassignments{Topic: "x", Partition: 1, Replicas: []int32{4, 5}},
		&cluster.AlterPartitionReassignments{Topic: "x", Partition: 1},
		&cluster.SetFence{Fenced: true, Epoch: 3, Reason: "failover to west"},
	}
	covered := map[cluster.CommandType]bool{}
	for _, c := range cmds {
		covered[c.Type()] = true
	}
	for typ, mk := range cluster.CommandTypes {
		if got := mk().Type(); got != typ {
			t.Errorf("registry entry %d makes a command of type %d", typ, got)
		}
		if !covered[typ] {
			t.Errorf("command type %d (%T) has no round-trip case", typ, mk())
		}
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

func TestClusterOldSnapshotsLoad(t *testing.T) {
	old := `{"cluster_id":"c1","index":4,"brokers":{"1":{"node_id":1,"host":"h","port":9092}},
		"topics":{"t":{"name":"t","id":"0102030405060708090a0b0c0d0e0f10","partitions":[{"leader":1,"leader_epoch":3,"replicas":[1],"isr":[1]}]}},
		"next_producer_id":0}`
	var s cluster.State
	if err := json.Unmarshal([]byte(old), &s); err != nil {
		t.Fatal(err)
	}
	f := cluster.NewFSM(&s)
	want := cluster.Partition{Leader: 1, LeaderEpoch: 3, Replicas: []int32{1}, ISR: []int32{1}}
	if b := f.State().Brokers[1]; b.Fenced || b.Epoch != 0 || !reflect.DeepEqual(f.State().Topics["t"].Partitions[0], want) {
		t.Fatalf("old snapshot read as %+v, %+v", b, f.State().Topics["t"].Partitions[0])
	}
	// The first registration after the upgrade starts the epochs.
	res, err := f.Apply(&cluster.RegisterBroker{Broker: cluster.Broker{NodeID: 1, Host: "h", Port: 9092}})
	if err != nil || res.(cluster.Broker).Epoch != 1 || res.(cluster.Broker).Fenced {
		t.Fatalf("registration after upgrade: %+v, %v", res, err)
	}
}

func TestClusterEnablingUncleanElectionRevivesOfflinePartitions(t *testing.T) {
	s := cluster.NewState("c1")
	s.Brokers = map[int32]cluster.Broker{1: {NodeID: 1, Fenced: true}, 2: {NodeID: 2}}
	s.Topics["t"] = &cluster.Topic{Name: "t", Partitions: []cluster.Partition{{Leader: -1, LeaderEpoch: 2, Replicas: []int32{1, 2}, ISR: []int32{1}}}}
	f := cluster.NewFSM(s)
	if _, err := f.Apply(&cluster.AlterTopicConfigs{Name: "t", Set: map[string]string{cluster.ConfigUncleanLeaderElection: "true"}}); err != nil {
		t.Fatal(err)
	}
	want := cluster.Partition{Leader: 2, LeaderEpoch: 3, PartitionEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{2}}
	if got := f.State().Topics["t"].Partitions[0]; !reflect.DeepEqual(got, want) {
		t.Fatalf("partition %+v, want %+v", got, want)
	}
}
