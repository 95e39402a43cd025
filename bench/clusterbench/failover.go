package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// failoverTopic is the one-partition topic the failover runs write to.
const failoverTopic = "clusterbench-failover"

// failoverRun is one leader kill.
type failoverRun struct {
	killed    int32         // node id of the SIGKILLed leader
	ackedBy   int32         // broker that acknowledged the first batch after the kill
	ackAfter  time.Duration // kill to that acknowledgement, as the client saw it
	sentAfter time.Duration // kill to the first produce request written to another broker
	metaAfter time.Duration // kill to fresh Metadata naming a live leader (polled every 50 ms)
	rejoin    time.Duration // restart of the killed broker to a full ISR again
	err       error         // the run's failure, if any; its durations are then partial
}

// failoverResult is every kill and what the producer saw across them.
type failoverResult struct {
	rate      float64 // records/s asked of the producer
	runs      []failoverRun
	acked     int64 // records acknowledged, warm-up included
	failed    int64
	firstErr  error
	endOffset int64 // the partition's end offset after the runs; -1 unknown
}

// times returns the client-observed failover times of the runs that got an
// acknowledgement, sorted.
func (r failoverResult) times() []time.Duration {
	var out []time.Duration
	for _, run := range r.runs {
		if run.ackedBy > 0 {
			out = append(out, run.ackAfter)
		}
	}
	slices.Sort(out)
	return out
}

// ackWatch is a producer hook that, once armed with a kill, records the
// first produce request written to any other broker and the first batch
// any other broker acknowledged.
type ackWatch struct {
	mu     sync.Mutex
	armed  bool
	killed int32
	since  time.Time
	sent   time.Time // first produce request to another broker
	at     time.Time // first acknowledgement by another broker
	by     int32
	got    chan struct{}
}

var (
	_ kgo.HookProduceBatchWritten = (*ackWatch)(nil)
	_ kgo.HookBrokerWrite         = (*ackWatch)(nil)
)

// arm starts watching for an acknowledgement by a broker other than killed
// after since; the returned channel is closed when one arrives.
func (a *ackWatch) arm(killed int32, since time.Time) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.armed, a.killed, a.since, a.sent, a.at, a.by = true, killed, since, time.Time{}, time.Time{}, 0
	a.got = make(chan struct{})
	return a.got
}

// result is the first request sent and the first acknowledgement seen
// since arm, if any.
func (a *ackWatch) result() (sent, acked time.Time, by int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sent, a.at, a.by
}

func (a *ackWatch) OnBrokerWrite(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	const produceKey = 0
	if key != produceKey || err != nil {
		return
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.armed && a.sent.IsZero() && meta.NodeID != a.killed && now.After(a.since) {
		a.sent = now
	}
}

func (a *ackWatch) OnProduceBatchWritten(meta kgo.BrokerMetadata, _ string, _ int32, _ kgo.ProduceBatchMetrics) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.armed && meta.NodeID != a.killed && now.After(a.since) {
		a.armed, a.at, a.by = false, now, meta.NodeID
		close(a.got)
	}
}

// failoverProducerOpts is a producer tuned to find a moved leader quickly,
// as a failover-sensitive application would configure it: fresh metadata
// at most every 100 ms, short retry backoffs, retries without limit
// (franz-go's default), acks=all with idempotency (franz-go's default).
func failoverProducerOpts(seeds []string, watch *ackWatch, logs io.Writer) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(failoverTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(2 * time.Millisecond),
		kgo.DialTimeout(time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.MetadataMaxAge(5 * time.Second),
		kgo.RetryBackoffFn(func(tries int) time.Duration {
			return min(25*time.Millisecond<<min(tries, 4), 250*time.Millisecond)
		}),
		kgo.UnknownTopicRetries(-1),
		kgo.WithHooks(watch),
		kgo.WithLogger(kgo.BasicLogger(logs, kgo.LogLevelInfo, func() string {
			return time.Now().UTC().Format("2006-01-02T15:04:05.000Z ")
		})),
	}
}

// measureFailovers creates the failover topic, runs a paced acks=all
// producer on it, and o.failovers times kills the partition leader, times
// the first acknowledgement from another broker, restarts the killed broker
// and waits for the ISR to be full again.
func measureFailovers(ctx context.Context, c *cluster, w workload, o options) (failoverResult, error) {
	res := failoverResult{rate: o.failoverRate, endOffset: -1}
	if err := c.createTopic(ctx, failoverTopic, 1, clusterSize, map[string]string{"min.insync.replicas": "2"}); err != nil {
		return res, err
	}
	if err := poll(ctx, time.Minute, 100*time.Millisecond, func() (bool, string) {
		return c.topicReady(ctx, failoverTopic, 1, true)
	}); err != nil {
		return res, err
	}

	// The client's own log tells when it saw what; the brokers' logs
	// (info level) tell when they fenced, elected and followed.
	logs, err := os.Create(filepath.Join(o.OutDir, "cluster-failover-client.log"))
	if err != nil {
		return res, err
	}
	defer logs.Close()
	watch := &ackWatch{}
	cl, err := kgo.NewClient(failoverProducerOpts(w.seeds, watch, logs)...)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	var t benchkit.Tally
	var warmup int64
	if err := w.WarmUp(ctx, cl); err != nil {
		return res, fmt.Errorf("warm-up record: %w", err)
	}
	warmup++

	// The pacer produces until stopProducing is closed.
	stopProducing := make(chan struct{})
	pacerDone := make(chan struct{})
	go func() {
		defer close(pacerDone)
		ticker := time.NewTicker(5 * time.Millisecond)
		defer ticker.Stop()
		start := time.Now()
		var sent int64
		for {
			due := int64(o.failoverRate * time.Since(start).Seconds())
			for ; sent < due; sent++ {
				cl.Produce(ctx, &kgo.Record{Value: w.Value}, t.Promise)
			}
			select {
			case <-stopProducing:
				return
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()

	for i := range o.failovers {
		if ctx.Err() != nil {
			break
		}
		run := failoverOnce(ctx, c, watch, o)
		res.runs = append(res.runs, run)
		if run.err != nil {
			logf("failover %d/%d: killed broker %d: %v", i+1, o.failovers, run.killed, run.err)
		} else {
			logf("failover %d/%d: killed broker %d; fresh Metadata named a live leader after %v, the producer sent to it after %v, "+
				"broker %d acknowledged after %v; ISR full %v after the restart",
				i+1, o.failovers, run.killed, run.metaAfter.Round(time.Millisecond), run.sentAfter.Round(time.Millisecond),
				run.ackedBy, run.ackAfter.Round(time.Millisecond), run.rejoin.Round(time.Millisecond))
		}
		if errors.Is(run.err, errRestart) {
			close(stopProducing)
			<-pacerDone
			return res, run.err
		}
	}

	close(stopProducing)
	<-pacerDone
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = cl.Flush(fctx)
	cancel()
	if err != nil {
		logf("failover: flushing the producer: %v", err)
	}
	r := t.Result(0)
	res.acked, res.failed, res.firstErr = r.Records+warmup, r.Failed, r.FirstErr
	offs, err := kadm.NewClient(c.client).ListEndOffsets(ctx, failoverTopic)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		logf("failover: listing the end offset: %v", err)
	} else if lo, ok := offs.Lookup(failoverTopic, 0); ok {
		res.endOffset = lo.Offset
	}
	return res, ctx.Err()
}

// errRestart marks a run after which the killed broker could not be
// started again: the remaining phases cannot run on two brokers.
var errRestart = errors.New("restarting the killed broker")

// failoverOnce is one kill: it waits for a full ISR and steady production,
// kills the leader, times the first acknowledgement by another broker and
// the first fresh Metadata naming a live leader, restarts the killed broker
// and times its return to the ISR.
func failoverOnce(ctx context.Context, c *cluster, watch *ackWatch, o options) failoverRun {
	var run failoverRun
	if err := poll(ctx, 2*time.Minute, 100*time.Millisecond, func() (bool, string) {
		return c.topicReady(ctx, failoverTopic, 1, true)
	}); err != nil {
		run.err = fmt.Errorf("waiting for a full ISR before the kill: %w", err)
		return run
	}
	select {
	case <-ctx.Done():
		run.err = ctx.Err()
		return run
	case <-time.After(o.failoverSteady):
	}
	ps, err := c.topicState(ctx, failoverTopic)
	if err != nil || ps[0].leader <= 0 {
		run.err = fmt.Errorf("finding the leader: %v (state %+v)", err, ps[0])
		return run
	}
	run.killed = ps[0].leader
	victim := c.node(run.killed)

	killedAt := time.Now()
	got := watch.arm(run.killed, killedAt)
	victim.kill()
	logf("failover: SIGKILLed broker %d at %s", run.killed, killedAt.UTC().Format("15:04:05.000"))

	// Fresh Metadata, polled alongside, tells how much of the wait is the
	// cluster electing and how much the client finding out.
	metaCtx, stopMeta := context.WithCancel(ctx)
	metaDone := make(chan time.Duration, 1)
	go func() {
		for metaCtx.Err() == nil {
			if ps, err := c.topicState(metaCtx, failoverTopic); err == nil && ps[0].leader > 0 && ps[0].leader != run.killed {
				metaDone <- time.Since(killedAt)
				return
			}
			select {
			case <-metaCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
		metaDone <- 0
	}()

	select {
	case <-got:
		sent, at, by := watch.result()
		run.ackAfter, run.ackedBy = at.Sub(killedAt), by
		if !sent.IsZero() {
			run.sentAfter = sent.Sub(killedAt)
		}
	case <-time.After(o.failoverWaitLimit):
		run.err = fmt.Errorf("no acknowledgement from another broker within %v of the kill", o.failoverWaitLimit)
	case <-ctx.Done():
		run.err = ctx.Err()
	}
	// Metadata may lag the first acknowledgement a little; give it a few
	// seconds more, not the whole limit.
	select {
	case run.metaAfter = <-metaDone:
	case <-time.After(5 * time.Second):
	}
	stopMeta()

	restartAt := time.Now()
	if err := victim.start(ctx); err != nil {
		run.err = errors.Join(run.err, fmt.Errorf("%w: %v", errRestart, err))
		return run
	}
	err = poll(ctx, 2*time.Minute, 100*time.Millisecond, func() (bool, string) {
		return c.topicReady(ctx, failoverTopic, 1, true)
	})
	if err != nil {
		run.err = errors.Join(run.err, fmt.Errorf("waiting for the restarted broker %d to rejoin the ISR: %w", run.killed, err))
		return run
	}
	run.rejoin = time.Since(restartAt)
	return run
}
