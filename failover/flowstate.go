package failover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/mirror"
	"github.com/kdr-io/kdr/mirror/naming"
)

// partLag is one mirrored source partition: its log start and end (high
// watermark) and the flow's committed position (-1: none).
type partLag struct {
	Topic     string
	Partition int32
	Start     int64
	End       int64
	Committed int64
}

// lag is how many records of the partition the flow has not copied.
func (p partLag) lag() int64 {
	from := p.Committed
	if from < 0 {
		from = p.Start
	}
	return max(0, p.End-from)
}

// mirroredTopics are the data topics on the flow's source that the flow
// copies, by the mirror's own rules (heartbeats topics are left out: they
// are the mirror's, and another flow may keep writing them).
func mirroredTopics(ctx context.Context, adm *kadm.Client, f mirror.Flow) ([]string, error) {
	filter, err := naming.NewFilter(f.Topics, f.TopicsExclude)
	if err != nil {
		return nil, err
	}
	rules := naming.Rules{Policy: f.Policy(), Topics: filter}
	td, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics of %s: %w", f.SourceAlias, err)
	}
	var out []string
	for _, t := range td.Sorted() {
		if t.Err != nil || t.IsInternal {
			continue
		}
		if ok, _ := rules.ShouldReplicate(f.SourceAlias, f.TargetAlias, t.Topic); !ok || naming.IsHeartbeats(f.Policy(), t.Topic) {
			continue
		}
		out = append(out, t.Topic)
	}
	return out, nil
}

// flowLag reports every mirrored partition of f on its source.
func flowLag(ctx context.Context, adm *kadm.Client, f mirror.Flow) ([]partLag, error) {
	topics, err := mirroredTopics(ctx, adm, f)
	if err != nil || len(topics) == 0 {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("end offsets on %s: %w", f.SourceAlias, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("start offsets on %s: %w", f.SourceAlias, err)
	}
	committed, err := adm.FetchOffsets(ctx, f.Group())
	if err != nil {
		return nil, fmt.Errorf("committed offsets of %s on %s: %w", f.Group(), f.SourceAlias, err)
	}
	var out []partLag
	var errs []error
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", e.Topic, e.Partition, e.Err))
			return
		}
		p := partLag{Topic: e.Topic, Partition: e.Partition, End: e.Offset, Committed: -1}
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok && s.Err == nil {
			p.Start = s.Offset
		}
		if c, ok := committed.Lookup(e.Topic, e.Partition); ok && c.Err == nil && c.At >= 0 {
			p.Committed = c.At
		}
		out = append(out, p)
	})
	slices.SortFunc(out, func(a, b partLag) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out, errors.Join(errs...)
}

// totalLag sums the partitions' lag.
func totalLag(parts []partLag) int64 {
	var n int64
	for _, p := range parts {
		n += p.lag()
	}
	return n
}

// oldestUnmirrored is the timestamp of the oldest record the flow has not
// copied yet (zero when it is caught up), read from the source with a
// short-lived consumer bounded by ctx.
func (c *clusters) oldestUnmirrored(ctx context.Context, source string, parts []partLag) (time.Time, error) {
	offsets := map[string]map[int32]kgo.Offset{}
	want := 0
	for _, p := range parts {
		if p.lag() == 0 {
			continue
		}
		from := p.Committed
		if from < 0 {
			from = p.Start
		}
		if offsets[p.Topic] == nil {
			offsets[p.Topic] = map[int32]kgo.Offset{}
		}
		offsets[p.Topic][p.Partition] = kgo.NewOffset().At(from)
		want++
	}
	if want == 0 {
		return time.Time{}, nil
	}
	cl, err := c.newClient(source, kgo.ConsumePartitions(offsets))
	if err != nil {
		return time.Time{}, err
	}
	defer cl.Close()
	seen := map[string]bool{}
	var oldest time.Time
	for len(seen) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return oldest, ctx.Err()
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
			if seen[k] {
				return
			}
			seen[k] = true
			if oldest.IsZero() || r.Timestamp.Before(oldest) {
				oldest = r.Timestamp
			}
		})
	}
	return oldest, nil
}
