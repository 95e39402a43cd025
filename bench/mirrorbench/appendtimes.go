package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/internal/recordbatch"
)

// span is one source batch: its offsets [first, last] and the append time
// the source broker stamped on it (LogAppendTime, ms), which every record
// of the batch reads as its timestamp.
type span struct {
	first, last int64
	appendedMs  int64
}

// appendTimes are a topic's batches per partition, in offset order.
type appendTimes map[int32][]span

// of is the source append time (ms) of partition p's record at offset.
func (a appendTimes) of(p int32, offset int64) (int64, bool) {
	s := a[p]
	i := sort.Search(len(s), func(i int) bool { return s[i].last >= offset })
	if i == len(s) || s[i].first > offset {
		return 0, false
	}
	return s[i].appendedMs, true
}

// readAppendTimes reads topic on the source from offset 0 to ends
// (exclusive, per partition) with raw Fetch requests and keeps each
// batch's header only: after a latency phase, this joins every record
// seen on the target with its append time on the source without
// decoding millions of records, and without a reader on the source while
// the phase was timed.
func readAppendTimes(ctx context.Context, seeds []string, topic string, ends map[int32]int64) (appendTimes, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return nil, err
	}
	if err := td.Error(); err != nil {
		return nil, err
	}
	id := td[topic].ID
	out := appendTimes{}
	next := map[int32]int64{} // a partition not read yet starts at 0
	for {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxBytes, req.MinBytes, req.SessionEpoch = -1, 64<<20, 1, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		for p, end := range ends {
			if next[p] >= end {
				continue
			}
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, next[p], 16<<20
			rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) == 0 {
			return out, nil
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, fmt.Errorf("reading %s's append times: %w", topic, err)
		}
		progressed := false
		for _, t := range resp.Topics {
			for _, rp := range t.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return nil, fmt.Errorf("reading %s/%d's append times: %w", topic, rp.Partition, err)
				}
				var bad error
				recordbatch.EachHeader(rp.RecordBatches, func(h recordbatch.Header) {
					switch {
					case bad != nil:
					case h.Magic != 2:
						bad = fmt.Errorf("%s/%d@%d: record batch magic %d, want 2", topic, rp.Partition, h.BaseOffset, h.Magic)
					case !h.LogAppendTime():
						bad = fmt.Errorf("%s/%d@%d: a batch with create time; the topic must use LogAppendTime", topic, rp.Partition, h.BaseOffset)
					case h.LastOffset >= next[rp.Partition]:
						out[rp.Partition] = append(out[rp.Partition], span{first: h.BaseOffset, last: h.LastOffset, appendedMs: h.MaxTimestamp})
						next[rp.Partition] = h.LastOffset + 1
						progressed = true
					}
				})
				if bad != nil {
					return nil, bad
				}
			}
		}
		if !progressed {
			return nil, fmt.Errorf("reading %s's append times: no progress at %v (ends %v)", topic, next, ends)
		}
	}
}
