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
	next = max(next, p.prepare(ctx, kadm.NewClient(cl)))
	if ctx.Err() != nil {
		return next
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
// first order id: one past what the topic holds, so ids keep increasing
// across restarts.
func (p *demoProducer) prepare(ctx context.Context, adm *kadm.Client) int64 {
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := adm.CreateTopic(cctx, demoPartitions, int16(p.rf), nil, DemoTopic)
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			var next int64 = 1
			if ends, lerr := adm.ListEndOffsets(cctx, DemoTopic); lerr == nil {
				ends.Each(func(o kadm.ListedOffset) {
					if o.Err == nil {
						next += o.Offset
					}
				})
			}
			cancel()
			return next
		}
		cancel()
		p.failed(fmt.Errorf("creating topic %s: %w", DemoTopic, err))
		select {
		case <-ctx.Done():
		case <-time.After(demoCreateRetryWait):
		}
	}
	return 0
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
