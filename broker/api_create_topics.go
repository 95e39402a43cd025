package broker

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/wire"
)

func (b *Broker) handleCreateTopics(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		rt := rt
		out := kmsg.NewCreateTopicsResponseTopic()
		out.Topic = rt.Topic
		out.NumPartitions, out.ReplicationFactor = -1, -1
		if seen[rt.Topic] > 1 {
			setCreateTopicErr(&out, &cluster.Error{Code: kerr.InvalidRequest, Message: fmt.Sprintf("topic %q is listed more than once in the request", rt.Topic)})
			resp.Topics = append(resp.Topics, out)
			continue
		}
		t, err := b.createTopicFromRequest(ctx, &rt, req.ValidateOnly)
		if err != nil {
			setCreateTopicErr(&out, err)
		} else {
			out.TopicID = t.ID
			out.NumPartitions = int32(len(t.Partitions))
			out.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
			out.Configs = b.createTopicConfigs(t)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}

func setCreateTopicErr(out *kmsg.CreateTopicsResponseTopic, err error) {
	out.ErrorCode = errorCode(err)
	out.ErrorMessage = errorMessage(err)
}

func (b *Broker) createTopicFromRequest(ctx context.Context, rt *kmsg.CreateTopicsRequestTopic, validateOnly bool) (*cluster.Topic, error) {
	partitions, rf := rt.NumPartitions, rt.ReplicationFactor
	if partitions == -1 {
		partitions = b.cfg.NumPartitions
	}
	if rf == -1 {
		rf = b.cfg.DefaultReplicationFactor
	}
	var assignment [][]int32
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return nil, &cluster.Error{Code: kerr.InvalidRequest, Message: "give either a replica assignment or partition count and replication factor, not both"}
		}
		assignment = make([][]int32, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(assignment) || assignment[a.Partition] != nil {
				return nil, &cluster.Error{Code: kerr.InvalidReplicaAssignment, Message: fmt.Sprintf("replica assignment partitions must be 0..%d, each once", len(assignment)-1)}
			}
			assignment[a.Partition] = a.Replicas
		}
		partitions = int32(len(assignment))
	}
	if partitions <= 0 {
		return nil, &cluster.Error{Code: kerr.InvalidPartitions, Message: fmt.Sprintf("partition count %d must be positive", partitions)}
	}
	configs := map[string]string{}
	for _, c := range rt.Configs {
		if c.Value != nil {
			configs[c.Name] = *c.Value
		}
	}
	if validateOnly {
		if err := validTopicName(rt.Topic); err != nil {
			return nil, err
		}
		if _, err := b.cfg.topicSettingsFor(configs); err != nil {
			return nil, err
		}
		if _, exists := b.meta.State().Topic(rt.Topic); exists {
			return nil, &cluster.Error{Code: kerr.TopicAlreadyExists, Message: fmt.Sprintf("topic %q already exists", rt.Topic)}
		}
		if n := len(b.meta.State().Brokers); assignment == nil && (rf < 1 || int(rf) > n) {
			return nil, &cluster.Error{Code: kerr.InvalidReplicationFactor, Message: fmt.Sprintf("replication factor %d: must be between 1 and the %d registered brokers", rf, n)}
		}
		t := &cluster.Topic{Name: rt.Topic, Configs: configs}
		for i := int32(0); i < partitions; i++ {
			replicas := make([]int32, max(rf, 1))
			if assignment != nil {
				replicas = assignment[i]
			}
			t.Partitions = append(t.Partitions, cluster.Partition{Replicas: replicas})
		}
		return t, nil
	}
	return b.createTopic(ctx, rt.Topic, partitions, rf, assignment, configs)
}

// createTopicConfigs lists a new topic's effective configs (CreateTopics v5+).
func (b *Broker) createTopicConfigs(t *cluster.Topic) []kmsg.CreateTopicsResponseTopicConfig {
	var out []kmsg.CreateTopicsResponseTopicConfig
	for _, e := range b.topicConfigEntries(t, nil) {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive = e.Name, e.Value, e.ReadOnly, int8(e.Source), e.IsSensitive
		out = append(out, c)
	}
	return out
}

// validTopicName applies Kafka's topic name rules.
func validTopicName(name string) error {
	bad := func(why string) error {
		return &cluster.Error{Code: kerr.InvalidTopicException, Message: fmt.Sprintf("topic name %s %s", strconv.Quote(name), why)}
	}
	switch {
	case name == "":
		return bad("is empty")
	case name == "." || name == "..":
		return bad(`cannot be "." or ".."`)
	case len(name) > 249:
		return bad("is longer than 249 characters")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return bad("may contain only ASCII letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}
