package topology

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Apply plans t (see Plan) and performs the plan (see ApplyPlan).
func Apply(ctx context.Context, t *Topology, opts PlanOptions) (*PlanResult, error) {
	plan, err := Plan(ctx, t, opts)
	if err != nil {
		return nil, err
	}
	return ApplyPlan(ctx, t, plan, opts)
}

// ApplyPlan performs the create, grow and configure changes of plan, in
// order, on t's clusters, and returns those it made. Start-flow and
// unchanged entries are skipped: flows are started by kdr up or kdr
// mirror run. Every step is idempotent: a topic that already exists, or
// already has the partitions, counts as done, and configs are set with
// incremental alter configs, leaving the topic's other configs alone. A
// failed step does not stop the others; the error joins every failure,
// each naming its cluster and topic.
func ApplyPlan(ctx context.Context, t *Topology, plan *PlanResult, opts PlanOptions) (*PlanResult, error) {
	cs := newConns(t, opts)
	defer cs.close()
	done := &PlanResult{Topology: plan.Topology, Changes: []Change{}}
	var errs []error
	for _, c := range plan.Changes {
		var err error
		switch c.Action {
		case ActionCreate:
			err = applyCreate(ctx, cs, c)
		case ActionGrow:
			err = applyGrow(ctx, cs, c)
		case ActionConfigure:
			err = applyConfigure(ctx, cs, c)
		default:
			continue
		}
		if opts.Progress != nil {
			opts.Progress(c, err)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		done.Changes = append(done.Changes, c)
	}
	return done, errors.Join(errs...)
}

// StepError is one change ApplyPlan could not make.
type StepError struct {
	Change Change
	Err    error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s topic %s/%s: %v", e.Change.Action, e.Change.Cluster, e.Change.Topic, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

func applyCreate(ctx context.Context, cs *conns, c Change) error {
	cn, err := cs.get(ctx, c.Cluster)
	if err != nil {
		return &StepError{Change: c, Err: err}
	}
	configs := map[string]*string{}
	for _, k := range slices.Sorted(maps.Keys(c.Detail.Configs)) {
		configs[k] = kadm.StringPtr(c.Detail.Configs[k])
	}
	var resps kadm.CreateTopicResponses
	err = cn.do(ctx, "creating topic "+c.Topic, func(ctx context.Context) (err error) {
		resps, err = cn.adm.CreateTopics(ctx, c.Detail.Partitions, c.Detail.ReplicationFactor, configs, c.Topic)
		return err
	})
	if err == nil {
		r, ok := resps[c.Topic]
		switch {
		case !ok:
			err = fmt.Errorf("the answer does not mention the topic")
		case errors.Is(r.Err, kerr.TopicAlreadyExists):
			// Made since the plan (by a worker of the flow): done.
		case r.Err != nil:
			err = kafkaErr(r.Err, r.ErrMessage)
		}
	}
	if err != nil {
		return &StepError{Change: c, Err: err}
	}
	return nil
}

func applyGrow(ctx context.Context, cs *conns, c Change) error {
	cn, err := cs.get(ctx, c.Cluster)
	if err != nil {
		return &StepError{Change: c, Err: err}
	}
	var resps kadm.CreatePartitionsResponses
	err = cn.do(ctx, "adding partitions to "+c.Topic, func(ctx context.Context) (err error) {
		resps, err = cn.adm.UpdatePartitions(ctx, int(c.Detail.Partitions), c.Topic)
		return err
	})
	if err == nil {
		r, ok := resps[c.Topic]
		switch {
		case !ok:
			err = fmt.Errorf("the answer does not mention the topic")
		case r.Err != nil:
			err = kafkaErr(r.Err, r.ErrMessage)
		}
	}
	if errors.Is(err, kerr.InvalidPartitions) {
		// Already grown since the plan (by a worker of the flow)? Then done.
		if n, lerr := partitionCount(ctx, cn, c.Topic); lerr == nil && n >= c.Detail.Partitions {
			err = nil
		}
	}
	if err != nil {
		return &StepError{Change: c, Err: err}
	}
	return nil
}

func partitionCount(ctx context.Context, cn *conn, topic string) (int32, error) {
	var tds kadm.TopicDetails
	err := cn.do(ctx, "reading topic "+topic, func(ctx context.Context) (err error) {
		tds, err = cn.adm.ListTopics(ctx, topic)
		return err
	})
	if err != nil {
		return 0, err
	}
	td, ok := tds[topic]
	if !ok || td.Err != nil {
		return 0, fmt.Errorf("topic %s not found", topic)
	}
	return int32(len(td.Partitions)), nil
}

func applyConfigure(ctx context.Context, cs *conns, c Change) error {
	cn, err := cs.get(ctx, c.Cluster)
	if err != nil {
		return &StepError{Change: c, Err: err}
	}
	alters := make([]kadm.AlterConfig, len(c.Detail.ConfigChanges))
	for i, cc := range c.Detail.ConfigChanges {
		alters[i] = kadm.AlterConfig{Op: kadm.SetConfig, Name: cc.Key, Value: kadm.StringPtr(cc.New)}
	}
	var resps kadm.AlterConfigsResponses
	err = cn.do(ctx, "setting configs of "+c.Topic, func(ctx context.Context) (err error) {
		resps, err = cn.adm.AlterTopicConfigs(ctx, alters, c.Topic)
		return err
	})
	if err == nil {
		var r kadm.AlterConfigsResponse
		if r, err = resps.On(c.Topic, nil); err == nil && r.Err != nil {
			err = kafkaErr(r.Err, r.ErrMessage)
		}
	}
	if err != nil {
		return &StepError{Change: c, Err: err}
	}
	return nil
}

// kafkaErr adds the broker's message to a Kafka error, if it says more.
func kafkaErr(err error, msg string) error {
	if msg == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, msg)
}
