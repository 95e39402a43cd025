package cluster_test

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
)

// live returns unfenced brokers with the given ids at epoch 1; fenced the
// same, fenced.
func live(ids ...int32) map[int32]cluster.Broker {
	m := map[int32]cluster.Broker{}
	for _, id := range ids {
		m[id] = cluster.Broker{NodeID: id, Host: "h", Port: 9000 + id, Epoch: 1}
	}
	return m
}

func fenced(m map[int32]cluster.Broker, ids ...int32) map[int32]cluster.Broker {
	for _, id := range ids {
		b := m[id]
		b.Fenced = true
		m[id] = b
	}
	return m
}

var topicID = cluster.TopicID{1, 2, 3}

// fsmWith starts an FSM with brokers and topic "t" (id topicID) holding
// parts.
func fsmWith(brokers map[int32]cluster.Broker, configs map[string]string, parts ...cluster.Partition) *cluster.FSM {
	s := cluster.NewState("c1")
	s.Brokers = brokers
	s.Topics["t"] = &cluster.Topic{Name: "t", ID: topicID, Partitions: parts, Configs: configs}
	return cluster.NewFSM(s)
}

// part is a partition at epochs 0.
func part(leader int32, replicas, isr []int32) cluster.Partition {
	return cluster.Partition{Leader: leader, Replicas: replicas, ISR: isr}
}

func ids(v ...int32) []int32 { return v }

var unclean = map[string]string{cluster.ConfigUncleanLeaderElection: "true"}

// wantCode checks err carries code (nil: no error).
func wantCode(t *testing.T, err error, code *kerr.Error) {
	t.Helper()
	if code == nil {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	var ce *cluster.Error
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("got error %v, want %s", err, code.Message)
	}
}
