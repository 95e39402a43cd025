package cluster

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// FenceBroker fences a broker the controller considers gone (no heartbeat
// within the session timeout). Epoch must be the broker's current epoch,
// else the command fails with STALE_BROKER_EPOCH: a fence decided against an
// earlier incarnation does not hit a newer one.
//
// For every partition the broker is removed from the ISR unless it is the
// last member — Kafka keeps the last in-sync replica recorded so that losing
// its data takes an explicit unclean election. A partition it led gets the
// first live ISR member in replica order as leader; failing that, when the
// topic allows unclean election, the first live replica (with ISR = just
// it); otherwise it goes offline (leader -1). The result lists the
// partitions whose leader changed ([]ElectionResult).
type FenceBroker struct {
	NodeID int32 `json:"node_id"`
	Epoch  int64 `json:"epoch"`
}

// UnfenceBroker lets a fenced broker back in, once it heartbeats with its
// current Epoch (else STALE_BROKER_EPOCH). Offline partitions it is an
// in-sync replica of get it as leader; offline partitions of topics that
// allow unclean election get it as leader even if it is not in sync. It
// rejoins other partitions' ISRs only when their leaders add it
// (AlterPartition). The result lists the partitions whose leader changed.
type UnfenceBroker struct {
	NodeID int32 `json:"node_id"`
	Epoch  int64 `json:"epoch"`
}

func (c *RegisterBroker) apply(s *State) (any, error) {
	id := c.Broker.NodeID
	if id < 0 {
		return nil, fmt.Errorf("cluster: broker node id %d is negative", id)
	}
	old, exists := s.Brokers[id]
	b := c.Broker
	b.Epoch = old.Epoch + 1
	b.Fenced = exists && len(s.Brokers) > 1 && s.hostsReplica(id)
	s.Brokers[id] = b
	switch {
	case b.Fenced:
		s.fenceReplicas(id)
	case old.Fenced:
		s.electOffline(id)
	}
	return b, nil
}

func (c *FenceBroker) apply(s *State) (any, error) {
	b, err := s.brokerAtEpoch(c.NodeID, c.Epoch)
	if err != nil {
		return nil, err
	}
	b.Fenced = true
	s.Brokers[c.NodeID] = b
	return s.fenceReplicas(c.NodeID), nil
}

func (c *UnfenceBroker) apply(s *State) (any, error) {
	b, err := s.brokerAtEpoch(c.NodeID, c.Epoch)
	if err != nil {
		return nil, err
	}
	if !b.Fenced {
		return []ElectionResult(nil), nil
	}
	b.Fenced = false
	s.Brokers[c.NodeID] = b
	return s.electOffline(c.NodeID), nil
}

func (s *State) brokerAtEpoch(id int32, epoch int64) (Broker, error) {
	b, ok := s.Brokers[id]
	if !ok {
		return Broker{}, kafkaErr(kerr.BrokerIDNotRegistered, "broker %d is not registered", id)
	}
	if b.Epoch != epoch {
		return Broker{}, kafkaErr(kerr.StaleBrokerEpoch, "broker %d is at epoch %d, not %d", id, b.Epoch, epoch)
	}
	return b, nil
}

// hostsReplica reports whether id is a replica of any partition.
func (s *State) hostsReplica(id int32) bool {
	for _, t := range s.Topics {
		for _, p := range t.Partitions {
			if slices.Contains(p.Replicas, id) {
				return true
			}
		}
	}
	return false
}

// fenceReplicas applies FenceBroker's partition changes for id, which s
// already shows fenced.
func (s *State) fenceReplicas(id int32) []ElectionResult {
	var out []ElectionResult
	s.updatePartitions(func(t *Topic, i int32, p Partition) (Partition, bool) {
		if !slices.Contains(p.Replicas, id) && !slices.Contains(p.ISR, id) {
			return p, false
		}
		np := p
		if slices.Contains(p.ISR, id) && len(p.ISR) > 1 {
			np.ISR = without(p.ISR, id)
		}
		unclean := false
		if p.Leader == id {
			np.Leader, np.ISR, unclean = chooseLeader(s, np, t.UncleanLeaderElection())
		}
		np, changed := bump(p, np)
		if np.Leader != p.Leader {
			out = append(out, ElectionResult{Topic: t.Name, Partition: i, Leader: np.Leader, Unclean: unclean})
		}
		return np, changed
	})
	return out
}

// electOffline elects leaders for the offline partitions id, now live, is
// a replica of.
func (s *State) electOffline(id int32) []ElectionResult {
	var out []ElectionResult
	s.updatePartitions(func(t *Topic, i int32, p Partition) (Partition, bool) {
		if p.Leader != -1 || !slices.Contains(p.Replicas, id) {
			return p, false
		}
		np := p
		var unclean bool
		np.Leader, np.ISR, unclean = chooseLeader(s, p, t.UncleanLeaderElection())
		np, changed := bump(p, np)
		if changed {
			out = append(out, ElectionResult{Topic: t.Name, Partition: i, Leader: np.Leader, Unclean: unclean})
		}
		return np, changed
	})
	return out
}
