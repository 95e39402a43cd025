package checker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// value is a record's JSON value.
type value struct {
	Key string `json:"key"`
	Seq int64  `json:"seq"`
	ID  string `json:"id"`
}

// closeGrace bounds how long Stop waits, after closing the client, for the
// records the client failed on close to be reported.
const closeGrace = 10 * time.Second

// Producer writes the workload until Stop and records every outcome. Its
// methods are safe for concurrent use.
type Producer struct {
	cfg   Config
	cl    *kgo.Client
	runID string // prefix of every record id: records of another run never match

	slots    chan struct{} // one per pending record
	stop     chan struct{}
	loopDone chan struct{}
	inflight sync.WaitGroup
	stopOnce sync.Once
	stopErr  error

	mu       sync.Mutex
	produced int64
	acked    []Record
	failed   []Failure
	clock    outageClock
}

// ProducerStats is a snapshot of a producer's progress.
type ProducerStats struct {
	Produced, Acked, Failed, Pending int64
	// CurrentUnavailable is how long the producer has been waiting for an
	// acknowledgement with records pending (0 while none is pending).
	CurrentUnavailable time.Duration
	MaxUnavailable     time.Duration
	TotalUnavailable   time.Duration
	Outages            int
}

// NewProducer connects to cfg.Brokers and starts writing. The topic must
// exist (Start creates it).
func NewProducer(cfg Config) (*Producer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(cfg.producerOpts()...)
	if err != nil {
		return nil, fmt.Errorf("checker: producer client: %w", err)
	}
	var id [6]byte
	rand.Read(id[:])
	p := &Producer{
		cfg:      cfg,
		cl:       cl,
		runID:    hex.EncodeToString(id[:]),
		slots:    make(chan struct{}, cfg.MaxPending),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
		clock:    outageClock{threshold: cfg.OutageThreshold},
	}
	if !cfg.Idempotent {
		cfg.Logger.Warn("checker: producer is not idempotent; retries may duplicate records", "topic", cfg.Topic)
	}
	go p.loop()
	return p, nil
}

func (p *Producer) loop() {
	defer close(p.loopDone)
	seqs := make([]int64, p.cfg.Keys)
	start := time.Now()
	var pace *time.Timer
	for n := int64(0); ; n++ {
		if p.cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(n) / p.cfg.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				if pace == nil {
					pace = time.NewTimer(wait)
				} else {
					pace.Reset(wait)
				}
				select {
				case <-pace.C:
				case <-p.stop:
					return
				}
			}
		}
		select {
		case p.slots <- struct{}{}:
		case <-p.stop:
			return
		}
		k := int(n % int64(p.cfg.Keys))
		v := value{Key: "k" + strconv.Itoa(k), Seq: seqs[k], ID: p.runID + "-" + strconv.FormatInt(n, 10)}
		seqs[k]++
		data, _ := json.Marshal(v)
		p.mu.Lock()
		p.produced++
		p.clock.produced(time.Now())
		p.mu.Unlock()
		p.inflight.Add(1)
		p.cl.Produce(context.Background(), &kgo.Record{Key: []byte(v.Key), Value: data}, func(r *kgo.Record, err error) {
			p.done(v, r, err)
		})
	}
}

func (p *Producer) done(v value, r *kgo.Record, err error) {
	defer p.inflight.Done()
	defer func() { <-p.slots }()
	now := time.Now()
	p.mu.Lock()
	var wait time.Duration
	if err == nil {
		p.acked = append(p.acked, Record{Key: v.Key, Seq: v.Seq, ID: v.ID, Partition: r.Partition, Offset: r.Offset})
		wait = p.clock.acked(now)
	} else {
		p.failed = append(p.failed, Failure{Key: v.Key, Seq: v.Seq, ID: v.ID, Err: err})
		wait = p.clock.failed(now)
	}
	nfailed := len(p.failed)
	p.mu.Unlock()
	if wait >= p.cfg.OutageThreshold {
		p.cfg.Logger.Info("checker: produce outage ended", "topic", p.cfg.Topic, "unavailable", wait.Round(time.Millisecond))
	}
	if err != nil && nfailed <= maxExamples {
		p.cfg.Logger.Warn("checker: record failed", "key", v.Key, "seq", v.Seq, "err", err)
	}
}

// Stop stops writing and waits until every record written is acknowledged
// or failed. If ctx ends first, the client is closed, which fails the rest.
// Stop returns ctx's error in that case; calling it again returns the same.
func (p *Producer) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		close(p.stop)
		<-p.loopDone
		p.stopErr = p.cl.Flush(ctx)
		p.cl.Close()
		done := make(chan struct{})
		go func() { p.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(closeGrace):
			p.stopErr = errors.Join(p.stopErr, fmt.Errorf("checker: %d records still had no outcome %s after the producer client closed; the report cannot count them as acknowledged or failed",
				p.Stats().Pending, closeGrace))
		}
	})
	return p.stopErr
}

// Stats returns the producer's progress so far.
func (p *Producer) Stats() ProducerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProducerStats{
		Produced:           p.produced,
		Acked:              int64(len(p.acked)),
		Failed:             int64(len(p.failed)),
		Pending:            int64(p.clock.pending),
		CurrentUnavailable: p.clock.current(time.Now()),
		MaxUnavailable:     p.clock.max,
		TotalUnavailable:   p.clock.total,
		Outages:            p.clock.outages,
	}
}

// Acked returns the acknowledged records so far, in acknowledgement order.
func (p *Producer) Acked() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked)
}

// Failed returns the failed records so far.
func (p *Producer) Failed() []Failure {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.failed)
}
