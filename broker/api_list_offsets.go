package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/wire"
)

// Special ListOffsets timestamps.
const (
	listLatest        = -1
	listEarliest      = -2
	listMaxTimestamp  = -3 // KIP-734, v7+
	listEarliestLocal = -4 // KIP-405, v8+: without tiered storage, the log start
)

func (b *Broker) handleListOffsets(_ context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewListOffsetsResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			op.Offset, op.Timestamp, op.LeaderEpoch = -1, -1, -1
			if err := b.listOffset(rt.Topic, &rp, &op, req.Version); err != nil {
				op.ErrorCode = errorCode(err)
				op.Offset, op.Timestamp, op.LeaderEpoch = -1, -1, -1
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

func (b *Broker) listOffset(topic string, rp *kmsg.ListOffsetsRequestTopicPartition, op *kmsg.ListOffsetsResponseTopicPartition, version int16) error {
	p, ok := b.partition(topic, rp.Partition)
	if !ok {
		return kerr.UnknownTopicOrPartition
	}
	leader, epoch, _ := p.state()
	if !leader {
		return kerr.NotLeaderForPartition
	}
	if ce := rp.CurrentLeaderEpoch; ce != -1 {
		if ce < epoch {
			return kerr.FencedLeaderEpoch
		} else if ce > epoch {
			return kerr.UnknownLeaderEpoch
		}
	}
	hw := p.highWatermark()
	switch ts := rp.Timestamp; {
	case ts == listLatest:
		op.Offset, op.LeaderEpoch = hw, epoch
	case ts == listEarliest || (ts == listEarliestLocal && version >= 8):
		op.Offset = p.log.LogStartOffset()
	case ts == listMaxTimestamp && version >= 7:
		off, maxTs := p.log.MaxTimestamp()
		if off >= 0 && off < hw {
			op.Offset, op.Timestamp = off, maxTs
		}
	case ts >= 0:
		off, at, ok := p.log.OffsetForTimestamp(ts)
		if ok && off < hw {
			op.Offset, op.Timestamp = off, at
		}
	default:
		return kerr.InvalidRequest
	}
	return nil
}
