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
	// Replicated-cluster commands: broker liveness, ISR changes, elections
	// and reassignments.
	TypeFenceBroker                 CommandType = 7
	TypeUnfenceBroker               CommandType = 8
	TypeAlterPartition              CommandType = 9
	TypeElectLeaders                CommandType = 10
	TypeAlterPartitionReassignments CommandType = 11
	// TypeSetFence is the cluster-wide write fence of a failover.
	TypeSetFence CommandType = 12
)

// commandTypes is the decode registry: one constructor per type number.
var commandTypes = map[CommandType]func() Command{
	TypeRegisterBroker:              func() Command { return new(RegisterBroker) },
	TypeCreateTopic:                 func() Command { return new(CreateTopic) },
	TypeDeleteTopic:                 func() Command { return new(DeleteTopic) },
	TypeCreatePartitions:            func() Command { return new(CreatePartitions) },
	TypeAlterTopicConfigs:           func() Command { return new(AlterTopicConfigs) },
	TypeAllocateProducerIDs:         func() Command { return new(AllocateProducerIDs) },
	TypeFenceBroker:                 func() Command { return new(FenceBroker) },
	TypeUnfenceBroker:               func() Command { return new(UnfenceBroker) },
	TypeAlterPartition:              func() Command { return new(AlterPartition) },
	TypeElectLeaders:                func() Command { return new(ElectLeaders) },
	TypeAlterPartitionReassignments: func() Command { return new(AlterPartitionReassignments) },
	TypeSetFence:                    func() Command { return new(SetFence) },
}

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

// RegisterBroker adds a broker or re-registers it after a restart, updating
// its address and rack. Its result is the registered Broker, whose Epoch the
// broker must send with its heartbeats. The command's Broker.Fenced and
// Broker.Epoch are ignored: the state decides them.
//
// Every registration bumps the broker epoch. A re-registration leaves the
// broker fenced (its previous incarnation loses leadership and ISR
// membership exactly as with FenceBroker) until the controller unfences it
// on a heartbeat with the new epoch. Two cases register unfenced directly:
//   - a broker that is the replica of no partition (in particular every new
//     broker): it has nothing to catch up on and leads nothing, and the
//     controller fences it one session timeout later if it never heartbeats;
//   - the only registered broker: a single-node cluster has no controller
//     peer to unfence it, and fencing it would take every partition offline.
type RegisterBroker struct {
	Broker Broker `json:"broker"`
}

// CreateTopic creates a topic. Assignment, when set, gives each partition's
// replicas (preferred leader first); otherwise Partitions and
// ReplicationFactor are spread over the unfenced brokers, across racks when
// brokers have them (see placementOrder). Every replica starts in sync; the
// leader is the first unfenced replica.
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
func (FenceBroker) Type() CommandType         { return TypeFenceBroker }
func (UnfenceBroker) Type() CommandType       { return TypeUnfenceBroker }
func (AlterPartition) Type() CommandType      { return TypeAlterPartition }
func (ElectLeaders) Type() CommandType        { return TypeElectLeaders }
func (AlterPartitionReassignments) Type() CommandType {
	return TypeAlterPartitionReassignments
}

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
	mk, ok := commandTypes[CommandType(b[0])]
	if !ok {
		return nil, fmt.Errorf("cluster: unknown command type %d (written by a newer kdr?)", b[0])
	}
	c := mk()
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
		t.Partitions = append(t.Partitions, newPartition(s, replicas))
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
	// Partition 0's target size: during a reassignment Replicas also holds
	// the replicas being removed.
	rf := int16(len(old.Partitions[0].Replicas) - len(old.Partitions[0].RemovingReplicas))
	assignment, err := assign(s, c.Name, have, c.Count-have, rf, c.Assignment)
	if err != nil {
		return nil, err
	}
	t := cloneTopic(old)
	for _, replicas := range assignment {
		t.Partitions = append(t.Partitions, newPartition(s, replicas))
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
	if t.UncleanLeaderElection() {
		// Enabling unclean election brings offline partitions back with
		// any live replica, as Kafka's controller does on the change.
		for i, p := range t.Partitions {
			if p.Leader == -1 {
				np := p
				np.Leader, np.ISR, _ = chooseLeader(s, p, true)
				t.Partitions[i], _ = bump(p, np)
			}
		}
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
