package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/group"
	"github.com/kdr-io/kdr/internal/recordbatch"
)

// offsetsLog stores the group coordinator's records in __consumer_offsets
// partitions through the same append path as client produce requests, so
// they are durable, compacted and (with replication) replicated like any
// partition.
type offsetsLog struct{ b *Broker }

var _ group.Log = (*offsetsLog)(nil)

func (o *offsetsLog) leaderPartition(idx int32) (*partition, error) {
	p, ok := o.b.partition(offsetsTopic, idx)
	if !ok {
		return nil, kerr.NotCoordinator
	}
	if leader, _, _ := p.state(); !leader {
		return nil, kerr.NotCoordinator
	}
	return p, nil
}

func (o *offsetsLog) Append(ctx context.Context, idx int32, records []group.Record) error {
	p, err := o.leaderPartition(idx)
	if err != nil {
		return err
	}
	recs := make([]recordbatch.Record, len(records))
	for i, r := range records {
		recs[i] = recordbatch.Record{Key: r.Key, Value: r.Value}
	}
	batch, err := recordbatch.Build(recs, recordbatch.Options{TimestampMs: time.Now().UnixMilli()})
	if err != nil {
		return err
	}
	info, err := o.b.appendAsLeader(p, batch, true)
	if err != nil {
		return err
	}
	// A commit is answered once every ISR member has it (acks=all), so a
	// coordinator failover never forgets an acknowledged commit.
	_, _, settings := p.state()
	return p.waitCommitted(ctx, info.LastOffset, settings.minInsyncReplicas, time.Now().Add(o.b.cfg.OffsetCommitTimeout))
}

func (o *offsetsLog) Replay(idx int32, fn func(group.Record) error) error {
	p, err := o.leaderPartition(idx)
	if err != nil {
		return err
	}
	end := p.log.LogEndOffset()
	var buf []byte
	for off := p.log.LogStartOffset(); off < end; {
		slice, err := p.log.Read(off, 1<<20, end, true)
		if err != nil {
			return err
		}
		buf, err = slice.ReadAll(buf[:0])
		slice.Close()
		if err != nil {
			return err
		}
		next := recordbatch.NextOffset(buf)
		if next < 0 {
			break
		}
		err = recordbatch.Walk(buf, func(d recordbatch.Decoded) error {
			if d.Offset < off {
				return nil // the read starts at the batch holding off
			}
			return fn(group.Record{Key: d.Key, Value: d.Value})
		})
		if err != nil {
			return err
		}
		off = next
	}
	return nil
}
