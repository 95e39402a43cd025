package cluster

import (
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// CommandType is the first byte of an encoded command. Numbers are only ever
// added; a retired command keeps its number.
type CommandType uint8

const (
	TypeRegisterBroker      CommandType = 1
	TypeCreateTopic         CommandType = 2
	TypeDeleteTopic         CommandType = 3
	TypeCreatePartitions    CommandType = 4
	TypeAlterTopicConfigs   CommandType = 5
	TypeAllocateProducerIDs CommandType = 6
)

// Command is one metadata change. apply must be deterministic: every node
// applying the same commands in the same order reaches the same State, so
// anything random (a topic id) is chosen by the proposer and carried in the
// command.
type Command interface {
	Type() CommandType
	// apply changes next, a clone of the current state, and returns the
	// command's result. On error next is discarded.
	apply(next *State) (any, error)
}

// RegisterBroker adds or updates a broker's address.
type RegisterBroker struct {
	Broker Broker `json:"broker"`
}

// CreateTopic creates a topic. Assignment, when set, gives each partition's
// replicas (leader first); otherwise Partitions and ReplicationFactor are
// spread over the registered brokers.
type CreateTopic struct {
	Name              string            `json:"name"`
	ID                TopicID           `json:"id"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Assignment        [][]int32         `json:"assignment,omitempty"`
	Configs           map[string]string `json:"configs,omitempty"`
}

// DeleteTopic removes a topic.
type DeleteTopic struct {
	Name string `json:"name"`
}

// CreatePartitions grows a topic to Count partitions.
type CreatePartitions struct {
	Name       string    `json:"name"`
	Count      int32     `json:"count"`
	Assignment [][]int32 `json:"assignment,omitempty"`
}

// AlterTopicConfigs changes a topic's config overrides. With Replace, the
// overrides become exactly Set (the legacy AlterConfigs API); otherwise Set
// entries are added or changed and Delete keys removed
// (IncrementalAlterConfigs).
type AlterTopicConfigs struct {
	Name    string            `json:"name"`
	Set     map[string]string `json:"set,omitempty"`
	Delete  []string          `json:"delete,omitempty"`
	Replace bool              `json:"replace,omitempty"`
}

// AllocateProducerIDs reserves Count producer ids; its result is the first
// (int64). Brokers reserve blocks so ids stay unique across restarts.
type AllocateProducerIDs struct {
	Count int64 `json:"count"`
}

func (RegisterBroker) Type() CommandType      { return TypeRegisterBroker }
func (CreateTopic) Type() CommandType         { return TypeCreateTopic }
func (DeleteTopic) Type() CommandType         { return TypeDeleteTopic }
func (CreatePartitions) Type() CommandType    { return TypeCreatePartitions }
func (AlterTopicConfigs) Type() CommandType   { return TypeAlterTopicConfigs }
func (AllocateProducerIDs) Type() CommandType { return TypeAllocateProducerIDs }

// Encode returns the command as type byte + JSON.
func Encode(c Command) ([]byte, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode %T: %w", c, err)
	}
	return append([]byte{byte(c.Type())}, body...), nil
}

// Decode parses an encoded command.
func Decode(b []byte) (Command, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("cluster: empty command")
	}
	var c Command
	switch CommandType(b[0]) {
	case TypeRegisterBroker:
		c = new(RegisterBroker)
	case TypeCreateTopic:
		c = new(CreateTopic)
	case TypeDeleteTopic:
		c = new(DeleteTopic)
	case TypeCreatePartitions:
		c = new(CreatePartitions)
	case TypeAlterTopicConfigs:
		c = new(AlterTopicConfigs)
	case TypeAllocateProducerIDs:
		c = new(AllocateProducerIDs)
	default:
		return nil, fmt.Errorf("cluster: unknown command type %d (written by a newer kdr?)", b[0])
	}
	if err := json.Unmarshal(b[1:], c); err != nil {
		return nil, fmt.Errorf("cluster: decode command type %d: %w", b[0], err)
	}
	return c, nil
}

// Errors carry Kafka codes so handlers can answer with them directly.
func kafkaErr(code *kerr.Error, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error is a metadata command failure with the Kafka error code to report.
type Error struct {
	Code    *kerr.Error
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap lets errors.Is(err, kerr.TopicAlreadyExists) work.
func (e *Error) Unwrap() error { return e.Code }

func (c *RegisterBroker) apply(s *State) (any, error) {
	if c.Broker.NodeID < 0 {
		return nil, fmt.Errorf("cluster: broker node id %d is negative", c.Broker.NodeID)
	}
	s.Brokers[c.Broker.NodeID] = c.Broker
	return nil, nil
}

func (c *CreateTopic) apply(s *State) (any, error) {
	if _, exists := s.Topics[c.Name]; exists {
		return nil, kafkaErr(kerr.TopicAlreadyExists, "topic %q already exists", c.Name)
	}
	assignment, err := assign(s, c.Name, 0, c.Partitions, c.ReplicationFactor, c.Assignment)
	if err != nil {
		return nil, err
	}
	t := &Topic{Name: c.Name, ID: c.ID, Configs: map[string]string{}}
	for k, v := range c.Configs {
		t.Configs[k] = v
	}
	for _, replicas := range assignment {
		t.Partitions = append(t.Partitions, Partition{Leader: replicas[0], Replicas: replicas, ISR: append([]int32(nil), replicas...)})
	}
	s.Topics[c.Name] = t
	return t, nil
}

func (c *DeleteTopic) apply(s *State) (any, error) {
	if _, ok := s.Topics[c.Name]; !ok {
		return nil, kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", c.Name)
	}
	delete(s.Topics, c.Name)
	return nil, nil
}

func (c *CreatePartitions) apply(s *State) (any, error) {
	old, ok := s.Topics[c.Name]
	if !ok {
		return nil, kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", c.Name)
	}
	have := int32(len(old.Partitions))
	if c.Count <= have {
		return nil, kafkaErr(kerr.InvalidPartitions, "topic %q has %d partitions; the new count %d must be larger", c.Name, have, c.Count)
	}
	rf := int16(len(old.Partitions[0].Replicas))
	assignment, err := assign(s, c.Name, have, c.Count-have, rf, c.Assignment)
	if err != nil {
		return nil, err
	}
	t := cloneTopic(old)
	for _, replicas := range assignment {
		t.Partitions = append(t.Partitions, Partition{Leader: replicas[0], Replicas: replicas, ISR: append([]int32(nil), replicas...)})
	}
	s.Topics[c.Name] = t
	return t, nil
}

func (c *AlterTopicConfigs) apply(s *State) (any, error) {
	old, ok := s.Topics[c.Name]
	if !ok {
		return nil, kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", c.Name)
	}
	t := cloneTopic(old)
	if c.Replace {
		t.Configs = map[string]string{}
	}
	for k, v := range c.Set {
		t.Configs[k] = v
	}
	for _, k := range c.Delete {
		delete(t.Configs, k)
	}
	s.Topics[c.Name] = t
	return t, nil
}

func (c *AllocateProducerIDs) apply(s *State) (any, error) {
	if c.Count <= 0 {
		return nil, fmt.Errorf("cluster: producer id block size %d must be positive", c.Count)
	}
	first := s.NextProducerID
	s.NextProducerID += c.Count
	return first, nil
}

// assign returns replica lists for count new partitions starting at index
// first. A manual assignment is checked against the registered brokers;
// otherwise replicas are spread round-robin, starting at an offset derived
// from the topic name so that topics do not all lead on the same broker.
func assign(s *State, topic string, first, count int32, rf int16, manual [][]int32) ([][]int32, error) {
	brokers := s.BrokerIDs()
	if manual != nil {
		if int32(len(manual)) != count {
			return nil, kafkaErr(kerr.InvalidReplicaAssignment, "assignment lists %d partitions, want %d", len(manual), count)
		}
		for p, replicas := range manual {
			if len(replicas) == 0 {
				return nil, kafkaErr(kerr.InvalidReplicaAssignment, "partition %d has no replicas", int32(p)+first)
			}
			seen := map[int32]bool{}
			for _, id := range replicas {
				if _, ok := s.Brokers[id]; !ok {
					return nil, kafkaErr(kerr.InvalidReplicaAssignment, "partition %d names broker %d, which is not registered", int32(p)+first, id)
				}
				if seen[id] {
					return nil, kafkaErr(kerr.InvalidReplicaAssignment, "partition %d lists broker %d twice", int32(p)+first, id)
				}
				seen[id] = true
			}
		}
		return manual, nil
	}
	if count <= 0 {
		return nil, kafkaErr(kerr.InvalidPartitions, "partition count %d must be positive", count)
	}
	if rf <= 0 || int(rf) > len(brokers) {
		return nil, kafkaErr(kerr.InvalidReplicationFactor, "replication factor %d: must be between 1 and the %d registered brokers", rf, len(brokers))
	}
	var h uint32 = 2166136261 // FNV-1a: stable across nodes and versions
	for i := 0; i < len(topic); i++ {
		h = (h ^ uint32(topic[i])) * 16777619
	}
	start := int(h % uint32(len(brokers)))
	out := make([][]int32, count)
	for p := range out {
		replicas := make([]int32, rf)
		for r := range replicas {
			replicas[r] = brokers[(start+int(first)+p+r)%len(brokers)]
		}
		out[p] = replicas
	}
	return out, nil
}
