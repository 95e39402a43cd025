package cluster

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// AlterPartition is a partition leader shrinking or expanding its ISR.
// The topic is named by TopicID when it is set, else by Topic. The sender
// must be the leader at LeaderEpoch (else FENCED_LEADER_EPOCH or
// NOT_LEADER_OR_FOLLOWER) and base the change on PartitionEpoch (else
// INVALID_UPDATE_VERSION); BrokerEpoch, when non-zero, must be the leader's
// broker epoch (else STALE_BROKER_EPOCH). NewISR must list distinct replicas
// including the leader (else INVALID_REQUEST), and the replicas it adds
// must be unfenced (else INELIGIBLE_REPLICA).
//
// On success PartitionEpoch grows (LeaderEpoch does not) and the result is
// the new Partition. If this completes a reassignment — every replica being
// added is now in sync — the partition moves to the target replicas; if
// that removes the leader, a new one is elected (LeaderEpoch grows) and the
// sender sees it in the result.
type AlterPartition struct {
	Topic          string  `json:"topic,omitempty"`
	TopicID        TopicID `json:"topic_id"`
	Partition      int32   `json:"partition"`
	LeaderID       int32   `json:"leader_id"`
	BrokerEpoch    int64   `json:"broker_epoch,omitempty"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	PartitionEpoch int32   `json:"partition_epoch"`
	NewISR         []int32 `json:"new_isr"`
}

// ElectionType is ElectLeaders' kind of election; the values are Kafka's
// ElectLeaders election_type.
type ElectionType int8

const (
	// ElectPreferred makes each partition's first replica its leader.
	ElectPreferred ElectionType = 0
	// ElectUnclean gives offline partitions a leader: a live in-sync
	// replica if there is one, else any live replica, whatever the topic's
	// unclean.leader.election.enable.
	ElectUnclean ElectionType = 1
)

// ElectLeaders runs an election on Topic's Partitions (nil: all of them),
// or on every partition when Topic is empty. Its result is an
// []ElectionResult per partition, in topic then partition order, with
// Kafka's codes: ELECTION_NOT_NEEDED (preferred replica already leads, or
// the partition is not offline), PREFERRED_LEADER_NOT_AVAILABLE (preferred
// replica fenced or out of sync), ELIGIBLE_LEADERS_NOT_AVAILABLE (no live
// replica), UNKNOWN_TOPIC_OR_PARTITION. The command itself fails only for
// an unknown topic or election type.
type ElectLeaders struct {
	Election   ElectionType `json:"election"`
	Topic      string       `json:"topic,omitempty"`
	Partitions []int32      `json:"partitions,omitempty"`
}

func (c *AlterPartition) apply(s *State) (any, error) {
	t, err := c.topic(s)
	if err != nil {
		return nil, err
	}
	if c.Partition < 0 || int(c.Partition) >= len(t.Partitions) {
		return nil, kafkaErr(kerr.UnknownTopicOrPartition, "topic %q has no partition %d", t.Name, c.Partition)
	}
	p := t.Partitions[c.Partition]
	if c.LeaderEpoch != p.LeaderEpoch {
		return nil, kafkaErr(kerr.FencedLeaderEpoch, "%s-%d is at leader epoch %d, not %d", t.Name, c.Partition, p.LeaderEpoch, c.LeaderEpoch)
	}
	if c.LeaderID != p.Leader {
		return nil, kafkaErr(kerr.NotLeaderForPartition, "broker %d does not lead %s-%d (leader is %d)", c.LeaderID, t.Name, c.Partition, p.Leader)
	}
	if b := s.Brokers[c.LeaderID]; c.BrokerEpoch != 0 && c.BrokerEpoch != b.Epoch {
		return nil, kafkaErr(kerr.StaleBrokerEpoch, "broker %d is at epoch %d, not %d", c.LeaderID, b.Epoch, c.BrokerEpoch)
	}
	if c.PartitionEpoch != p.PartitionEpoch {
		return nil, kafkaErr(kerr.InvalidUpdateVersion, "%s-%d is at partition epoch %d, not %d", t.Name, c.Partition, p.PartitionEpoch, c.PartitionEpoch)
	}
	if !slices.Contains(c.NewISR, c.LeaderID) {
		return nil, kafkaErr(kerr.InvalidRequest, "the new ISR %v of %s-%d leaves out its leader %d", c.NewISR, t.Name, c.Partition, c.LeaderID)
	}
	for i, id := range c.NewISR {
		switch {
		case slices.Contains(c.NewISR[:i], id):
			return nil, kafkaErr(kerr.InvalidRequest, "the new ISR %v lists broker %d twice", c.NewISR, id)
		case !slices.Contains(p.Replicas, id):
			return nil, kafkaErr(kerr.InvalidRequest, "broker %d in the new ISR is not a replica of %s-%d", id, t.Name, c.Partition)
		case !slices.Contains(p.ISR, id) && !s.live(id):
			return nil, kafkaErr(kerr.IneligibleReplica, "broker %d is fenced and cannot join the ISR of %s-%d", id, t.Name, c.Partition)
		}
	}
	np := p
	np.ISR = append([]int32(nil), c.NewISR...)
	np = completeReassignment(s, np)
	np, _ = bump(p, np)
	s.setPartition(t.Name, c.Partition, np)
	return np, nil
}

func (c *AlterPartition) topic(s *State) (*Topic, error) {
	if c.TopicID == (TopicID{}) {
		t, ok := s.Topics[c.Topic]
		if !ok {
			return nil, kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", c.Topic)
		}
		return t, nil
	}
	// s.byID still indexes the previous state: resolve the name there and
	// take the topic from this one.
	byID, ok := s.byID[c.TopicID]
	if !ok {
		return nil, kafkaErr(kerr.UnknownTopicID, "no topic has id %s", c.TopicID)
	}
	if c.Topic != "" && c.Topic != byID.Name {
		return nil, kafkaErr(kerr.InconsistentTopicID, "topic id %s belongs to %q, not %q", c.TopicID, byID.Name, c.Topic)
	}
	return s.Topics[byID.Name], nil
}

func (c *ElectLeaders) apply(s *State) (any, error) {
	if c.Election != ElectPreferred && c.Election != ElectUnclean {
		return nil, kafkaErr(kerr.InvalidRequest, "unknown election type %d", c.Election)
	}
	names := s.TopicNames()
	if c.Topic != "" {
		if _, ok := s.Topics[c.Topic]; !ok {
			return nil, kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", c.Topic)
		}
		names = []string{c.Topic}
	} else if c.Partitions != nil {
		return nil, kafkaErr(kerr.InvalidRequest, "partitions given without a topic")
	}
	var out []ElectionResult
	for _, name := range names {
		parts := c.Partitions
		if c.Topic == "" || parts == nil {
			parts = make([]int32, len(s.Topics[name].Partitions))
			for i := range parts {
				parts[i] = int32(i)
			}
		}
		t, copied := s.Topics[name], false
		for _, i := range parts {
			r := ElectionResult{Topic: name, Partition: i, Leader: -1}
			if i < 0 || int(i) >= len(t.Partitions) {
				r.Err = kerr.UnknownTopicOrPartition
				out = append(out, r)
				continue
			}
			p := t.Partitions[i]
			np := p
			np.Leader, np.ISR, r.Unclean, r.Err = c.elect(s, p)
			r.Leader = np.Leader
			if np, changed := bump(p, np); changed {
				if !copied { // copy the topic once, not once per partition
					t, copied = cloneTopic(t), true
					s.Topics[name] = t
				}
				t.Partitions[i] = np
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func (c *ElectLeaders) elect(s *State, p Partition) (leader int32, isr []int32, unclean bool, err *kerr.Error) {
	if c.Election == ElectPreferred {
		pref := p.Replicas[0]
		switch {
		case p.Leader == pref:
			return p.Leader, p.ISR, false, kerr.ElectionNotNeeded
		case !s.live(pref) || !slices.Contains(p.ISR, pref):
			return p.Leader, p.ISR, false, kerr.PreferredLeaderNotAvailable
		}
		return pref, p.ISR, false, nil
	}
	if p.Leader >= 0 && s.live(p.Leader) {
		return p.Leader, p.ISR, false, kerr.ElectionNotNeeded
	}
	leader, isr, unclean = chooseLeader(s, p, true)
	if leader < 0 {
		return p.Leader, p.ISR, false, kerr.EligibleLeadersNotAvailable
	}
	return leader, isr, unclean, nil
}
