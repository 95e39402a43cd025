package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/wire"
)

func (b *Broker) handleCreatePartitions(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		out := kmsg.NewCreatePartitionsResponseTopic()
		out.Topic = rt.Topic
		err := b.createPartitions(ctx, rt, req.ValidateOnly)
		out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}

func (b *Broker) createPartitions(ctx context.Context, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	t, ok := b.meta.State().Topic(rt.Topic)
	if !ok {
		return kerr.UnknownTopicOrPartition
	}
	if isInternalTopic(rt.Topic) {
		return &cluster.Error{Code: kerr.InvalidRequest, Message: fmt.Sprintf("%s is an internal topic; its partition count cannot change", rt.Topic)}
	}
	if rt.Count <= int32(len(t.Partitions)) {
		return &cluster.Error{Code: kerr.InvalidPartitions, Message: fmt.Sprintf("topic %q has %d partitions; the new count %d must be larger", rt.Topic, len(t.Partitions), rt.Count)}
	}
	var assignment [][]int32
	for _, a := range rt.Assignment {
		assignment = append(assignment, a.Replicas)
	}
	if validateOnly {
		return nil
	}
	_, err := b.meta.Propose(ctx, &cluster.CreatePartitions{Name: rt.Topic, Count: rt.Count, Assignment: assignment})
	if err == nil {
		b.log.Info("partitions added", "topic", rt.Topic, "from", len(t.Partitions), "to", rt.Count)
	}
	return err
}
