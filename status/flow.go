package status

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kdr-io/kdr/mirror/naming"
	"github.com/kdr-io/kdr/topology"
)

// gatherFlow reports on one flow through its source cluster (src is nil or
// has no metadata when the source did not answer).
func gatherFlow(ctx context.Context, spec topology.FlowSpec, src *probed, opts Options) (out Flow) {
	f := spec.Flow
	out = Flow{Name: f.Name(), Source: f.SourceAlias, Target: f.TargetAlias, State: FlowUnknown, LagRecords: -1}
	latency := make(chan *float64, 1)
	go func() { latency <- p99(ctx, opts, f.Name()) }()
	defer func() { out.ReplicationLatencyP99Seconds = <-latency }()

	if src == nil || src.meta == nil {
		out.Error = fmt.Sprintf("source cluster %s unreachable", f.SourceAlias)
		return out
	}
	adm := kadm.NewClient(src.client)
	groups, err := adm.DescribeGroups(ctx, f.Group())
	if err == nil {
		err = groups.Error()
	}
	if err != nil {
		out.Error = fmt.Sprintf("describing workers group %s: %v", f.Group(), err)
		return out
	}
	out.Workers = len(groups[f.Group()].Members)
	topics, err := mirroredTopics(spec, src)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	names := make([]string, 0, len(src.meta.Topics))
	for _, t := range src.meta.Topics {
		if t.Topic != nil {
			names = append(names, *t.Topic)
		}
	}
	out.State = topology.FlowWorkersState(f, out.Workers, names)
	out.Healthy = out.State != FlowStopped

	lag, err := FlowLag(ctx, adm, f.Group(), topics)
	if err != nil {
		out.Error = "lag: " + err.Error()
		return out
	}
	out.LagRecords = lag
	return out
}

// mirroredTopics are the source topics the flow copies, by its filter,
// without internal topics.
func mirroredTopics(spec topology.FlowSpec, src *probed) ([]string, error) {
	f := spec.Flow
	filter, err := naming.NewFilter(f.Topics, f.TopicsExclude)
	if err != nil {
		return nil, err
	}
	policy := f.Policy()
	var out []string
	for _, t := range src.meta.Topics {
		if t.Topic == nil || t.IsInternal {
			continue
		}
		name := *t.Topic
		if strings.HasPrefix(name, "__") || policy.IsInternal(name) || !filter.Match(name) {
			continue
		}
		out = append(out, name)
	}
	return out, nil
}

// FlowLag sums, over the partitions of topics, the high watermark minus
// group's committed offset (or the log start offset when none): a mirror
// flow's lag in records when group is its workers' group. A partition whose
// end offset cannot be read is reported in the error and left out.
func FlowLag(ctx context.Context, adm *kadm.Client, group string, topics []string) (int64, error) {
	if len(topics) == 0 {
		return 0, nil
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return -1, err
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return -1, err
	}
	// A group that never committed answers with no offsets, not an error.
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return -1, err
	}
	var lag int64
	var errs []error
	ends.Each(func(end kadm.ListedOffset) {
		if end.Err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", end.Topic, end.Partition, end.Err))
			return
		}
		from := int64(-1)
		if c, ok := committed.Lookup(end.Topic, end.Partition); ok && c.Err == nil && c.At >= 0 {
			from = c.At
		} else if s, ok := starts.Lookup(end.Topic, end.Partition); ok && s.Err == nil {
			from = s.Offset
		}
		if from >= 0 && end.Offset > from {
			lag += end.Offset - from
		}
	})
	return lag, errors.Join(errs...)
}
