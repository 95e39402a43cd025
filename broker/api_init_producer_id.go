package broker

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/wire"
)

// producerIDBlock is how many ids a broker reserves per metadata command.
const producerIDBlock = 1000

// producerIDs hands out ids from a block reserved in the cluster metadata, so
// ids are unique across brokers and restarts (an unused remainder of a block
// is simply skipped after a restart).
type producerIDs struct {
	mu         sync.Mutex
	next, stop int64
}

// handleInitProducerID serves idempotent producers. Like Kafka, a
// non-transactional producer always gets a fresh producer id with epoch 0,
// also when it asks to bump its epoch after an error (KIP-360).
// Transactions are not implemented, so a transactional id is refused.
func (b *Broker) handleInitProducerID(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	id, err := b.nextProducerID(ctx)
	if err != nil {
		b.log.Error("allocating producer ids", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

func (b *Broker) nextProducerID(ctx context.Context) (int64, error) {
	b.pids.mu.Lock()
	defer b.pids.mu.Unlock()
	if b.pids.next == b.pids.stop {
		res, err := b.meta.Propose(ctx, &cluster.AllocateProducerIDs{Count: producerIDBlock})
		if err != nil {
			return 0, err
		}
		b.pids.next = res.(int64)
		b.pids.stop = b.pids.next + producerIDBlock
	}
	id := b.pids.next
	b.pids.next++
	return id, nil
}
