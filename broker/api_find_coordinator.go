package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/wire"
)

const coordinatorTypeGroup = 0

func (b *Broker) handleFindCoordinator(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := b.findCoordinator(ctx, key, req.CoordinatorType)
		if req.Version < 4 {
			resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
			resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
			break
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp, nil
}

func (b *Broker) findCoordinator(ctx context.Context, key string, typ int8) kmsg.FindCoordinatorResponseCoordinator {
	c := kmsg.NewFindCoordinatorResponseCoordinator()
	c.Key, c.NodeID, c.Port = key, -1, -1
	fail := func(err error) kmsg.FindCoordinatorResponseCoordinator {
		c.ErrorCode, c.ErrorMessage = errorCode(err), errorMessage(err)
		return c
	}
	if typ != coordinatorTypeGroup {
		return fail(&cluster.Error{Code: kerr.InvalidRequest, Message: fmt.Sprintf("coordinator type %d: kdr has group coordinators only (no transactions or share groups)", typ)})
	}
	t, err := b.offsetsTopic(ctx)
	if err != nil {
		return fail(err)
	}
	leader := t.Partitions[b.coord.PartitionFor(key)].Leader
	br, ok := b.meta.State().Brokers[leader]
	if !ok || leader < 0 || br.Fenced {
		return fail(kerr.CoordinatorNotAvailable)
	}
	c.NodeID, c.Host, c.Port = br.NodeID, br.Host, br.Port
	return c
}

// offsetsTopic returns __consumer_offsets, creating it on first use as Kafka
// does, with as many replicas as the cluster allows up to
// offsets.topic.replication.factor.
func (b *Broker) offsetsTopic(ctx context.Context) (*cluster.Topic, error) {
	if t, ok := b.meta.State().Topic(offsetsTopic); ok {
		return t, nil
	}
	rf := min(b.cfg.OffsetsTopicReplicationFactor, int16(liveBrokers(b.meta.State())))
	t, err := b.createTopic(ctx, offsetsTopic, b.cfg.Group.OffsetsTopicPartitions, rf, nil, map[string]string{
		"cleanup.policy": "compact",
		"segment.bytes":  "104857600", // offsets.topic.segment.bytes
	})
	if errors.Is(err, kerr.TopicAlreadyExists) {
		if t, ok := b.meta.State().Topic(offsetsTopic); ok {
			return t, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", offsetsTopic, err)
	}
	return t, nil
}
