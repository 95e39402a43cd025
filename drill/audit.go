package drill

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/failover/client"
	"github.com/kdr-io/kdr/internal/checker"
)

// auditRecord is a workload record found in a cluster's log.
type auditRecord struct {
	ID        string
	Topic     string
	Partition int32
	Offset    int64
}

// readLog reads, without a group, every partition of the load topic and
// its remote copies (<alias>.<topic>) on cluster from the offsets from
// gives (the log start where absent) up to the end offsets at the start of
// the call, and returns the workload records found.
func readLog(ctx context.Context, cl *client.Client, cluster, topic string, from map[string]map[int32]int64) ([]auditRecord, error) {
	k, err := cl.KafkaClient(cluster, clientOpts()...)
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(k)
	topics, err := adm.ListTopics(ctx)
	if err == nil {
		err = topics.Error()
	}
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("drill: listing topics of %s: %w", cluster, err)
	}
	re := regexp.MustCompile(`^(.*\.)?` + regexp.QuoteMeta(topic) + `$`)
	var names []string
	for _, t := range topics.Names() {
		if re.MatchString(t) {
			names = append(names, t)
		}
	}
	if len(names) == 0 {
		k.Close()
		return nil, nil
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("drill: end offsets on %s: %w", cluster, err)
	}
	k.Close()
	assign := map[string]map[int32]kgo.Offset{}
	remaining := 0
	want := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		start := int64(-1)
		if f, ok := from[o.Topic][o.Partition]; ok {
			start = f
		}
		if start >= o.Offset {
			return
		}
		off := kgo.NewOffset().AtStart()
		if start >= 0 {
			off = kgo.NewOffset().At(start)
		}
		if assign[o.Topic] == nil {
			assign[o.Topic], want[o.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
		}
		assign[o.Topic][o.Partition] = off
		want[o.Topic][o.Partition] = o.Offset
		remaining++
	})
	if remaining == 0 {
		return nil, nil
	}
	r, err := cl.KafkaClient(cluster, append(clientOpts(), kgo.ConsumePartitions(assign), kgo.FetchMaxWait(200*time.Millisecond))...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []auditRecord
	for remaining > 0 {
		fs := r.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, fmt.Errorf("drill: reading %s on %s: %d partitions not read to the end: %w", topic, cluster, remaining, ctx.Err())
		}
		fs.EachRecord(func(rec *kgo.Record) {
			end, ok := want[rec.Topic][rec.Partition]
			if !ok || rec.Offset >= end {
				return
			}
			if _, id, ok := checker.DecodeValue(rec.Key, rec.Value); ok {
				out = append(out, auditRecord{ID: id, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset})
			}
			if rec.Offset == end-1 {
				delete(want[rec.Topic], rec.Partition)
				remaining--
			}
		})
	}
	return out, nil
}
