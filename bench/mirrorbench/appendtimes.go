package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// Record batch v2 header: the fields read here and its length.
const (
	batchOffBase     = 0  // int64 base offset
	batchOffLength   = 8  // int32 length of what follows this field
	batchOffMagic    = 16 // int8
	batchOffAttrs    = 21 // int16
	batchOffLastDlt  = 23 // int32 last offset delta
	batchOffMaxTs    = 35 // int64 max timestamp (the append time under LogAppendTime)
	batchHeaderBytes = 61
)

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
	next := map[int32]int64{}
	for p := range ends {
		next[p] = 0
	}
	for {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxBytes, req.MinBytes, req.SessionEpoch = -1, 64<<20, 1, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		for p, off := range next {
			if off >= ends[p] {
				continue
			}
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, 16<<20
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
				b := rp.RecordBatches
				for len(b) >= batchHeaderBytes {
					size := int(int32(binary.BigEndian.Uint32(b[batchOffLength:]))) + batchOffLength + 4
					if size < batchHeaderBytes || size > len(b) {
						break // a batch cut short at the answer's size limit
					}
					if b[batchOffMagic] != 2 {
						return nil, fmt.Errorf("%s/%d: record batch magic %d, want 2", topic, rp.Partition, b[batchOffMagic])
					}
					base := int64(binary.BigEndian.Uint64(b[batchOffBase:]))
					last := base + int64(int32(binary.BigEndian.Uint32(b[batchOffLastDlt:])))
					if binary.BigEndian.Uint16(b[batchOffAttrs:])&0b1000 == 0 {
						return nil, fmt.Errorf("%s/%d@%d: a batch with create time; the topic must use LogAppendTime", topic, rp.Partition, base)
					}
					if last >= next[rp.Partition] {
						out[rp.Partition] = append(out[rp.Partition], span{first: base, last: last,
							appendedMs: int64(binary.BigEndian.Uint64(b[batchOffMaxTs:]))})
						next[rp.Partition] = last + 1
						progressed = true
					}
					b = b[size:]
				}
			}
		}
		if !progressed {
			return nil, fmt.Errorf("reading %s's append times: no progress at %v (ends %v)", topic, next, ends)
		}
	}
}
