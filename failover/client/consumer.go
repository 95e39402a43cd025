package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/failover/store"
)

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	// Group is the consumer group. Required.
	Group string
	// Topics to consume; with Regex they are RE2 patterns. Required.
	Topics []string
	Regex  bool
	// Opts are added to every franz-go client the consumer makes.
	Opts []kgo.Opt
}

// Batch is what one Poll returns: records of one cluster.
type Batch struct {
	Cluster string
	Records []*kgo.Record
	// Errors are the fetch errors of this poll (the client retries them).
	Errors []error
}

// Consumer is a group consumer of the active cluster that follows it. Poll
// and Close must not be called concurrently with each other; Cluster and
// Stats may be called from anywhere.
type Consumer struct {
	c    *Client
	cfg  ConsumerConfig
	sub  <-chan string
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	want    string        // the active cluster as last announced
	wake    chan struct{} // closed and replaced when want changes
	cluster string        // the cluster cl consumes from
	stats   Stats

	cl      *kgo.Client // nil until the first Poll
	pending []*kgo.Record
}

// NewConsumer returns a consumer of the active cluster; it joins the group
// at the first Poll.
func (c *Client) NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	if cfg.Group == "" {
		return nil, errors.New("client: ConsumerConfig.Group is empty")
	}
	if len(cfg.Topics) == 0 {
		return nil, errors.New("client: ConsumerConfig.Topics is empty")
	}
	k := &Consumer{c: c, cfg: cfg, sub: c.Changes(), stop: make(chan struct{}), done: make(chan struct{}),
		want: c.Active(), wake: make(chan struct{})}
	go k.follow()
	return k, nil
}

func (k *Consumer) follow() {
	defer close(k.done)
	for {
		select {
		case <-k.stop:
			return
		case to := <-k.sub:
			k.mu.Lock()
			if to != k.want {
				k.want = to
				close(k.wake)
				k.wake = make(chan struct{})
			}
			k.mu.Unlock()
		}
	}
}

// Poll commits the records the previous Poll returned, repoints if the
// active cluster changed, and waits for records (or ctx's end).
func (k *Consumer) Poll(ctx context.Context) (Batch, error) {
	k.commitPending(ctx)
	for {
		k.mu.Lock()
		want, wake := k.want, k.wake
		k.mu.Unlock()
		if k.cl == nil || want != k.cluster {
			if err := k.repoint(ctx, want); err != nil {
				return Batch{}, err
			}
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-wake:
				cancel()
			case <-pctx.Done():
			}
		}()
		fs := k.cl.PollFetches(pctx)
		interrupted := pctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return Batch{}, ctx.Err()
		}
		b := Batch{Cluster: k.cluster, Records: fs.Records()}
		fs.EachError(func(topic string, p int32, err error) {
			if !interrupted || !errors.Is(err, context.Canceled) {
				b.Errors = append(b.Errors, fmt.Errorf("%s[%d]: %w", topic, p, err))
			}
		})
		if len(b.Records) == 0 && len(b.Errors) == 0 {
			continue
		}
		k.pending = b.Records
		return b, nil
	}
}

// commitPending marks and commits what the last Poll returned.
func (k *Consumer) commitPending(ctx context.Context) {
	if k.cl == nil || len(k.pending) == 0 {
		return
	}
	k.cl.MarkCommitRecords(k.pending...)
	k.pending = nil
	cctx, cancel := context.WithTimeout(ctx, k.c.cfg.CommitTimeout)
	defer cancel()
	if err := k.cl.CommitMarkedOffsets(cctx); err != nil {
		k.c.cfg.Logger.Warn("client: commit failed; the records may be delivered again", "cluster", k.cluster, "group", k.cfg.Group, "err", err)
	}
}

// leave commits and leaves the group on the current cluster, each bounded
// by CommitTimeout, and closes the client.
func (k *Consumer) leave(ctx context.Context) {
	if k.cl == nil {
		return
	}
	k.commitPending(ctx)
	lctx, cancel := context.WithTimeout(ctx, k.c.cfg.CommitTimeout)
	defer cancel()
	if err := k.cl.LeaveGroupContext(lctx); err != nil {
		k.c.cfg.Logger.Warn("client: leaving the group on the old cluster failed", "cluster", k.cluster, "group", k.cfg.Group, "err", err)
	}
	k.cl.Close()
	k.cl = nil
}

// repoint moves the consumer to cluster to (the first connection when it
// has none yet).
func (k *Consumer) repoint(ctx context.Context, to string) error {
	start := time.Now()
	from := k.cluster
	first := k.cl == nil && from == ""
	k.leave(ctx)
	// Wait until the orchestrator says the group's offsets on to are
	// authoritative (ConsumerOffsets, "" meaning Active), or Active moves
	// elsewhere.
	timedOut := false
	wctx, cancel := context.WithTimeout(ctx, k.c.cfg.OffsetsTimeout)
	err := k.c.waitState(wctx, func(s store.State) bool {
		active := s.Active
		if active == "" {
			active = DefaultActive(k.c.cfg.Topology)
		}
		co := s.ConsumerOffsets
		switch {
		case co != "":
		case s.Operation != nil:
			// Never set, and a failover is under way: the offsets are
			// still the old primary's until the orchestrator says so.
			co = s.Operation.From
		default:
			co = active
		}
		return co == to || active != to
	})
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		timedOut = true
		k.c.cfg.Logger.Warn("client: consumer offsets were not confirmed on the new cluster in time; joining the group there with whatever offsets it has",
			"cluster", to, "group", k.cfg.Group, "waited", k.c.cfg.OffsetsTimeout, "consumer_offsets", k.c.State().State.ConsumerOffsets)
	}
	opts := []kgo.Opt{kgo.ConsumerGroup(k.cfg.Group), kgo.AutoCommitMarks(), kgo.AutoCommitInterval(time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if k.cfg.Regex {
		opts = append(opts, kgo.ConsumeRegex())
	}
	opts = append(opts, kgo.ConsumeTopics(k.cfg.Topics...))
	cl, err := k.c.kgoClient(to, append(opts, k.cfg.Opts...))
	if err != nil {
		return err
	}
	k.cl = cl
	d := time.Since(start)
	k.mu.Lock()
	k.cluster = to
	k.stats.Cluster = to
	if !first {
		k.stats.Repoints++
		k.stats.LastRepoint = d
	}
	k.mu.Unlock()
	if !first {
		k.c.cfg.Logger.Info("client: consumer repointed", "from", from, "to", to, "group", k.cfg.Group, "took", d, "offsets_timed_out", timedOut)
		k.c.repointed(Repoint{Role: "consumer", From: from, To: to, Started: start, Duration: d, OffsetsTimedOut: timedOut})
	}
	return nil
}

// Cluster is the cluster the consumer reads from ("" before the first
// Poll).
func (k *Consumer) Cluster() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cluster
}

// Stats are the consumer's repoint metrics.
func (k *Consumer) Stats() Stats {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stats
}

// Close commits what the last Poll returned, leaves the group and stops
// following.
func (k *Consumer) Close(ctx context.Context) {
	close(k.stop)
	<-k.done
	k.leave(ctx)
}
