package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
)

// TopicID is a topic's UUID (KIP-516): Fetch v13+ and Metadata v10+ name
// topics by it, and a re-created topic gets a new one.
type TopicID [16]byte

// NewTopicID returns a random, non-zero topic id.
func NewTopicID() TopicID {
	var id TopicID
	for id == (TopicID{}) {
		if _, err := rand.Read(id[:]); err != nil {
			panic(fmt.Sprintf("cluster: crypto/rand failed: %v", err))
		}
	}
	return id
}

func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the id as hex for the snapshot file.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hex id.
func (id *TopicID) UnmarshalText(b []byte) error {
	if len(b) != 32 {
		return fmt.Errorf("cluster: topic id %q is not 32 hex digits", b)
	}
	_, err := hex.Decode(id[:], b)
	return err
}

// Broker is one registered broker and the address clients should use.
//
// Epoch is the broker epoch: it grows by one on every registration, so a
// command carrying an older epoch comes from a previous incarnation of the
// broker and is refused. A Fenced broker leads nothing, is in no ISR (except
// as the last member, see FenceBroker) and is not placed on new partitions.
// Both are zero in snapshots written before they existed: unfenced, epoch 0.
type Broker struct {
	NodeID int32   `json:"node_id"`
	Host   string  `json:"host"`
	Port   int32   `json:"port"`
	Rack   *string `json:"rack,omitempty"`
	Fenced bool    `json:"fenced,omitempty"`
	Epoch  int64   `json:"epoch,omitempty"`
}

// Partition is one partition's replica assignment and leadership.
//
// Leader is -1 while the partition is offline. LeaderEpoch grows on every
// leader change; PartitionEpoch on every change at all (leader, ISR or
// replicas), so an AlterPartition based on an older view is refused.
//
// While a reassignment is in progress Replicas is the union of the target
// and the current replicas (target first), AddingReplicas the target
// replicas not yet in the old set and RemovingReplicas the old replicas not
// in the target — Kafka's meaning of the three fields.
type Partition struct {
	Leader           int32   `json:"leader"`
	LeaderEpoch      int32   `json:"leader_epoch"`
	PartitionEpoch   int32   `json:"partition_epoch,omitempty"`
	Replicas         []int32 `json:"replicas"`
	ISR              []int32 `json:"isr"`
	AddingReplicas   []int32 `json:"adding_replicas,omitempty"`
	RemovingReplicas []int32 `json:"removing_replicas,omitempty"`
}

// Topic is one topic. Configs holds only the overrides set on the topic;
// defaults come from the broker.
type Topic struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Partitions []Partition       `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// State is one version of the cluster metadata. A *State is never modified
// after the FSM publishes it; treat every field as read-only.
type State struct {
	ClusterID string `json:"cluster_id"`
	// Index is the number of commands applied to reach this state.
	Index          uint64            `json:"index"`
	Brokers        map[int32]Broker  `json:"brokers"`
	Topics         map[string]*Topic `json:"topics"`
	NextProducerID int64             `json:"next_producer_id"`
	// Fence is the cluster-wide write fence (SetFence).
	Fence Fence `json:"fence"`

	byID map[TopicID]*Topic
}

// NewState returns the empty state of a new cluster.
func NewState(clusterID string) *State {
	s := &State{ClusterID: clusterID, Brokers: map[int32]Broker{}, Topics: map[string]*Topic{}}
	s.reindex()
	return s
}

func (s *State) reindex() {
	s.byID = make(map[TopicID]*Topic, len(s.Topics))
	for _, t := range s.Topics {
		s.byID[t.ID] = t
	}
}

// Topic returns the named topic.
func (s *State) Topic(name string) (*Topic, bool) {
	t, ok := s.Topics[name]
	return t, ok
}

// TopicByID returns the topic with id.
func (s *State) TopicByID(id TopicID) (*Topic, bool) {
	t, ok := s.byID[id]
	return t, ok
}

// TopicNames returns every topic name, sorted.
func (s *State) TopicNames() []string {
	names := make([]string, 0, len(s.Topics))
	for n := range s.Topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// BrokerIDs returns the registered broker ids, sorted.
func (s *State) BrokerIDs() []int32 {
	ids := make([]int32, 0, len(s.Brokers))
	for id := range s.Brokers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// clone returns a shallow copy whose maps may be modified; topics themselves
// are shared and must be copied before they change (see cloneTopic).
func (s *State) clone() *State {
	n := *s
	n.Brokers = make(map[int32]Broker, len(s.Brokers))
	for k, v := range s.Brokers {
		n.Brokers[k] = v
	}
	n.Topics = make(map[string]*Topic, len(s.Topics))
	for k, v := range s.Topics {
		n.Topics[k] = v
	}
	return &n
}

func cloneTopic(t *Topic) *Topic {
	n := *t
	n.Partitions = append([]Partition(nil), t.Partitions...)
	n.Configs = make(map[string]string, len(t.Configs))
	for k, v := range t.Configs {
		n.Configs[k] = v
	}
	return &n
}
