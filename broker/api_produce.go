package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/wire"
)

// errAcksZeroFailed closes an acks=0 connection whose produce failed, which
// is how Kafka tells a client that asked for no response.
var errAcksZeroFailed = errors.New("produce with acks=0 failed")

func (b *Broker) handleProduce(_ context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
		fillProduceError(req, resp, kerr.InvalidRequiredAcks)
		return resp, nil
	}
	if req.TransactionID != nil {
		fillProduceError(req, resp, kerr.TransactionalIDAuthorizationFailed)
		return resp, nil
	}
	var failed error
	resp.Topics = make([]kmsg.ProduceResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		out := kmsg.NewProduceResponseTopic()
		out.Topic = rt.Topic
		out.Partitions = make([]kmsg.ProduceResponseTopicPartition, 0, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			op := b.producePartition(rt.Topic, &rp, req.Acks)
			if op.ErrorCode != 0 && failed == nil {
				failed = fmt.Errorf("%w: %s-%d: %v", errAcksZeroFailed, rt.Topic, rp.Partition, kerr.ErrorForCode(op.ErrorCode))
			}
			out.Partitions = append(out.Partitions, op)
		}
		resp.Topics = append(resp.Topics, out)
	}
	if req.Acks == 0 {
		return nil, failed
	}
	return resp, nil
}

func (b *Broker) producePartition(topic string, rp *kmsg.ProduceRequestTopicPartition, acks int16) kmsg.ProduceResponseTopicPartition {
	out := kmsg.NewProduceResponseTopicPartition()
	out.Partition = rp.Partition
	out.BaseOffset, out.LogAppendTime, out.LogStartOffset = -1, -1, -1
	p, ok := b.partition(topic, rp.Partition)
	if !ok {
		out.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return out
	}
	leader, epoch, settings := p.state()
	if !leader {
		out.ErrorCode = kerr.NotLeaderForPartition.Code
		return out
	}
	if acks == -1 {
		// With one replica the ISR is this broker; replication brings
		// real ISR tracking.
		if isr := int32(1); isr < settings.minInsyncReplicas {
			out.ErrorCode = kerr.NotEnoughReplicas.Code
			msg := fmt.Sprintf("ISR has %d replicas, min.insync.replicas is %d", isr, settings.minInsyncReplicas)
			out.ErrorMessage = &msg
			return out
		}
	}
	info, err := p.log.AppendAsLeader(rp.Records, epoch)
	if err != nil {
		out.ErrorCode = errorCode(err)
		out.ErrorMessage = errorMessage(err)
		if out.ErrorCode == kerr.UnknownServerError.Code {
			b.log.Error("append failed", "topic", topic, "partition", rp.Partition, "err", err)
		}
		return out
	}
	out.BaseOffset, out.LogAppendTime, out.LogStartOffset = info.BaseOffset, info.LogAppendTime, info.LogStartOffset
	if !info.Duplicate {
		b.metrics.produced(topic, len(rp.Records), info.RecordCount)
		p.notify()
	}
	return out
}

func fillProduceError(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse, err *kerr.Error) {
	for _, rt := range req.Topics {
		out := kmsg.NewProduceResponseTopic()
		out.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewProduceResponseTopicPartition()
			op.Partition, op.ErrorCode = rp.Partition, err.Code
			op.BaseOffset, op.LogAppendTime, op.LogStartOffset = -1, -1, -1
			out.Partitions = append(out.Partitions, op)
		}
		resp.Topics = append(resp.Topics, out)
	}
}
