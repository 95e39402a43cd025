package client

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer produces to the active cluster and follows it. Its methods are
// safe for concurrent use.
type Producer struct {
	c    *Client
	opts []kgo.Opt
	sub  <-chan string
	stop chan struct{}
	done chan struct{}

	mu      sync.RWMutex // guards cl and cluster; Produce holds it shared
	cl      *kgo.Client
	cluster string

	statsMu sync.Mutex
	stats   Stats
	retired sync.WaitGroup // old clients being flushed and closed
}

// NewProducer connects a producer to the active cluster; opts are added to
// every franz-go client it makes (for instance kgo.DefaultProduceTopic).
func (c *Client) NewProducer(opts ...kgo.Opt) (*Producer, error) {
	p := &Producer{c: c, opts: opts, sub: c.Changes(), stop: make(chan struct{}), done: make(chan struct{})}
	active := c.Active()
	cl, err := c.kgoClient(active, opts)
	if err != nil {
		return nil, err
	}
	p.cl, p.cluster = cl, active
	p.stats.Cluster = active
	go p.follow()
	return p, nil
}

func (p *Producer) follow() {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case to := <-p.sub:
			p.repoint(to)
		}
	}
}

func (p *Producer) repoint(to string) {
	p.mu.RLock()
	from := p.cluster
	p.mu.RUnlock()
	if to == from {
		return
	}
	start := time.Now()
	cl, err := p.c.kgoClient(to, p.opts)
	if err != nil {
		p.c.cfg.Logger.Error("client: producer cannot repoint; it keeps producing to the old cluster", "from", from, "to", to, "err", err)
		return
	}
	p.mu.Lock()
	old := p.cl
	p.cl, p.cluster = cl, to
	p.mu.Unlock()
	d := time.Since(start)
	p.statsMu.Lock()
	p.stats.Cluster, p.stats.Repoints, p.stats.LastRepoint = to, p.stats.Repoints+1, d
	p.statsMu.Unlock()
	p.c.cfg.Logger.Info("client: producer repointed", "from", from, "to", to, "took", d)
	p.c.repointed(Repoint{Role: "producer", From: from, To: to, Started: start, Duration: d})
	p.retired.Add(1)
	go func() {
		defer p.retired.Done()
		p.retire(old, from)
	}()
}

// retire flushes what the old cluster still buffers, for at most
// FlushTimeout, then closes the client, which fails the rest to their
// promises.
func (p *Producer) retire(old *kgo.Client, cluster string) {
	ctx, cancel := context.WithTimeout(context.Background(), p.c.cfg.FlushTimeout)
	defer cancel()
	if err := old.Flush(ctx); err != nil {
		p.c.cfg.Logger.Warn("client: old cluster did not settle every buffered record; the rest fail to their promises",
			"cluster", cluster, "buffered", old.BufferedProduceRecords(), "err", err)
	}
	old.Close()
}

// Produce sends r to the active cluster, like kgo.Client.Produce, and
// returns the cluster's name. promise is called once with the outcome; a
// record the old cluster failed during a repoint gets its error (the
// application may resend it).
func (p *Producer) Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) string {
	// The client is read under the lock but used outside it: kgo's Produce
	// may block on a full buffer, which must not hold up a repoint. A record
	// that reaches a client being retired fails with kgo.ErrClientClosed.
	p.mu.RLock()
	cl, cluster := p.cl, p.cluster
	p.mu.RUnlock()
	cl.Produce(ctx, r, promise)
	return cluster
}

// Flush waits until every record produced to the current cluster has an
// outcome.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.RLock()
	cl := p.cl
	p.mu.RUnlock()
	return cl.Flush(ctx)
}

// Cluster is the cluster records go to now.
func (p *Producer) Cluster() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cluster
}

// Stats are the producer's repoint metrics.
func (p *Producer) Stats() Stats {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	return p.stats
}

// Close stops following, flushes for at most FlushTimeout and closes every
// client; records without an outcome then fail to their promises.
func (p *Producer) Close() {
	close(p.stop)
	<-p.done
	p.retired.Wait()
	p.mu.Lock()
	cl, cluster := p.cl, p.cluster
	p.mu.Unlock()
	p.retire(cl, cluster)
}
