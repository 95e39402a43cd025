package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/wire"
)

// handleOffsetForLeaderEpoch answers, per partition, the end offset of the
// requested leader epoch (KIP-101/KIP-279): consumers use it to detect log
// truncation after a leader change (KIP-320), followers to find where their
// log diverges from the leader's.
func (b *Broker) handleOffsetForLeaderEpoch(_ context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewOffsetForLeaderEpochResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			op.Partition = rp.Partition
			op.LeaderEpoch, op.EndOffset = -1, -1
			p, ok := b.partition(rt.Topic, rp.Partition)
			leader, epoch := false, int32(0)
			if ok {
				leader, epoch, _ = p.state()
			}
			switch {
			case !ok:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case !leader:
				op.ErrorCode = kerr.NotLeaderForPartition.Code
			case rp.CurrentLeaderEpoch != -1 && rp.CurrentLeaderEpoch < epoch:
				op.ErrorCode = kerr.FencedLeaderEpoch.Code
			case rp.CurrentLeaderEpoch > epoch:
				op.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				op.LeaderEpoch, op.EndOffset = p.log.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}
