package cluster

import "strconv"

// FencedBrokers counts the registered brokers that are fenced.
func (s *State) FencedBrokers() int {
	n := 0
	for _, b := range s.Brokers {
		if b.Fenced {
			n++
		}
	}
	return n
}

// Offline counts the partitions without a leader.
func (s *State) Offline() int {
	return s.countPartitions(func(_ *Topic, p Partition) bool { return p.Leader == -1 })
}

// UnderReplicated counts the partitions with a replica out of the ISR.
// Replicas still being added by a reassignment are not counted: they are
// expected to be catching up.
func (s *State) UnderReplicated() int {
	return s.countPartitions(func(_ *Topic, p Partition) bool {
		return len(p.ISR) < len(p.Replicas)-len(p.AddingReplicas)
	})
}

// UnderMinISR counts the partitions whose ISR is smaller than the topic's
// min.insync.replicas, defaultMinISR when the topic does not override it
// (or overrides it with something that is not a number).
func (s *State) UnderMinISR(defaultMinISR int) int {
	return s.countPartitions(func(t *Topic, p Partition) bool {
		min := defaultMinISR
		if v, err := strconv.Atoi(t.Configs[ConfigMinInsyncReplicas]); err == nil {
			min = v
		}
		return len(p.ISR) < min
	})
}

func (s *State) countPartitions(match func(*Topic, Partition) bool) int {
	n := 0
	for _, t := range s.Topics {
		for _, p := range t.Partitions {
			if match(t, p) {
				n++
			}
		}
	}
	return n
}
