package mirror

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
)

// sourceConfigs returns, per source topic, the configs to sync: those set
// on the topic itself (not broker defaults, which stay the target's own,
// as MM2's use.defaults.from=target), minus ConfigsExclude and sensitive
// ones. Nil when SyncTopicConfigs is off or the configs cannot be read.
func (w *Worker) sourceConfigs(ctx context.Context, topics []string) map[string]map[string]string {
	if !w.flow.SyncTopicConfigs || len(topics) == 0 {
		return nil
	}
	rcs, err := w.srcAdm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		w.noteErr(KindConfig, fmt.Errorf("describing source topic configs: %w", err))
		return nil
	}
	out := map[string]map[string]string{}
	for _, rc := range rcs {
		if rc.Err != nil {
			continue
		}
		out[rc.Name] = syncedConfigs(rc.Configs, w.excluded)
	}
	return out
}

// syncConfigs reads the remote topics' configs, remembers their
// max.message.bytes, and sets any synced config whose value differs. A
// value the target refuses is reported once and not retried until the
// source's value changes. Configs are only ever set, never deleted: a
// config removed on the source keeps its last value on the target.
func (w *Worker) syncConfigs(ctx context.Context, names, remotes []string, srcCfg map[string]map[string]string) {
	rcs, err := w.tgtAdm.DescribeTopicConfigs(ctx, remotes...)
	if err != nil {
		w.noteErr(KindConfig, fmt.Errorf("describing target topic configs: %w", err))
		return
	}
	byRemote := map[string]map[string]string{}
	for _, rc := range rcs {
		if rc.Err != nil {
			continue
		}
		m := map[string]string{}
		for _, c := range rc.Configs {
			if c.Value != nil {
				m[c.Key] = *c.Value
			}
		}
		byRemote[rc.Name] = m
		if v, err := strconv.ParseInt(m["max.message.bytes"], 10, 32); err == nil && v > 0 {
			w.limits.Store(rc.Name, int32(v))
		}
	}
	for i, name := range names {
		remote, want := remotes[i], srcCfg[name]
		have, ok := byRemote[remote]
		if !ok || len(want) == 0 {
			continue
		}
		for k, v := range want {
			if have[k] == v || w.refusedBefore(name, k, v) {
				continue
			}
			resps, err := w.tgtAdm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)}}, remote)
			if err == nil {
				if r, rerr := resps.On(remote, nil); rerr != nil {
					err = rerr
				} else if r.Err != nil {
					err = kafkaErr(r.Err, r.ErrMessage)
					w.refuse(name, k, v)
				}
			}
			if err != nil {
				w.noteErr(KindConfig, fmt.Errorf("setting %s=%s on %s: %w", k, v, remote, err))
				continue
			}
			w.log.Info("synced topic config", "remote_topic", remote, "config", k, "value", v)
		}
	}
}

func (w *Worker) refusedBefore(topic, key, value string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ts := w.topics[topic]
	if ts == nil {
		return false
	}
	v, ok := ts.cfgFailed[key]
	return ok && v == value
}

func (w *Worker) refuse(topic, key, value string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ts := w.topics[topic]; ts != nil {
		ts.cfgFailed[key] = value
	}
}
