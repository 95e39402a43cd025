package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/storage"
	"github.com/kdr-io/kdr/broker/wire"
)

// fetchPart is one requested partition and where its answer goes.
type fetchPart struct {
	req   *kmsg.FetchRequestTopicPartition
	out   *kmsg.FetchResponseTopicPartition
	p     *partition
	slice *storage.FileSlice // the records to send, read at answer time
	// replica is the fetching follower's broker id, -1 for consumers.
	replica int32
}

// handleFetch serves consumer fetches. kdr does not hand out incremental
// fetch sessions (KIP-227): it answers SessionID 0, which tells clients to
// keep sending full fetch requests, as a broker with a full session cache
// would.
func (b *Broker) handleFetch(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.SessionID != 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}
	st := b.meta.State()
	replicaID := req.ReplicaID
	if req.Version >= 15 {
		replicaID = req.ReplicaState.ID
	}
	var parts []*fetchPart
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		ot := &resp.Topics[i]
		*ot = kmsg.NewFetchResponseTopic()
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		var topicErr *kerr.Error
		if req.Version >= 13 {
			t, ok := st.TopicByID(cluster.TopicID(rt.TopicID))
			if ok {
				ot.Topic = t.Name
			} else {
				topicErr = kerr.UnknownTopicID
			}
		}
		ot.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			op := &ot.Partitions[j]
			*op = kmsg.NewFetchResponseTopicPartition()
			op.Partition = rp.Partition
			op.HighWatermark, op.LastStableOffset, op.LogStartOffset = -1, -1, -1
			// Kafka sends empty, never null, records: librdkafka rejects
			// a null record set as a parse failure.
			op.RecordBatches = []byte{}
			if topicErr != nil {
				op.ErrorCode = topicErr.Code
				continue
			}
			p, ok := b.partition(ot.Topic, rp.Partition)
			if !ok {
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			parts = append(parts, &fetchPart{req: rp, out: op, p: p, replica: replicaID})
		}
	}

	// Register for appends before the first read, so data that lands
	// between the read and the wait still wakes us.
	wake := make(chan struct{}, 1)
	waitMs := req.MaxWaitMillis
	if req.MinBytes > 0 && waitMs > 0 {
		for _, fp := range parts {
			fp.p.addWaiter(wake)
		}
		defer func() {
			for _, fp := range parts {
				fp.p.removeWaiter(wake)
			}
		}()
	}
	deadline := r.Received.Add(time.Duration(waitMs) * time.Millisecond)
	var timer *time.Timer
	for {
		total, anyErr := b.readFetch(parts, req.MaxBytes)
		if total >= int(req.MinBytes) || anyErr || waitMs <= 0 {
			break
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-wake:
		case <-timer.C:
			b.readFetch(parts, req.MaxBytes)
			return b.fetchResponse(resp, parts), nil
		case <-ctx.Done():
			return b.fetchResponse(resp, parts), nil
		}
	}
	return b.fetchResponse(resp, parts), nil
}

// fetchResponse wraps resp so the partitions' file sections are streamed.
func (b *Broker) fetchResponse(resp *kmsg.FetchResponse, parts []*fetchPart) kmsg.Response {
	st := &fetchStream{FetchResponse: resp, marker: b.fetchMarker}
	for _, fp := range parts {
		if fp.slice != nil {
			st.add(fp.out, fp.slice)
			b.metrics.fetched(fp.p.topic, fp.slice.Size())
		}
	}
	if len(st.slices) == 0 {
		return resp
	}
	return st
}

// readFetch fills every partition's answer from its log, within the
// request's and each partition's byte limits. It reports the bytes returned
// and whether any partition answered with an error.
func (b *Broker) readFetch(parts []*fetchPart, maxBytes int32) (total int, anyErr bool) {
	if maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	for _, fp := range parts {
		if fp.slice != nil { // a re-read after a long-poll wake-up
			fp.slice.Close()
			fp.slice = nil
		}
		n, err := b.readPartition(fp, maxBytes-int32(total), total == 0)
		if err != nil {
			fp.out.ErrorCode = b.partitionError("fetch read", fp.p.topic, fp.p.index, err)
			anyErr = true
			continue
		}
		total += n
	}
	return total, anyErr
}

func (b *Broker) readPartition(fp *fetchPart, budget int32, minOne bool) (int, error) {
	leader, epoch, _ := fp.p.state()
	if !leader {
		return 0, kerr.NotLeaderForPartition
	}
	if ce := fp.req.CurrentLeaderEpoch; ce != -1 {
		switch {
		case ce < epoch:
			return 0, kerr.FencedLeaderEpoch
		case ce > epoch:
			return 0, kerr.UnknownLeaderEpoch
		}
	}
	l := fp.p.log
	hw := fp.p.highWatermark()
	leo := l.LogEndOffset()
	out := fp.out
	out.HighWatermark, out.LastStableOffset, out.LogStartOffset = hw, hw, l.LogStartOffset()
	out.ErrorCode = 0
	if fp.req.FetchOffset > leo || fp.req.FetchOffset < out.LogStartOffset {
		return 0, kerr.OffsetOutOfRange
	}
	// Consumers read committed records only; a follower reads everything
	// the leader has, and its fetch offset is its log end offset.
	maxOffset := hw
	if fp.replica >= 0 {
		maxOffset = leo
		b.followerFetch(fp.p, fp.replica, fp.req.FetchOffset)
		hw = fp.p.highWatermark()
		out.HighWatermark, out.LastStableOffset = hw, hw
	}
	limit := min(fp.req.PartitionMaxBytes, budget)
	if limit <= 0 && !minOne {
		return 0, nil
	}
	slice, err := l.Read(fp.req.FetchOffset, limit, maxOffset, minOne)
	if err != nil {
		if errors.Is(err, storage.ErrOffsetOutOfRange) {
			return 0, kerr.OffsetOutOfRange
		}
		return 0, err
	}
	if slice.Size() == 0 {
		slice.Close()
		return 0, nil
	}
	fp.slice = slice
	return slice.Size(), nil
}
