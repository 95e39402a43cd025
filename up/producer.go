package up

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/topology"
)

// The demo producer's topic and pace.
const (
	DemoTopic           = "orders"
	demoPartitions      = 6
	demoRecordsPerSec   = 20
	demoErrorLogEvery   = 10 * time.Second
	demoCreateRetryWait = time.Second
	// demoLookback is how many of each partition's last records are read
	// for the highest order id: enough to see past a few records other
	// clients wrote (the README's quickstart writes two).
	demoLookback = 100
	// demoReadTimeout bounds one attempt at reading the highest order id.
	demoReadTimeout = 10 * time.Second
)

// demoOrder is one record of the demo producer.
type demoOrder struct {
	OrderID     int64     `json:"order_id"`
	CustomerID  string    `json:"customer_id"`
	Item        string    `json:"item"`
	Quantity    int       `json:"quantity"`
	AmountCents int64     `json:"amount_cents"`
	Created     time.Time `json:"created"`
}

var demoItems = []string{"widget", "gadget", "sprocket", "gizmo", "doohickey"}

// demoProducer writes small JSON orders to DemoTopic on one cluster at
// about demoRecordsPerSec, keyed by customer, until its context ends. It
// logs errors and never gives up.
type demoProducer struct {
	// cluster is where it writes: its bootstrap servers, and its TLS and
	// SASL settings when it is an existing cluster.
	cluster topology.Cluster
	rf      int
	logger  *slog.Logger
	// active, if set, is the cluster to write to now; the producer moves
	// there when it changes (after a failover).
	active func() topology.Cluster

	// first, if set, receives the first order id this run writes, once
	// it is known (capacity 1; kdr up waits for that order on the
	// mirror's targets).
	first     chan int64
	firstOnce sync.Once

	mu       sync.Mutex
	failures int
	lastErr  error
	logged   time.Time
}

// run produces until ctx ends.
func (p *demoProducer) run(ctx context.Context) {
	var next int64
	for ctx.Err() == nil {
		next = p.runOn(ctx, next)
	}
}

// runOn produces to the current cluster until ctx ends or the active
// cluster changes, and returns the next order id.
func (p *demoProducer) runOn(ctx context.Context, next int64) int64 {
	if p.active != nil {
		p.cluster = p.active()
	}
	sec, err := p.cluster.ClientOpts()
	var cl *kgo.Client
	if err == nil {
		cl, err = kgo.NewClient(append(sec, kgo.SeedBrokers(p.cluster.BootstrapServers()...), kgo.DefaultProduceTopic(DemoTopic),
			kgo.ClientID("kdr-up-demo-producer"), kgo.RecordDeliveryTimeout(30*time.Second))...)
	}
	if err != nil {
		p.logger.Error("demo producer: client", "err", err)
		<-ctx.Done()
		return next
	}
	defer cl.Close()
	next = max(next, p.prepare(ctx, cl, sec))
	if ctx.Err() != nil {
		return next
	}
	if p.first != nil {
		p.firstOnce.Do(func() { p.first <- next })
	}
	p.logger.Info("demo producer writing to topic", "topic", DemoTopic, "cluster", p.cluster.Name, "brokers", p.cluster.BootstrapServers(), "rate_per_sec", demoRecordsPerSec, "first_order_id", next)
	tick := time.NewTicker(time.Second / demoRecordsPerSec)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return next
		case <-tick.C:
		}
		if p.active != nil {
			if c := p.active(); c.Name != p.cluster.Name {
				p.logger.Info("demo producer: the active cluster changed", "from", p.cluster.Name, "to", c.Name)
				return next
			}
		}
		o := demoOrder{OrderID: next, CustomerID: fmt.Sprintf("customer-%03d", rand.IntN(100)),
			Item: demoItems[rand.IntN(len(demoItems))], Quantity: 1 + rand.IntN(5),
			AmountCents: 100 + rand.Int64N(20000), Created: time.Now().UTC()}
		next++
		v, _ := json.Marshal(o)
		cl.Produce(ctx, &kgo.Record{Key: []byte(o.CustomerID), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil && ctx.Err() == nil {
				p.failed(err)
			}
		})
	}
}

// prepare creates the topic (retrying until it exists) and returns the
// first order id: one past the highest the topic holds, so ids keep
// increasing across restarts. Until every partition answers it retries,
// logging why: right after a restart leaders are still being elected, and
// starting from a guess would write ids again.
func (p *demoProducer) prepare(ctx context.Context, cl *kgo.Client, sec []kgo.Opt) int64 {
	adm := kadm.NewClient(cl)
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := adm.CreateTopic(cctx, demoPartitions, int16(p.rf), nil, DemoTopic)
		cancel()
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			return p.nextID(ctx, adm, sec)
		}
		p.failed(fmt.Errorf("creating topic %s: %w", DemoTopic, err))
		select {
		case <-ctx.Done():
		case <-time.After(demoCreateRetryWait):
		}
	}
	return 0
}

// nextID reads the highest order id of the topic, retrying until it can,
// and returns the id after it (0 if ctx ended first).
func (p *demoProducer) nextID(ctx context.Context, adm *kadm.Client, sec []kgo.Opt) int64 {
	start := time.Now()
	var logged time.Time
	for attempt := 1; ; attempt++ {
		next, err := p.readNextID(ctx, adm, sec)
		if err == nil {
			return next
		}
		if ctx.Err() != nil {
			return 0
		}
		if time.Since(logged) >= demoErrorLogEvery {
			p.logger.Info("demo producer: waiting to read the highest order id before writing (it keeps trying)",
				"topic", DemoTopic, "cluster", p.cluster.Name, "attempts", attempt, "waited", time.Since(start).Round(time.Second), "err", err)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(demoCreateRetryWait):
		}
	}
}

// readNextID is one attempt of nextID: every partition's end offset, and
// the order ids among its last demoLookback records. The next id is past
// the highest order id, and past the sum of the end offsets too, so that
// a topic whose last records are not orders never restarts the ids at 1.
func (p *demoProducer) readNextID(ctx context.Context, adm *kadm.Client, sec []kgo.Opt) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, demoReadTimeout)
	defer cancel()
	ends, err := adm.ListEndOffsets(rctx, DemoTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("end offsets: %w", err)
	}
	starts, err := adm.ListStartOffsets(rctx, DemoTopic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("start offsets: %w", err)
	}
	var total int64
	from := map[int32]kgo.Offset{}
	until := map[int32]int64{} // the offset of each partition's last record
	ends.Each(func(o kadm.ListedOffset) {
		total += o.Offset
		first := o.Offset - demoLookback
		if s, ok := starts.Lookup(DemoTopic, o.Partition); ok {
			first = max(first, s.Offset)
		}
		if first < o.Offset {
			from[o.Partition] = kgo.NewOffset().At(first)
			until[o.Partition] = o.Offset - 1
		}
	})
	if len(ends[DemoTopic]) == 0 {
		return 0, fmt.Errorf("topic %s has no partitions yet", DemoTopic)
	}
	var highest int64
	if len(from) > 0 {
		rd, err := kgo.NewClient(append(sec, kgo.SeedBrokers(p.cluster.BootstrapServers()...), kgo.ClientID("kdr-up-demo-producer"),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{DemoTopic: from}))...)
		if err != nil {
			return 0, err
		}
		defer rd.Close()
		for len(until) > 0 {
			fs := rd.PollFetches(rctx)
			if err := rctx.Err(); err != nil {
				return 0, fmt.Errorf("reading the last records: %w (%d partitions not read)", err, len(until))
			}
			var ferr error
			fs.EachError(func(_ string, _ int32, err error) { ferr = err })
			if ferr != nil {
				return 0, fmt.Errorf("reading the last records: %w", ferr)
			}
			fs.EachRecord(func(r *kgo.Record) {
				var o demoOrder
				if json.Unmarshal(r.Value, &o) == nil {
					highest = max(highest, o.OrderID)
				}
				if r.Offset >= until[r.Partition] {
					delete(until, r.Partition)
				}
			})
		}
	}
	return max(highest, total) + 1, nil
}

// failed logs err, at most once per demoErrorLogEvery with the count.
func (p *demoProducer) failed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures++
	p.lastErr = err
	if time.Since(p.logged) < demoErrorLogEvery {
		return
	}
	p.logger.Warn("demo producer: errors (it keeps trying)", "count", p.failures, "last", p.lastErr)
	p.failures, p.logged = 0, time.Now()
}
