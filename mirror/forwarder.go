package mirror

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errNotSent fails the forwarded batches of a partition after one of its
// batches failed: sending them could break the order.
var errNotSent = errors.New("not sent: an earlier batch of the partition failed")

// errRenewing fails batches not sent because the producer ID is being
// renewed.
var errRenewing = errors.New("not sent: the producer ID for the target is being renewed")

// errSecondBatch fails a partition's batch after its first in one cycle: a
// Produce request takes one batch per partition, and sequences are stamped
// in cycle order. plan never gives a cycle two.
var errSecondBatch = errors.New("not sent: a forwarding cycle sends one batch per partition")

// forwarder produces forwarded batches to the target as an idempotent
// producer of its own (franz-go's producer only takes records): it owns a
// producer ID and the sequence of every remote partition, and sends each
// partition's batches in order, one per Produce request (Kafka refuses
// more), the partitions of one leader together. Cycles overlap, up to
// maxInflightCycles: a batch is stamped with its sequence when it is sent,
// so the next cycle's batch of a partition can follow it before the target
// answered, as Kafka's idempotent producer keeps requests in flight.
// After a failure the partition is broken: its batches still in flight
// come back refused (out of order) or, if the failed one did land after
// all, appended, and neither counts; nothing more of it is sent until the
// worker, once they are all back, mends it from the failed batch's
// sequence. A batch sent again keeps its sequence, so a retry of one the
// target did append is answered as a duplicate, not appended twice. Used
// by the copy loop only.
type forwarder struct {
	cl      *kgo.Client
	leaders *leaders
	timeout time.Duration
	zeros   *crcZeros

	// mu guards the producer state: the requests of a send, one per
	// target leader, and the sends of overlapping cycles run concurrently.
	mu         sync.Mutex
	producerID int64 // -1 until the target gave one
	epoch      int16
	seqs       map[topicPartition]int32 // remote partition → next sequence to stamp
	broken     map[topicPartition]rewind
	flying     int        // batches stamped and not yet answered
	landed     *sync.Cond // on mu: flying fell to 0
}

// maxInflightCycles is how many forwarding cycles may wait for the target
// at once. Kafka bounds an idempotent producer's requests in flight per
// connection at 5 (max.in.flight.requests.per.connection), which is how
// many batches of a partition a broker remembers to recognise retries; any
// bound up to that keeps retries exact. Two overlap a cycle with the one
// before it, so a batch fetched while the target answers goes at once, yet
// a target slow to answer still gets what arrived meanwhile as one request
// per partition. With five, the mirror sent a request per fetch however
// slowly the target answered, and on the bench VM at 85-89 % CPU the
// replication p99 was 51-97 ms where serialised cycles gave 31-35 ms. Two
// took 40-50 ms off the p99 with a 20 ms round trip to the target, as
// between regions (docs/benchmarks.md).
const maxInflightCycles = 2

// rewind is where a broken partition's sequence starts again: the first
// batch that did not go through, under the producer ID it was stamped
// with.
type rewind struct {
	producerID int64
	seq        int32
}

func newForwarder(cl *kgo.Client, timeout time.Duration) *forwarder {
	f := &forwarder{cl: cl, leaders: newLeaders(cl, 250*time.Millisecond), timeout: timeout, zeros: newCRCZeros(), producerID: -1,
		seqs: map[topicPartition]int32{}, broken: map[topicPartition]rewind{}}
	f.landed = sync.NewCond(&f.mu)
	return f
}

// turn orders overlapping cycles: a cycle writes its Produce requests after
// the cycle before it wrote its own, and reads its answers after that one
// read its own. So a partition's batches reach the target, and their
// outcomes the producer state, in the order they were stamped.
type turn struct {
	written, answered         chan struct{}
	writtenOnce, answeredOnce sync.Once
}

func newTurn() *turn { return &turn{written: make(chan struct{}), answered: make(chan struct{})} }

func (t *turn) wrote()    { t.writtenOnce.Do(func() { close(t.written) }) }
func (t *turn) answer()   { t.answeredOnce.Do(func() { close(t.answered) }) }
func (t *turn) finished() { t.wrote(); t.answer() }

// lane is one partition's forwarded batch of a cycle.
type lane struct {
	remote topicPartition
	job    *job
}

// send forwards the batches of work, each partition's next one (plan gives
// a cycle at most one per partition), and fills each job's outcome: its
// acknowledgement time and target base offset, or its error. It takes its
// turn after prev (nil: none in flight) and gives mine when done writing
// and reading.
func (f *forwarder) send(ctx context.Context, work map[*partState][]*job, prev, mine *turn) {
	defer mine.finished()
	var prevAnswered chan struct{}
	if prev != nil {
		// A cycle that sends nothing still keeps its turn, so that the
		// one after it writes and reads after prev: the order is a chain.
		<-prev.written
		prevAnswered = prev.answered
		defer func() { <-prev.answered }() // runs before mine.finished
	}
	var lanes []*lane
	for ps, jobs := range work {
		var l *lane
		for _, j := range jobs {
			switch {
			case j.raw == nil || j.skip != "":
			case l != nil:
				j.err = errSecondBatch
			default:
				l = &lane{remote: topicPartition{ps.remote, ps.partition}, job: j}
				lanes = append(lanes, l)
			}
		}
	}
	if len(lanes) == 0 {
		mine.wrote()
		return
	}
	// A batch must never go out stamped with producer ID -1 (not
	// idempotent).
	if err := f.initProducer(ctx); err != nil {
		f.failUnsent(err, lanes...)
		return
	}
	tps := make([]topicPartition, len(lanes))
	for i, l := range lanes {
		tps[i] = l.remote
	}
	ids, err := f.leaders.lookup(ctx, tps)
	byLeader := map[int32][]*lane{}
	for _, l := range lanes {
		if id, ok := ids[l.remote]; ok {
			byLeader[id] = append(byLeader[id], l)
		} else {
			f.failUnsent(cmp.Or(err, f.leaders.why(l.remote)), l)
		}
	}
	var wg, writing sync.WaitGroup
	writing.Add(len(byLeader))
	for id, ls := range byLeader {
		wg.Go(func() { f.request(ctx, id, ls, writing.Done, prevAnswered) })
	}
	// The next cycle may write once every request of this one is out.
	writing.Wait()
	mine.wrote()
	wg.Wait()
}

// failUnsent fails lanes whose batches were not sent (no leader, no
// producer ID), breaking their partitions: a later cycle's batch must not
// go before them.
func (f *forwarder) failUnsent(err error, ls ...*lane) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range ls {
		f.breakLocked(l.remote, rewind{f.producerID, f.seqs[l.remote]})
		l.job.err = err
	}
}

// breakLocked marks tp broken from r, or from r if it comes before where
// it already was. Called with mu held.
func (f *forwarder) breakLocked(tp topicPartition, r rewind) {
	if was, ok := f.broken[tp]; ok && (was.producerID != r.producerID || !seqBefore(r.seq, was.seq)) {
		return
	}
	f.broken[tp] = r
}

// mend lets tp be sent again, from the sequence of its first batch that
// did not go through (or from 0, if the producer ID changed since). The
// worker calls it once nothing of tp is in flight.
func (f *forwarder) mend(tp topicPartition) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.broken[tp]
	if !ok {
		return
	}
	delete(f.broken, tp)
	if r.producerID == f.producerID {
		f.seqs[tp] = r.seq
	} else {
		delete(f.seqs, tp)
	}
}

// request sends the batch of each lane to leader id. wrote is called once
// the request is written (or failed before it was); the answers are read
// once prevAnswered (if not nil) is closed.
func (f *forwarder) request(ctx context.Context, id int32, ls []*lane, wrote func(), prevAnswered chan struct{}) {
	var once sync.Once
	written := func() { once.Do(wrote) }
	defer written()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = int32(min(f.timeout.Milliseconds(), math.MaxInt32))
	byTopic := map[string]int{}
	f.mu.Lock()
	pid, epoch := f.producerID, f.epoch
	var sent []*lane
	for _, l := range ls {
		if pid < 0 {
			// An overlapping cycle's answer reset the producer since this
			// send took its ID.
			f.breakLocked(l.remote, rewind{pid, 0})
			l.job.err = errRenewing
			continue
		}
		if _, ok := f.broken[l.remote]; ok {
			l.job.err = errNotSent
			continue
		}
		j := l.job
		j.seq = f.seqs[l.remote]
		f.seqs[l.remote] = nextSequence(j.seq, j.raw.count)
		f.flying++
		j.raw.stamp(pid, epoch, j.seq, f.zeros)
		sent = append(sent, l)
		i, ok := byTopic[l.remote.topic]
		if !ok {
			i = len(req.Topics)
			byTopic[l.remote.topic] = i
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = l.remote.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = l.remote.partition, j.raw.data
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	f.mu.Unlock()
	if len(sent) == 0 {
		return
	}
	kresp, err := f.cl.Broker(int(id)).Request(ctx, sizedProduce{req, written})
	written()
	if prevAnswered != nil {
		<-prevAnswered
	}
	if err != nil {
		f.leaders.forgetBroker(id)
		err = fmt.Errorf("producing to target broker %d: %w", id, err)
	}
	got := map[topicPartition]*kmsg.ProduceResponseTopicPartition{}
	if err == nil {
		resp := kresp.(*kmsg.ProduceResponse)
		for i := range resp.Topics {
			t := &resp.Topics[i]
			for k := range t.Partitions {
				got[topicPartition{t.Topic, t.Partitions[k].Partition}] = &t.Partitions[k]
			}
		}
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.flying -= len(sent); f.flying == 0 {
		f.landed.Broadcast()
	}
	for _, l := range sent {
		j := l.job
		perr := err
		if rp := got[l.remote]; perr == nil && rp == nil {
			perr = fmt.Errorf("target broker %d did not answer for %s/%d", id, l.remote.topic, l.remote.partition)
		} else if perr == nil {
			if perr = kerr.ErrorForCode(rp.ErrorCode); errors.Is(perr, kerr.DuplicateSequenceNumber) {
				perr = nil
			} else if perr != nil && rp.ErrorMessage != nil && *rp.ErrorMessage != "" {
				perr = fmt.Errorf("%w (%s)", perr, *rp.ErrorMessage)
			}
			if perr == nil {
				j.base = rp.BaseOffset
			}
		}
		_, broken := f.broken[l.remote]
		switch {
		case broken:
			// An earlier batch failed: this one was refused as out of
			// order, or landed behind a batch that did too; either way
			// it goes again after the failed one.
			j.err = errNotSent
		case perr != nil:
			f.failed(l.remote, perr)
			f.breakLocked(l.remote, rewind{pid, j.seq})
			j.err = perr
		default:
			j.acked = now
		}
	}
}

// sizedProduce is a Produce request that sizes the buffer it is encoded
// into before appending its batches. franz-go encodes a request into a
// pooled buffer that the garbage collector often empties, and append grows a
// large slice by a quarter at a time: a request of many batches was copied
// about four times over while being built (a quarter of the mirror's CPU
// at a steady 70 MB/s).
type sizedProduce struct {
	*kmsg.ProduceRequest
	written func() // franz-go encodes a request when it writes it
}

func (r sizedProduce) AppendTo(dst []byte) []byte {
	r.written()
	n := 16 // acks, timeout, transactional ID, array lengths
	for _, t := range r.Topics {
		n += 8 + len(t.Topic)
		for _, p := range t.Partitions {
			n += 16 + len(p.Records)
		}
	}
	if cap(dst)-len(dst) < n {
		// Not slices.Grow, which would copy all of dst's capacity.
		dst = append(make([]byte, 0, len(dst)+n), dst...)
	}
	return r.ProduceRequest.AppendTo(dst)
}

// failed reacts to a partition's error: a leader that moved is looked up
// again; an error about the producer's own state starts a new producer ID
// (its sequences from 0), as Kafka's producers do. Called with mu held.
func (f *forwarder) failed(tp topicPartition, err error) {
	switch {
	case errors.Is(err, kerr.OutOfOrderSequenceNumber), errors.Is(err, kerr.UnknownProducerID),
		errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.InvalidProducerIDMapping),
		errors.Is(err, kerr.ProducerFenced):
		f.producerID = -1
		clear(f.seqs)
	case errors.Is(err, kerr.NotLeaderForPartition), errors.Is(err, kerr.UnknownTopicOrPartition),
		errors.Is(err, kerr.LeaderNotAvailable), errors.Is(err, kerr.FencedLeaderEpoch),
		errors.Is(err, kerr.NotEnoughReplicas), errors.Is(err, kerr.UnknownTopicID):
		f.leaders.forget(tp)
	}
}

// initProducer gets a producer ID from the target, once (again after a
// producer error).
//
// A new producer ID is taken only once no batch stamped with the old one
// is still in flight: a partition's batches under the new ID, starting
// from sequence 0, must not pass one of its batches under the old ID that
// may yet fail and go again.
func (f *forwarder) initProducer(ctx context.Context) error {
	f.mu.Lock()
	for f.producerID < 0 && f.flying > 0 {
		f.landed.Wait()
	}
	have := f.producerID >= 0
	f.mu.Unlock()
	if have {
		return nil
	}
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = int32(min(f.timeout.Milliseconds(), math.MaxInt32))
	resp, err := req.RequestWith(ctx, f.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("getting a producer ID from the target: %w", err)
	}
	f.mu.Lock()
	if f.producerID < 0 { // not already taken by an overlapping cycle
		f.producerID, f.epoch = resp.ProducerID, resp.ProducerEpoch
		clear(f.seqs)
	}
	f.mu.Unlock()
	return nil
}

// seqBefore reports whether sequence a comes before b, the two being less
// than a quarter of the sequence space apart (a few batches).
func seqBefore(a, b int32) bool {
	d := (int64(b) - int64(a)) & math.MaxInt32
	return d != 0 && d < 1<<29
}

// nextSequence is seq advanced by n records, wrapping past MaxInt32 to 0 as
// Kafka's sequences do.
func nextSequence(seq, n int32) int32 {
	if seq > math.MaxInt32-n {
		return n - (math.MaxInt32 - seq) - 1
	}
	return seq + n
}
