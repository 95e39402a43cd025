package failover

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/mirror"
	"github.com/kdr-io/kdr/mirror/naming"
)

// Promote is an unplanned failover (promote --force) to cluster to, for
// when the active cluster is unreachable: it records what to had received,
// makes it active at the next epoch, and fences the old primary now if it
// answers, else whenever it comes back (EnsureFenced).
func Promote(ctx context.Context, opts Options, to string) (*Result, error) {
	return execute(ctx, opts, KindPromote, to)
}

func promoteSteps() []step {
	return []step{
		{"preflight-standby", (*opRun).preflightStandby},
		{"record-last-received", (*opRun).recordLastReceived},
		{"promote", (*opRun).promoteForce},
		{"fence-when-reachable", (*opRun).fenceWhenReachable},
	}
}

// lastReceived is State.LastReceived: what the standby held of each
// mirrored partition when it was promoted by force.
type lastReceived struct {
	ID         string     `json:"id"`
	From       string     `json:"from"` // the old primary
	To         string     `json:"to"`   // the promoted standby
	Epoch      int64      `json:"epoch"`
	At         time.Time  `json:"at"`
	Partitions []lastPart `json:"partitions"`
}

// lastPart is one mirrored partition at the promotion.
type lastPart struct {
	Topic       string `json:"topic"`        // on the old primary
	RemoteTopic string `json:"remote_topic"` // on the standby
	Partition   int32  `json:"partition"`
	// StandbyEnd is the remote partition's end offset on the standby.
	StandbyEnd int64 `json:"standby_end"`
	// Upstream is the old primary's offset the copy covers (the flow's
	// committed position), -1 when the old primary did not answer.
	Upstream int64 `json:"upstream"`
}

// flat is Result.LastReceived: Upstream where known, else StandbyEnd.
func (l *lastReceived) flat() map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	for _, p := range l.Partitions {
		if out[p.Topic] == nil {
			out[p.Topic] = map[int32]int64{}
		}
		v := p.Upstream
		if v < 0 {
			v = p.StandbyEnd
		}
		out[p.Topic][p.Partition] = v
	}
	return out
}

func decodeLastReceived(raw json.RawMessage) (*lastReceived, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var l lastReceived
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("failover: the state's last_received is not readable: %w", err)
	}
	return &l, nil
}

func (o *opRun) preflightStandby(ctx context.Context) (stepOut, error) {
	s := o.cl.probe(ctx, o.to)
	if !s.Reachable {
		return stepOut{}, fmt.Errorf("the standby %s (%s) is unreachable too: %s", o.to, bootstrapString(o.opts.Topology, o.to), s.Error)
	}
	msg := fmt.Sprintf("%s reachable, %d/%d brokers", o.to, s.BrokersUp(), s.BrokersExpected)
	answer := []string{o.to}
	if from := o.cl.probe(ctx, o.from); from.Reachable {
		msg += fmt.Sprintf("; %s answers too (a planned switchover would lose nothing)", o.from)
		answer = append(answer, o.from)
	} else {
		msg += fmt.Sprintf("; %s unreachable", o.from)
	}
	note, err := o.fixEpoch(ctx, answer...)
	if err != nil {
		return stepOut{}, err
	}
	if note != "" {
		msg += "; " + note
	}
	return stepOut{msg: msg}, nil
}

// recordLastReceived records, per mirrored partition, the standby's end
// offset and (when the old primary answers) the flow's committed position
// there.
func (o *opRun) recordLastReceived(ctx context.Context) (stepOut, error) {
	f := o.pat.Flow(o.from)
	toAdm, err := o.cl.admin(o.to)
	if err != nil {
		return stepOut{}, err
	}
	parts, err := standbyEnds(ctx, toAdm, f)
	if err != nil {
		return stepOut{}, err
	}
	known := "standby end offsets only (the old primary is unreachable; failback resolves the rest from the records)"
	if o.cl.reachable(ctx, o.from) == nil {
		fromAdm, err := o.cl.admin(o.from)
		if err == nil {
			qctx, cancel := context.WithTimeout(ctx, probeTimeout)
			lags, lerr := flowLag(qctx, fromAdm, f)
			cancel()
			if lerr == nil {
				for i, p := range parts {
					for _, l := range lags {
						if l.Topic == p.Topic && l.Partition == p.Partition {
							parts[i].Upstream = max(l.Committed, l.Start)
						}
					}
				}
				known = "standby end offsets and the flow's committed positions on " + o.from
			}
		}
	}
	lr := &lastReceived{ID: o.id, From: o.from, To: o.to, Epoch: o.epoch(), At: time.Now().UTC(), Partitions: parts}
	raw, err := json.Marshal(lr)
	if err != nil {
		return stepOut{}, err
	}
	// What an earlier forced promotion recorded, for an abort to put
	// back: a failback from it still needs it.
	if ok, _ := o.getData(dataPreviousLastReceived, new(json.RawMessage)); !ok {
		o.setData(dataPreviousLastReceived, o.state.LastReceived)
	}
	o.res.LastReceived = lr.flat()
	return stepOut{msg: fmt.Sprintf("recorded %d partitions: %s", len(parts), known),
		apply: func(st *store.State) { st.LastReceived = raw }}, nil
}

// standbyEnds lists the remote partitions of f on its target with their
// end offsets.
func standbyEnds(ctx context.Context, adm *kadm.Client, f mirror.Flow) ([]lastPart, error) {
	policy := f.Policy()
	filter, err := naming.NewFilter(f.Topics, f.TopicsExclude)
	if err != nil {
		return nil, err
	}
	td, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics of %s: %w", f.TargetAlias, err)
	}
	remote := map[string]string{} // remote → upstream name
	for _, t := range td.Sorted() {
		if t.Err != nil || t.IsInternal || policy.IsInternal(t.Topic) || naming.IsHeartbeats(policy, t.Topic) {
			continue
		}
		up := t.Topic
		if f.Naming != mirror.NamingIdentity {
			alias, ok := policy.SourceAlias(t.Topic)
			if !ok || alias != f.SourceAlias {
				continue
			}
			u, can := policy.(interface{ UpstreamTopic(string) (string, bool) })
			if !can {
				continue
			}
			if up, ok = u.UpstreamTopic(t.Topic); !ok {
				continue
			}
		}
		if filter.Match(up) {
			remote[t.Topic] = up
		}
	}
	if len(remote) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(remote))
	for r := range remote {
		names = append(names, r)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("end offsets on %s: %w", f.TargetAlias, err)
	}
	var out []lastPart
	var errs []error
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			errs = append(errs, fmt.Errorf("%s[%d] on %s: %w", e.Topic, e.Partition, f.TargetAlias, e.Err))
			return
		}
		out = append(out, lastPart{Topic: remote[e.Topic], RemoteTopic: e.Topic, Partition: e.Partition, StandbyEnd: e.Offset, Upstream: -1})
	})
	slices.SortFunc(out, func(a, b lastPart) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out, errors.Join(errs...)
}

// promoteForce is the switchover's promote plus: the promoted cluster's
// consumer offsets are authoritative (the checkpointer kept them synced).
func (o *opRun) promoteForce(ctx context.Context) (stepOut, error) {
	out, err := o.promoteStep(ctx)
	if err != nil {
		return out, err
	}
	apply := out.apply
	out.apply = func(st *store.State) {
		apply(st)
		st.ConsumerOffsets = o.to
	}
	return out, nil
}

// fenceWhenReachable fences the old primary once, now, if it answers;
// otherwise the fence is pending until EnsureFenced sees it back.
func (o *opRun) fenceWhenReachable(ctx context.Context) (stepOut, error) {
	if err := o.cl.reachable(ctx, o.from); err != nil {
		return stepOut{msg: fmt.Sprintf("fence of %s pending: %v; kdr up (or any kdr failover command) fences it when it is back", o.from, err), skipped: true}, nil
	}
	adm, err := o.cl.admin(o.from)
	if err != nil {
		return stepOut{}, err
	}
	epoch := o.state.Epoch
	err = withTimeout(ctx, o.opts.Fence, "fencing "+o.from, func(ctx context.Context) error {
		return setFence(ctx, adm, true, epoch, fmt.Sprintf("promote %s to %s", o.id, o.to))
	})
	switch {
	case errors.Is(err, errFenceUnsupported):
		return stepOut{msg: fmt.Sprintf("fencing skipped on %s: discovery-based only", o.from), skipped: true}, nil
	case err != nil:
		return stepOut{msg: fmt.Sprintf("fence of %s pending: %v", o.from, err), skipped: true}, nil
	}
	return stepOut{msg: fmt.Sprintf("%s fenced at epoch %d", o.from, epoch)}, nil
}
