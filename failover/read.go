package failover

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readRange calls fn for every record of topic/partition on cluster from
// offset from up to (not including) to, in order, until fn returns false.
// It returns once the partition's high watermark is reached even if to
// lies beyond it (gaps at the end of a log, or a smaller log).
func (c *clusters) readRange(ctx context.Context, cluster, topic string, partition int32, from, to int64, fn func(*kgo.Record) bool) error {
	if from >= to {
		return nil
	}
	cl, err := c.newClient(cluster, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {partition: kgo.NewOffset().At(from)}}), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	next := from
	for next < to {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("reading %s[%d] on %s at offset %d: %w", topic, partition, cluster, next, ctx.Err())
		}
		var ferr error
		hwm := int64(-1)
		stop := false
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Err != nil && ferr == nil {
				ferr = p.Err
			}
			hwm = max(hwm, p.HighWatermark)
			for _, r := range p.Records {
				if stop || r.Offset < next {
					continue
				}
				if r.Offset >= to {
					stop = true
					continue
				}
				next = r.Offset + 1
				if !fn(r) {
					stop = true
				}
			}
		})
		if ferr != nil {
			if isRetriable(ferr) {
				continue
			}
			return fmt.Errorf("reading %s[%d] on %s: %w", topic, partition, cluster, ferr)
		}
		if stop || (hwm >= 0 && next >= hwm) {
			return nil
		}
		if fs.Empty() && hwm < 0 {
			// Nothing came back in time: ask where the log ends.
			end, err := c.endOffset(ctx, cluster, topic, partition)
			if err != nil {
				return err
			}
			if next >= end {
				return nil
			}
		}
	}
	return nil
}

// endOffset is the partition's high watermark.
func (c *clusters) endOffset(ctx context.Context, cluster, topic string, partition int32) (int64, error) {
	adm, err := c.admin(cluster)
	if err != nil {
		return 0, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	o, ok := ends.Lookup(topic, partition)
	if !ok || o.Err != nil {
		return 0, fmt.Errorf("end offset of %s[%d] on %s: %v", topic, partition, cluster, o.Err)
	}
	return o.Offset, nil
}

// isRetriable reports a Kafka error a consumer retries.
func isRetriable(err error) bool { return kerr.IsRetriable(err) }
