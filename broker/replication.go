package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/replica"
	"github.com/kdr-io/kdr/broker/storage"
)

// replicaRole applies a partition's committed metadata to its local replica:
// leading it (a replica.Leader tracking followers) or following it (the
// fetcher pulling from the leader). Called from reconcile with b.mu held;
// it must not propose.
func (b *Broker) replicaRole(st *cluster.State, p *partition, pa cluster.Partition, now time.Time) (gained, lost bool) {
	self := b.cfg.NodeID
	p.mu.Lock()
	defer p.mu.Unlock()
	wasLeader, oldEpoch := p.isLeader, p.leaderEpoch
	p.replicas, p.isr, p.partitionEpoch = slices.Clone(pa.Replicas), slices.Clone(pa.ISR), pa.PartitionEpoch
	p.leaderEpoch = pa.LeaderEpoch
	p.isLeader = pa.Leader == self
	switch {
	case p.isLeader && (!wasLeader || oldEpoch != pa.LeaderEpoch || p.leader == nil):
		b.fetcher.Remove(p.topic, p.index)
		p.leader = replica.NewLeader(self, pa.Replicas, pa.ISR, p.followerHW, p.log.LogEndOffset(), now)
		b.log.Info("became leader", "topic", p.topic, "partition", p.index, "leader_epoch", pa.LeaderEpoch,
			"isr", pa.ISR, "log_end_offset", p.log.LogEndOffset(), "high_watermark", p.leader.HighWatermark())
	case p.isLeader:
		p.leader.SetMembers(pa.Replicas, pa.ISR, p.log.LogEndOffset(), now)
	default:
		if p.leader != nil {
			p.followerHW = p.leader.HighWatermark()
			p.leader = nil
		}
		br, ok := st.Brokers[pa.Leader]
		if pa.Leader < 0 || !ok {
			b.fetcher.Remove(p.topic, p.index)
			break
		}
		addr := net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
		if o, ok := b.cfg.PeerAddresses[pa.Leader]; ok {
			addr = o
		}
		b.fetcher.Set(replica.Assignment{
			Topic: p.topic, Partition: p.index, LeaderID: pa.Leader, LeaderAddr: addr, LeaderEpoch: pa.LeaderEpoch,
			Log: p.log, Fetched: p.followerFetched,
		})
		if wasLeader || oldEpoch != pa.LeaderEpoch {
			b.log.Info("following", "topic", p.topic, "partition", p.index, "leader", pa.Leader, "leader_epoch", pa.LeaderEpoch)
		}
	}
	p.notifyLocked() // leadership or ISR changed: wake fetches and acks=all waiters
	return p.isLeader && !wasLeader, wasLeader && !p.isLeader
}

// followerFetched is the fetcher's callback after each fetch of a followed
// partition: adopt the leader's high watermark and wake local waiters.
func (p *partition) followerFetched(hw int64) {
	p.mu.Lock()
	if p.leader == nil && hw > p.followerHW {
		p.followerHW = hw
	}
	p.notifyLocked()
	p.mu.Unlock()
}

// highWatermark is the offset up to which consumers may read: the minimum
// log end offset over the ISR on the leader, the leader's (as last
// fetched) on a follower.
func (p *partition) highWatermark() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leader != nil {
		return p.leader.HighWatermark()
	}
	return min(p.followerHW, p.log.LogEndOffset())
}

// leaderState returns the partition's replica.Leader, nil if not leading.
func (p *partition) leaderState() *replica.Leader {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leader
}

// isrSize is the committed ISR size.
func (p *partition) isrSize() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.isr) == 0 {
		return 1 // metadata from before ISR tracking: the leader alone
	}
	return len(p.isr)
}

// waitCommitted waits until the high watermark passes lastOffset: every ISR
// member has the records (acks=all). It fails with NOT_ENOUGH_REPLICAS_AFTER_APPEND
// if the ISR shrinks below minISR meanwhile, NOT_LEADER_OR_FOLLOWER if
// leadership moves, and REQUEST_TIMED_OUT at the deadline.
func (p *partition) waitCommitted(ctx context.Context, lastOffset int64, minISR int32, deadline time.Time) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		p.mu.Lock()
		l, isLeader := p.leader, p.isLeader
		p.mu.Unlock()
		if l == nil || !isLeader {
			return kerr.NotLeaderForPartition
		}
		changed := l.Changed()
		if l.HighWatermark() > lastOffset {
			return nil
		}
		if int32(len(l.ISR())) < minISR {
			return kerr.NotEnoughReplicasAfterAppend
		}
		select {
		case <-changed:
		case <-timer.C:
			return kerr.RequestTimedOut
		case <-ctx.Done():
			return kerr.RequestTimedOut
		}
		// Leadership may have moved to a new replica.Leader.
		if cur := p.leaderState(); cur != l {
			return kerr.NotLeaderForPartition
		}
	}
}

// appendAsLeader appends a producer's batches. For acks=all (acksAll) it
// first checks min.insync.replicas, so a partition without enough replicas
// rejects the write instead of storing a record it cannot acknowledge; the
// caller then waits with waitCommitted.
func (b *Broker) appendAsLeader(p *partition, batches []byte, acksAll bool) (storage.AppendInfo, error) {
	leader, epoch, settings := p.state()
	if !leader {
		return storage.AppendInfo{}, kerr.NotLeaderForPartition
	}
	if acksAll {
		if isr := p.isrSize(); int32(isr) < settings.minInsyncReplicas {
			return storage.AppendInfo{}, fmt.Errorf("%w: ISR has %d replicas, min.insync.replicas is %d",
				kerr.NotEnoughReplicas, isr, settings.minInsyncReplicas)
		}
	}
	info, err := p.log.AppendAsLeader(batches, epoch)
	if err != nil {
		return info, err
	}
	if l := p.leaderState(); l != nil {
		l.Appended(p.log.LogEndOffset())
	}
	if !info.Duplicate {
		p.notify()
	}
	return info, nil
}

// followerFetch is the leader's bookkeeping for a replica's fetch: the fetch
// offset is the follower's log end offset. It may move the high watermark
// and may make the follower eligible to rejoin the ISR.
func (b *Broker) followerFetch(p *partition, replicaID int32, fetchOffset int64) {
	l := p.leaderState()
	if l == nil {
		return
	}
	moved, eligible := l.FollowerFetched(replicaID, fetchOffset, p.log.LogEndOffset(), time.Now())
	if moved {
		p.notify()
	}
	if eligible {
		b.alterISR(p, func(isr []int32) []int32 {
			if slices.Contains(isr, replicaID) {
				return nil
			}
			return append(slices.Clone(isr), replicaID)
		}, "expand", replicaID)
	}
}

// checkISR proposes to drop followers that have not caught up within
// replica.lag.time.max.ms from the ISR of every partition this broker leads.
func (b *Broker) checkISR() {
	now := time.Now()
	for _, p := range b.allPartitions() {
		l := p.leaderState()
		if l == nil {
			continue
		}
		lagging := l.Lagging(now, b.cfg.ReplicaLagTimeMax)
		if len(lagging) == 0 {
			continue
		}
		b.alterISR(p, func(isr []int32) []int32 {
			out := slices.DeleteFunc(slices.Clone(isr), func(id int32) bool { return slices.Contains(lagging, id) })
			if len(out) == len(isr) {
				return nil
			}
			return out
		}, "shrink", lagging...)
	}
}

// alterISR proposes the ISR change computed by change from the committed
// ISR (nil: no change), at most one at a time per partition, in the
// background: a proposal goes to the controller over the network.
func (b *Broker) alterISR(p *partition, change func([]int32) []int32, kind string, ids ...int32) {
	if b.ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	if p.alterInFlight || !p.isLeader {
		p.mu.Unlock()
		return
	}
	newISR := change(p.isr)
	if newISR == nil {
		p.mu.Unlock()
		return
	}
	cmd := &cluster.AlterPartition{
		Topic: p.topic, TopicID: p.id, Partition: p.index, LeaderID: b.cfg.NodeID,
		LeaderEpoch: p.leaderEpoch, PartitionEpoch: p.partitionEpoch, NewISR: newISR,
	}
	old := slices.Clone(p.isr)
	p.alterInFlight = true
	p.mu.Unlock()

	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() { p.mu.Lock(); p.alterInFlight = false; p.mu.Unlock() }()
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		_, err := b.meta.Propose(ctx, cmd)
		if err != nil {
			var ce *cluster.Error
			if errors.As(err, &ce) {
				b.log.Info("ISR change refused", "topic", p.topic, "partition", p.index, "kind", kind, "replicas", ids, "err", err)
			} else if b.ctx.Err() == nil {
				b.log.Warn("ISR change failed", "topic", p.topic, "partition", p.index, "kind", kind, "replicas", ids, "err", err)
			}
			return
		}
		b.metrics.isrChange(kind)
		b.log.Info("ISR changed", "topic", p.topic, "partition", p.index, "kind", kind, "replicas", ids, "from", old, "to", newISR)
	}()
}
