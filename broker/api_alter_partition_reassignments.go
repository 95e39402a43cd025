package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/wire"
)

// handleAlterPartitionReassignments starts, replaces or (null replicas)
// cancels the reassignment of each listed partition (KIP-455), one metadata
// command per partition, so one partition's failure leaves the others
// alone. It answers once the commands are applied; the data movement then
// proceeds in the background and ListPartitionReassignments reports it.
func (b *Broker) handleAlterPartitionReassignments(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	// v0 has no AllowReplicationFactorChange: any change is allowed.
	allowRF := req.Version < 1 || req.AllowReplicationFactorChange
	resp.AllowReplicationFactorChange = allowRF
	ctx, cancel := adminDeadline(ctx, r, req.TimeoutMillis)
	defer cancel()
	for _, rt := range req.Topics {
		out := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		out.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			po := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			po.Partition = rp.Partition
			err := b.reassignPartition(ctx, rt.Topic, rp.Partition, rp.Replicas, allowRF)
			po.ErrorCode, po.ErrorMessage = errorCode(err), errorMessage(err)
			out.Partitions = append(out.Partitions, po)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}

// reassignPartition proposes one partition's reassignment to replicas (nil:
// cancel). Without allowRFChange (KIP-860) a target whose size differs from
// the partition's replication factor before any reassignment in progress is
// INVALID_REPLICATION_FACTOR. Topic existence is left to the command, which
// the metadata leader applies to the newest state.
func (b *Broker) reassignPartition(ctx context.Context, topic string, partition int32, replicas []int32, allowRFChange bool) error {
	if t, ok := b.meta.State().Topic(topic); ok && replicas != nil && !allowRFChange &&
		partition >= 0 && int(partition) < len(t.Partitions) {
		p := t.Partitions[partition]
		if rf := len(p.Replicas) - len(p.AddingReplicas); len(replicas) != rf {
			return &cluster.Error{Code: kerr.InvalidReplicationFactor, Message: fmt.Sprintf(
				"%s-%d: the target has %d replicas, the partition %d, and the request does not allow changing the replication factor",
				topic, partition, len(replicas), rf)}
		}
	}
	res, err := b.meta.Propose(ctx, &cluster.AlterPartitionReassignments{Topic: topic, Partition: partition, Replicas: replicas})
	if err != nil {
		if logWorthy(errorCode(err)) {
			b.log.Warn("partition reassignment failed", "topic", topic, "partition", partition, "err", err)
		}
		return err
	}
	p, _ := res.(cluster.Partition)
	if replicas == nil {
		b.log.Info("partition reassignment cancelled", "topic", topic, "partition", partition, "replicas", p.Replicas)
	} else {
		b.log.Info("partition reassignment started", "topic", topic, "partition", partition, "target", replicas,
			"replicas", p.Replicas, "adding", p.AddingReplicas, "removing", p.RemovingReplicas)
	}
	return nil
}

// adminDeadline bounds an admin request's metadata commands by its
// TimeoutMillis, counted from when the request arrived. A command still
// pending at the deadline may yet be applied, as in Kafka, whose
// REQUEST_TIMED_OUT does not undo the request either. A non-positive
// timeout leaves ctx as it is.
func adminDeadline(ctx context.Context, r *wire.Request, timeoutMillis int32) (context.Context, context.CancelFunc) {
	if timeoutMillis <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, r.Received.Add(time.Duration(timeoutMillis)*time.Millisecond))
}
