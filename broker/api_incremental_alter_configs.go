package broker

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/wire"
)

func (b *Broker) handleIncrementalAlterConfigs(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		out := kmsg.NewIncrementalAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		if rr.ResourceType == kmsg.ConfigResourceTypeBroker {
			ops := make([]fenceOp, len(rr.Configs))
			for i, c := range rr.Configs {
				ops[i] = fenceOp{name: c.Name, op: c.Op, value: c.Value}
			}
			err = b.alterFence(ctx, rr.ResourceName, ops, false, req.ValidateOnly)
		} else {
			var cmd *cluster.AlterTopicConfigs
			if cmd, err = b.incrementalCommand(rr); err == nil {
				err = b.alterTopicConfigs(ctx, rr.ResourceType, rr.ResourceName, cmd, req.ValidateOnly)
			}
		}
		out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}

// incrementalCommand turns SET/DELETE/APPEND/SUBTRACT operations into one
// config change. APPEND and SUBTRACT apply to list configs (cleanup.policy)
// and start from the topic's effective value.
func (b *Broker) incrementalCommand(rr kmsg.IncrementalAlterConfigsRequestResource) (*cluster.AlterTopicConfigs, error) {
	cmd := &cluster.AlterTopicConfigs{Name: rr.ResourceName, Set: map[string]string{}}
	current := func(name string) []string {
		if v, ok := cmd.Set[name]; ok {
			return splitList(v)
		}
		if t, ok := b.meta.State().Topic(rr.ResourceName); ok {
			if v, ok := t.Configs[name]; ok {
				return splitList(v)
			}
		}
		if def, ok := lookupTopicConfig(name); ok {
			return splitList(def.def(&b.cfg))
		}
		return nil
	}
	for _, c := range rr.Configs {
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return nil, &configError{key: c.Name, msg: "SET needs a value"}
			}
			cmd.Set[c.Name] = *c.Value
			cmd.Delete = slices.DeleteFunc(cmd.Delete, func(k string) bool { return k == c.Name })
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(cmd.Set, c.Name)
			cmd.Delete = append(cmd.Delete, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			def, ok := lookupTopicConfig(c.Name)
			if !ok || def.typ != kmsg.ConfigTypeList {
				return nil, &configError{key: c.Name, msg: "APPEND and SUBTRACT apply only to list configs"}
			}
			vals := current(c.Name)
			for _, v := range splitList(deref(c.Value)) {
				i := slices.Index(vals, v)
				if c.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0 {
					vals = append(vals, v)
				} else if c.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0 {
					vals = slices.Delete(vals, i, i+1)
				}
			}
			cmd.Set[c.Name] = strings.Join(vals, ",")
		default:
			return nil, &configError{key: c.Name, msg: "unknown operation"}
		}
	}
	return cmd, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
