package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/wire"
)

// handleAlterConfigs is the legacy, non-incremental API: the given configs
// replace all of the topic's overrides, or on the cluster-wide broker
// resource the write fence (fence_configs.go).
func (b *Broker) handleAlterConfigs(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		out := kmsg.NewAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		set := map[string]string{}
		var ops []fenceOp
		for _, c := range rr.Configs {
			if c.Value != nil {
				set[c.Name] = *c.Value
				ops = append(ops, fenceOp{name: c.Name, op: kmsg.IncrementalAlterConfigOpSet, value: c.Value})
			}
		}
		var err error
		if rr.ResourceType == kmsg.ConfigResourceTypeBroker {
			err = b.alterFence(ctx, rr.ResourceName, ops, true, req.ValidateOnly)
		} else {
			err = b.alterTopicConfigs(ctx, rr.ResourceType, rr.ResourceName, &cluster.AlterTopicConfigs{Name: rr.ResourceName, Set: set, Replace: true}, req.ValidateOnly)
		}
		out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}

// alterTopicConfigs validates the topic's configs as they would be after cmd
// and, unless validateOnly, proposes cmd.
func (b *Broker) alterTopicConfigs(ctx context.Context, typ kmsg.ConfigResourceType, name string, cmd *cluster.AlterTopicConfigs, validateOnly bool) error {
	if typ != kmsg.ConfigResourceTypeTopic {
		return &cluster.Error{Code: kerr.InvalidRequest, Message: fmt.Sprintf("resource type %d: kdr alters topic configs and the cluster-wide broker configs %s, %s and %s only", typ, configFenced, configFenceEpoch, configFenceReason)}
	}
	t, ok := b.meta.State().Topic(name)
	if !ok {
		return kerr.UnknownTopicOrPartition
	}
	after := map[string]string{}
	if !cmd.Replace {
		for k, v := range t.Configs {
			after[k] = v
		}
	}
	for k, v := range cmd.Set {
		after[k] = v
	}
	for _, k := range cmd.Delete {
		if _, known := lookupTopicConfig(k); !known {
			return &configError{key: k, msg: "unknown topic config"}
		}
		delete(after, k)
	}
	if _, err := b.cfg.topicSettingsFor(after); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if _, err := b.meta.Propose(ctx, cmd); err != nil {
		return err
	}
	b.log.Info("topic configs changed", "topic", name, "set", cmd.Set, "deleted", cmd.Delete, "replace", cmd.Replace)
	return nil
}
