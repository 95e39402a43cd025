package benchkit

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer is how the throughput and latency clients produce. Both
// commands build it from the same flags, so that their figures compare.
type Producer struct {
	Inflight    int
	Linger      time.Duration
	MaxBuffered int
	Value       []byte // shared by every record; the client never writes it
}

// NewProducer is the producer the flags in c ask for, with a random value
// of c.RecordSize bytes: incompressible, although compression is off anyway.
func NewProducer(c Common) Producer {
	v := make([]byte, c.RecordSize)
	rand.Read(v)
	return Producer{Inflight: c.Inflight, Linger: c.Linger, MaxBuffered: c.MaxBuffered, Value: v}
}

// Opts configures a franz-go producer of topic: the given acks, no
// idempotency, no compression, several requests in flight, a short linger,
// the default uniform-bytes partitioner (64 KiB sticky batches across all
// partitions), and no retries: a failed record is counted, not hidden by a
// retry.
func (p Producer) Opts(seeds []string, topic string, acks kgo.Acks) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(acks),
		kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxProduceRequestsInflightPerBroker(p.Inflight),
		kgo.ProducerLinger(p.Linger),
		kgo.MaxBufferedRecords(p.MaxBuffered),
		kgo.RecordRetries(0),
	}
}

// WarmUp produces one record synchronously, so that cl has connected and
// loaded the topic's metadata before any clock starts.
func (p Producer) WarmUp(ctx context.Context, cl *kgo.Client) error {
	return cl.ProduceSync(ctx, &kgo.Record{Value: p.Value}).FirstErr()
}

// ProduceResult counts what a produce run got acknowledged.
type ProduceResult struct {
	Records  int64 // acknowledged, in the timed window
	Warmup   int64 // acknowledged before the clock started, if counted
	Bytes    int64 // acknowledged value bytes
	Failed   int64 // records whose promise had an error
	FirstErr error
	Elapsed  time.Duration // first Produce call to the last acknowledgement
}

// MBps is acknowledged value bytes per second, in MB (10^6 bytes); 0 for
// a run that did not happen.
func (r ProduceResult) MBps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / r.Elapsed.Seconds() / 1e6
}

// RecordsPerSec is acknowledged records per second; 0 for a run that did
// not happen.
func (r ProduceResult) RecordsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// Tally is the promise-side counter of a run, shared by its clients:
// promises run on the clients' goroutines, hence the atomics.
type Tally struct {
	records, bytes, failed atomic.Int64
	errOnce                sync.Once
	firstErr               error
}

// Promise is a kgo produce promise that counts the record.
func (t *Tally) Promise(r *kgo.Record, err error) {
	if err != nil {
		t.failed.Add(1)
		t.errOnce.Do(func() { t.firstErr = err })
		return
	}
	t.records.Add(1)
	t.bytes.Add(int64(len(r.Value)))
}

// Result is the count so far, over elapsed. Call it once the clients are
// flushed, so that no promise is still running.
func (t *Tally) Result(elapsed time.Duration) ProduceResult {
	return ProduceResult{
		Records:  t.records.Load(),
		Bytes:    t.bytes.Load(),
		Failed:   t.failed.Load(),
		FirstErr: t.firstErr,
		Elapsed:  elapsed,
	}
}

// ProduceFor produces as fast as the clients accept records for d, each
// client in its own goroutine, then flushes them: the elapsed time includes
// waiting for the last acknowledgement. Produce blocks once a client holds
// p.MaxBuffered unacknowledged records. The clients should be warmed up
// (see WarmUp) and are left open.
func (p Producer) ProduceFor(ctx context.Context, clients []*kgo.Client, d time.Duration) ProduceResult {
	var t Tally
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				// Reading the clock every record would cost more than it tells.
				if i%128 == 0 && time.Now().After(deadline) {
					break
				}
				cl.Produce(ctx, &kgo.Record{Value: p.Value}, t.Promise)
			}
			cl.Flush(ctx)
		}()
	}
	wg.Wait()
	return t.Result(time.Since(start))
}
