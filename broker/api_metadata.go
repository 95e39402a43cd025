package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/wire"
)

// authorizedOpsOmitted is Kafka's value for "authorized operations not
// requested" (Integer.MIN_VALUE).
const authorizedOpsOmitted = -2147483648

func (b *Broker) handleMetadata(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	st := b.meta.State()

	// v0 has no null: an empty list means all topics. v4+ lets the client
	// opt out of auto-creation; before that it was always on.
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	autoCreate := b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)

	if all {
		for _, name := range st.TopicNames() {
			t, _ := st.Topic(name)
			resp.Topics = append(resp.Topics, topicMetadata(st, t))
		}
	}
	for _, rt := range req.Topics {
		var t *cluster.Topic
		var ok bool
		switch {
		case rt.Topic != nil && *rt.Topic != "":
			t, ok = st.Topic(*rt.Topic)
			if !ok && autoCreate && !isInternalTopic(*rt.Topic) {
				var err error
				t, err = b.autoCreate(ctx, *rt.Topic)
				if err != nil {
					resp.Topics = append(resp.Topics, topicMetadataError(rt, err))
					continue
				}
				st = b.meta.State()
				ok = true
			}
		case rt.TopicID != [16]byte{}:
			t, ok = st.TopicByID(cluster.TopicID(rt.TopicID))
			if !ok {
				resp.Topics = append(resp.Topics, topicMetadataError(rt, kerr.UnknownTopicID))
				continue
			}
		default:
			resp.Topics = append(resp.Topics, topicMetadataError(rt, kerr.InvalidTopicException))
			continue
		}
		if !ok {
			resp.Topics = append(resp.Topics, topicMetadataError(rt, kerr.UnknownTopicOrPartition))
			continue
		}
		resp.Topics = append(resp.Topics, topicMetadata(st, t))
	}

	// Live brokers only, as Kafka: a fenced broker's address would send
	// clients to a dead end.
	for _, id := range st.BrokerIDs() {
		br := st.Brokers[id]
		if br.Fenced {
			continue
		}
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port, mb.Rack = br.NodeID, br.Host, br.Port, br.Rack
		resp.Brokers = append(resp.Brokers, mb)
	}
	resp.ClusterID = &st.ClusterID
	resp.ControllerID = b.controllerID()
	resp.AuthorizedOperations = authorizedOpsOmitted
	return resp, nil
}

// autoCreate creates a topic a client asked about (auto.create.topics.enable).
// Losing a race with another creator is not an error.
func (b *Broker) autoCreate(ctx context.Context, name string) (*cluster.Topic, error) {
	rf := min(b.cfg.DefaultReplicationFactor, int16(liveBrokers(b.meta.State())))
	t, err := b.createTopic(ctx, name, b.cfg.NumPartitions, rf, nil, nil)
	if errors.Is(err, kerr.TopicAlreadyExists) {
		if t, ok := b.meta.State().Topic(name); ok {
			return t, nil
		}
	}
	return t, err
}

func isInternalTopic(name string) bool { return name == offsetsTopic }

func topicMetadata(st *cluster.State, t *cluster.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = isInternalTopic(t.Name)
	mt.AuthorizedOperations = authorizedOpsOmitted
	for i, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(i)
		mp.Leader = p.Leader
		mp.LeaderEpoch = p.LeaderEpoch
		mp.Replicas = p.Replicas
		mp.ISR = p.ISR
		mp.OfflineReplicas = []int32{}
		for _, r := range p.Replicas {
			if br, ok := st.Brokers[r]; !ok || br.Fenced {
				mp.OfflineReplicas = append(mp.OfflineReplicas, r)
			}
		}
		if p.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

func topicMetadataError(rt kmsg.MetadataRequestTopic, err error) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = rt.Topic
	mt.TopicID = rt.TopicID
	mt.ErrorCode = errorCode(err)
	mt.AuthorizedOperations = authorizedOpsOmitted
	return mt
}
