package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/wire"
)

func (b *Broker) handleDeleteTopics(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	// v0-v5 name topics in TopicNames; v6 in Topics, by name or id.
	targets := req.Topics
	for _, n := range req.TopicNames {
		t := kmsg.NewDeleteTopicsRequestTopic()
		name := n
		t.Topic = &name
		targets = append(targets, t)
	}
	for _, rt := range targets {
		out := kmsg.NewDeleteTopicsResponseTopic()
		out.Topic, out.TopicID = rt.Topic, rt.TopicID
		err := b.deleteTopic(ctx, rt)
		out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}

func (b *Broker) deleteTopic(ctx context.Context, rt kmsg.DeleteTopicsRequestTopic) error {
	st := b.meta.State()
	var t *cluster.Topic
	var ok bool
	if rt.Topic != nil && *rt.Topic != "" {
		t, ok = st.Topic(*rt.Topic)
	} else {
		t, ok = st.TopicByID(cluster.TopicID(rt.TopicID))
		if !ok {
			return kerr.UnknownTopicID
		}
	}
	if !ok {
		return kerr.UnknownTopicOrPartition
	}
	if isInternalTopic(t.Name) {
		return &cluster.Error{Code: kerr.InvalidTopicException, Message: fmt.Sprintf("%s is an internal topic and cannot be deleted", t.Name)}
	}
	if _, err := b.meta.Propose(ctx, &cluster.DeleteTopic{Name: t.Name}); err != nil {
		return err
	}
	b.log.Info("topic deleted", "topic", t.Name, "id", t.ID.String())
	return nil
}
