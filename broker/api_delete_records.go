package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/wire"
)

// handleDeleteRecords moves log start offsets forward (kafka-delete-records).
// Offset -1 means the high watermark.
func (b *Broker) handleDeleteRecords(_ context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewDeleteRecordsResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewDeleteRecordsResponseTopicPartition()
			op.Partition, op.LowWatermark = rp.Partition, -1
			p, ok := b.partition(rt.Topic, rp.Partition)
			if !ok {
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else if leader, _, _ := p.state(); !leader {
				op.ErrorCode = kerr.NotLeaderForPartition.Code
			} else {
				off := rp.Offset
				hw := p.highWatermark()
				if off == -1 {
					off = hw
				}
				if off < 0 || off > hw {
					op.ErrorCode = kerr.OffsetOutOfRange.Code
				} else if lso, err := p.log.DeleteRecordsBefore(off); err != nil {
					op.ErrorCode = errorCode(err)
				} else {
					op.LowWatermark = lso
					b.log.Info("records deleted", "topic", rt.Topic, "partition", rp.Partition, "log_start_offset", lso)
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}
