package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/wire"
)

// handleListPartitionReassignments lists the reassignments in progress, from
// this broker's copy of the metadata: of every partition when the request's
// topics are null, else of the listed partitions. As in Kafka, a partition
// that is not being reassigned, or does not exist, is left out rather than
// reported as an error, and so is a topic left with no partition.
func (b *Broker) handleListPartitionReassignments(_ context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.ListPartitionReassignmentsRequest)
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	var wanted map[string]map[int32]bool
	if req.Topics != nil {
		wanted = make(map[string]map[int32]bool, len(req.Topics))
		for _, rt := range req.Topics {
			if wanted[rt.Topic] == nil {
				wanted[rt.Topic] = make(map[int32]bool, len(rt.Partitions))
			}
			for _, p := range rt.Partitions {
				wanted[rt.Topic][p] = true
			}
		}
	}
	// Reassignments come in topic then partition order, so each topic's
	// partitions are consecutive.
	for _, ra := range b.meta.State().Reassignments() {
		if wanted != nil && !wanted[ra.Topic][ra.Partition] {
			continue
		}
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != ra.Topic {
			out := kmsg.NewListPartitionReassignmentsResponseTopic()
			out.Topic = ra.Topic
			resp.Topics = append(resp.Topics, out)
		}
		po := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		po.Partition, po.Replicas, po.AddingReplicas, po.RemovingReplicas = ra.Partition, ra.Replicas, ra.AddingReplicas, ra.RemovingReplicas
		last := &resp.Topics[len(resp.Topics)-1]
		last.Partitions = append(last.Partitions, po)
	}
	return resp, nil
}
