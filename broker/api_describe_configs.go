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

func (b *Broker) handleDescribeConfigs(_ context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	st := b.meta.State()
	for _, rr := range req.Resources {
		out := kmsg.NewDescribeConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []kmsg.DescribeConfigsResponseResourceConfig
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if t, ok := st.Topic(rr.ResourceName); ok {
				entries = b.topicConfigEntries(t, rr.ConfigNames)
			} else {
				err = kerr.UnknownTopicOrPartition
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName == "" || rr.ResourceName == strconv.Itoa(int(b.cfg.NodeID)) {
				entries = b.brokerConfigEntries(rr.ConfigNames)
			} else {
				err = &cluster.Error{Code: kerr.InvalidRequest, Message: fmt.Sprintf("broker %s: ask that broker for its configs", rr.ResourceName)}
			}
		default:
			err = &cluster.Error{Code: kerr.InvalidRequest, Message: fmt.Sprintf("resource type %d: kdr describes topic and broker configs", rr.ResourceType)}
		}
		out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
		for _, e := range entries {
			if !req.IncludeSynonyms {
				e.ConfigSynonyms = nil
			}
			if !req.IncludeDocumentation {
				e.Documentation = nil
			}
			out.Configs = append(out.Configs, e)
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}

// topicConfigEntries describes a topic's effective configs; names limits the
// answer (nil: all).
func (b *Broker) topicConfigEntries(t *cluster.Topic, names []string) []kmsg.DescribeConfigsResponseResourceConfig {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, def := range topicConfigs {
		if names != nil && !want[def.name] {
			continue
		}
		e := kmsg.NewDescribeConfigsResponseResourceConfig()
		e.Name, e.ConfigType = def.name, def.typ
		doc := def.doc
		e.Documentation = &doc
		brokerValue := def.def(&b.cfg)
		brokerSyn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		brokerSyn.Name, brokerSyn.Value, brokerSyn.Source = def.brokerName, &brokerValue, kmsg.ConfigSourceDefaultConfig
		if v, ok := t.Configs[def.name]; ok {
			v := v
			e.Value, e.Source = &v, kmsg.ConfigSourceDynamicTopicConfig
			topicSyn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			topicSyn.Name, topicSyn.Value, topicSyn.Source = def.name, &v, kmsg.ConfigSourceDynamicTopicConfig
			e.ConfigSynonyms = append(e.ConfigSynonyms, topicSyn)
		} else {
			e.Value, e.Source, e.IsDefault = &brokerValue, kmsg.ConfigSourceDefaultConfig, true
		}
		e.ConfigSynonyms = append(e.ConfigSynonyms, brokerSyn)
		out = append(out, e)
	}
	return out
}

// brokerConfigEntries describes the broker's static settings, which are read
// only, and the write fence, kdr's only dynamic broker configs
// (fence_configs.go).
func (b *Broker) brokerConfigEntries(names []string) []kmsg.DescribeConfigsResponseResourceConfig {
	c := &b.cfg
	ms := func(d interface{ Milliseconds() int64 }) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	all := []struct {
		name, value string
		typ         kmsg.ConfigType
	}{
		{"node.id", strconv.Itoa(int(c.NodeID)), kmsg.ConfigTypeInt},
		{"log.dirs", c.DataDir, kmsg.ConfigTypeString},
		{"broker.rack", c.Rack, kmsg.ConfigTypeString},
		{"auto.create.topics.enable", strconv.FormatBool(c.AutoCreateTopics), kmsg.ConfigTypeBoolean},
		{"num.partitions", strconv.Itoa(int(c.NumPartitions)), kmsg.ConfigTypeInt},
		{"default.replication.factor", strconv.Itoa(int(c.DefaultReplicationFactor)), kmsg.ConfigTypeInt},
		{"offsets.topic.num.partitions", strconv.Itoa(int(c.Group.OffsetsTopicPartitions)), kmsg.ConfigTypeInt},
		{"offsets.topic.replication.factor", strconv.Itoa(int(c.OffsetsTopicReplicationFactor)), kmsg.ConfigTypeShort},
		{"group.min.session.timeout.ms", ms(c.Group.MinSessionTimeout), kmsg.ConfigTypeInt},
		{"group.max.session.timeout.ms", ms(c.Group.MaxSessionTimeout), kmsg.ConfigTypeInt},
		{"group.initial.rebalance.delay.ms", ms(c.Group.InitialRebalanceDelay), kmsg.ConfigTypeInt},
		{"socket.request.max.bytes", strconv.Itoa(int(c.Socket.MaxRequestBytes)), kmsg.ConfigTypeInt},
		{"connections.max.idle.ms", ms(c.Socket.IdleTimeout), kmsg.ConfigTypeLong},
		{"log.retention.check.interval.ms", ms(c.LogMaintenanceInterval), kmsg.ConfigTypeLong},
		{"log.writeback.bytes", strconv.FormatInt(c.LogWritebackBytes, 10), kmsg.ConfigTypeLong},
		{"log.drop.behind.bytes", strconv.FormatInt(c.LogDropBehindBytes, 10), kmsg.ConfigTypeLong},
	}
	for _, def := range topicConfigs {
		all = append(all, struct {
			name, value string
			typ         kmsg.ConfigType
		}{def.brokerName, def.def(c), def.typ})
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, a := range all {
		if names != nil && !want[a.name] {
			continue
		}
		e := kmsg.NewDescribeConfigsResponseResourceConfig()
		v := a.value
		e.Name, e.Value, e.ConfigType, e.ReadOnly, e.Source = a.name, &v, a.typ, true, kmsg.ConfigSourceStaticBrokerConfig
		out = append(out, e)
	}
	return append(out, b.fenceConfigEntries(func(n string) bool { return names == nil || want[n] })...)
}
