package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/wire"
)

// errAcksZeroFailed closes an acks=0 connection whose produce failed, which
// is how Kafka tells a client that asked for no response.
var errAcksZeroFailed = errors.New("produce with acks=0 failed")

func (b *Broker) handleProduce(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
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
	var pending []commitWait
	fence := b.currentFence()
	resp.Topics = make([]kmsg.ProduceResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		out := kmsg.NewProduceResponseTopic()
		out.Topic = rt.Topic
		out.Partitions = make([]kmsg.ProduceResponseTopicPartition, 0, len(rt.Partitions))
		fenceErr := b.fenceCheck(fence, r.ClientID, rt.Topic, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			var op kmsg.ProduceResponseTopicPartition
			var wait *commitWait
			if fenceErr != nil {
				op = refusedPartition(rp.Partition, fenceErr)
			} else {
				op, wait = b.producePartition(rt.Topic, &rp, req.Acks)
			}
			if op.ErrorCode != 0 && failed == nil {
				failed = fmt.Errorf("%w: %s-%d: %v", errAcksZeroFailed, rt.Topic, rp.Partition, kerr.ErrorForCode(op.ErrorCode))
			}
			out.Partitions = append(out.Partitions, op)
			if wait != nil {
				wait.topic, wait.index = len(resp.Topics), len(out.Partitions)-1
				pending = append(pending, *wait)
			}
		}
		resp.Topics = append(resp.Topics, out)
	}
	if req.Acks == 0 {
		return nil, failed
	}
	// acks=all: every partition was appended above; now wait for each to
	// be committed, against one deadline, so the waits overlap.
	deadline := r.Received.Add(time.Duration(req.TimeoutMillis) * time.Millisecond)
	for _, w := range pending {
		if err := w.p.waitCommitted(ctx, w.lastOffset, w.minISR, deadline); err != nil {
			op := &resp.Topics[w.topic].Partitions[w.index]
			op.ErrorCode = errorCode(err)
			op.ErrorMessage = errorMessage(err)
		}
	}
	return resp, nil
}

// commitWait is an acks=all append waiting for the high watermark.
type commitWait struct {
	p            *partition
	lastOffset   int64
	minISR       int32
	topic, index int // where its answer is in the response
}

func (b *Broker) producePartition(topic string, rp *kmsg.ProduceRequestTopicPartition, acks int16) (kmsg.ProduceResponseTopicPartition, *commitWait) {
	out := kmsg.NewProduceResponseTopicPartition()
	out.Partition = rp.Partition
	out.BaseOffset, out.LogAppendTime, out.LogStartOffset = -1, -1, -1
	p, ok := b.partition(topic, rp.Partition)
	if !ok {
		out.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return out, nil
	}
	// An acks=all append is waited for in handleProduce.
	info, err := b.appendAsLeader(p, rp.Records, acks == -1)
	if err != nil {
		out.ErrorCode = b.partitionError("append", topic, rp.Partition, err)
		out.ErrorMessage = errorMessage(err)
		return out, nil
	}
	out.BaseOffset, out.LogAppendTime, out.LogStartOffset = info.BaseOffset, info.LogAppendTime, info.LogStartOffset
	if !info.Duplicate {
		b.metrics.produced(topic, len(rp.Records), info.RecordCount)
	}
	if acks != -1 {
		return out, nil
	}
	_, _, settings := p.state()
	return out, &commitWait{p: p, lastOffset: info.LastOffset, minISR: settings.minInsyncReplicas}
}

// refusedPartition is the answer for a partition refused before its
// records were looked at.
func refusedPartition(partition int32, err error) kmsg.ProduceResponseTopicPartition {
	op := kmsg.NewProduceResponseTopicPartition()
	op.Partition, op.ErrorCode, op.ErrorMessage = partition, errorCode(err), errorMessage(err)
	op.BaseOffset, op.LogAppendTime, op.LogStartOffset = -1, -1, -1
	return op
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
