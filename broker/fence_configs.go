package broker

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/cluster"
)

// The write fence is set as kdr's only dynamic broker configs, on the
// cluster-wide broker resource (name "", Kafka's dynamic cluster default,
// kafka-configs --entity-type brokers --entity-default), so any Kafka admin
// tool can fence and unfence:
//
//	kdr.fenced        true | false
//	kdr.fence.epoch   the failover's fencing epoch (int64 ≥ 0); required
//	                  with every change, never below the cluster's
//	kdr.fence.reason  free text, shown to refused producers
//
// Every change must carry kdr.fence.epoch, so an orchestrator that lost
// track of a newer failover cannot lift (or re-set) the fence by omitting
// it.

// fenceOp is one requested change of a fence key: SET with Value, or
// DELETE (back to the default). APPEND and SUBTRACT are refused.
type fenceOp struct {
	name  string
	op    kmsg.IncrementalAlterConfigOp
	value *string
}

// alterFence validates ops on the broker resource name and, unless
// validateOnly, proposes the new fence. With replace (the legacy AlterConfigs
// API) keys not given go back to their defaults.
func (b *Broker) alterFence(ctx context.Context, name string, ops []fenceOp, replace, validateOnly bool) error {
	for _, o := range ops {
		if !isFenceKey(o.name) {
			return &cluster.Error{Code: kerr.InvalidRequest, Message: fmt.Sprintf(
				"broker config %s is not dynamic in kdr: change the broker's flags or topology file and restart it "+
					"(the only dynamic broker configs are %s, %s and %s, on the cluster-wide resource \"\")",
				o.name, configFenced, configFenceEpoch, configFenceReason)}
		}
	}
	if name != "" {
		return &cluster.Error{Code: kerr.InvalidRequest, Message: fmt.Sprintf(
			"broker %s: %s, %s and %s are cluster-wide: alter them on the cluster-wide broker resource \"\" (kafka-configs --entity-default)",
			name, configFenced, configFenceEpoch, configFenceReason)}
	}
	if len(ops) == 0 && !replace {
		return nil
	}
	st := b.meta.State()
	cmd := &cluster.SetFence{Fenced: st.Fence.Fenced, Reason: st.Fence.Reason}
	if replace {
		cmd.Fenced, cmd.Reason = false, ""
	}
	epochSet := false
	for _, o := range ops {
		switch o.op {
		case kmsg.IncrementalAlterConfigOpSet:
			if o.value == nil {
				return &configError{key: o.name, msg: "SET needs a value"}
			}
			v := *o.value
			switch o.name {
			case configFenced:
				switch {
				case strings.EqualFold(v, "true"):
					cmd.Fenced = true
				case strings.EqualFold(v, "false"):
					cmd.Fenced = false
				default:
					return &configError{key: o.name, msg: fmt.Sprintf("%q is not true or false", v)}
				}
			case configFenceEpoch:
				e, err := strconv.ParseInt(v, 10, 64)
				if err != nil || e < 0 {
					return &configError{key: o.name, msg: fmt.Sprintf("%q is not a non-negative 64-bit integer", v)}
				}
				cmd.Epoch, epochSet = e, true
			case configFenceReason:
				cmd.Reason = v
			}
		case kmsg.IncrementalAlterConfigOpDelete:
			switch o.name {
			case configFenced:
				cmd.Fenced = false
			case configFenceReason:
				cmd.Reason = ""
			case configFenceEpoch:
				return &configError{key: o.name, msg: "cannot be deleted: the fencing epoch only grows"}
			}
		default:
			return &configError{key: o.name, msg: "APPEND and SUBTRACT apply only to list configs"}
		}
	}
	if !epochSet {
		return &configError{key: configFenceEpoch, msg: fmt.Sprintf(
			"required with every fence change (the cluster's fence epoch is %d), so that an orchestrator of an older failover cannot override a newer one", st.Fence.Epoch)}
	}
	if err := cmd.Check(st); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if _, err := b.meta.Propose(ctx, cmd); err != nil {
		return err
	}
	b.log.Info("write fence changed by request", "fenced", cmd.Fenced, "fence_epoch", cmd.Epoch, "reason", cmd.Reason)
	return nil
}

func isFenceKey(name string) bool {
	return name == configFenced || name == configFenceEpoch || name == configFenceReason
}

// fenceConfigEntries describes the fence keys as this broker enforces them:
// DYNAMIC_DEFAULT_BROKER_CONFIG once a fence was ever set, the defaults
// (unfenced, epoch 0) before.
func (b *Broker) fenceConfigEntries(want func(string) bool) []kmsg.DescribeConfigsResponseResourceConfig {
	f := b.currentFence()
	source, isDefault := kmsg.ConfigSourceDynamicDefaultBrokerConfig, false
	if f == (cluster.Fence{}) {
		source, isDefault = kmsg.ConfigSourceDefaultConfig, true
	}
	all := []struct {
		name, value, doc string
		typ              kmsg.ConfigType
	}{
		{configFenced, strconv.FormatBool(f.Fenced), "true while the cluster refuses client produce requests because another cluster is active (failover write fence).", kmsg.ConfigTypeBoolean},
		{configFenceEpoch, strconv.FormatInt(f.Epoch, 10), "Fencing epoch of the failover that last changed the fence; a change with a lower epoch is refused.", kmsg.ConfigTypeLong},
		{configFenceReason, f.Reason, "Why the cluster is fenced; refused producers see it.", kmsg.ConfigTypeString},
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, a := range all {
		if !want(a.name) {
			continue
		}
		e := kmsg.NewDescribeConfigsResponseResourceConfig()
		v, doc := a.value, a.doc
		e.Name, e.Value, e.ConfigType, e.Source, e.IsDefault, e.Documentation = a.name, &v, a.typ, source, isDefault, &doc
		syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		syn.Name, syn.Value, syn.Source = a.name, &v, source
		e.ConfigSynonyms = append(e.ConfigSynonyms, syn)
		out = append(out, e)
	}
	return out
}
