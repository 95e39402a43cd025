package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/failover/client"
	"github.com/kdr-io/kdr/internal/checker"
)

// clientOpts are what every drill client uses: short backoffs and fresh
// metadata, so that moved leaders and restarted brokers are found quickly.
func clientOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.ClientID("kdr-drill"),
		kgo.DialTimeout(3 * time.Second),
		kgo.RequestTimeoutOverhead(3 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.MetadataMaxAge(5 * time.Second),
		kgo.RetryBackoffFn(func(tries int) time.Duration {
			return min(25*time.Millisecond<<min(tries, 4), 250*time.Millisecond)
		}),
	}
}

// loadGen is the drill's workload: a paced producer and a group consumer,
// both through failover/client, recording every outcome for the checker.
type loadGen struct {
	cfg    Load
	cl     *client.Client
	logger *slog.Logger
	runID  string

	prod     *client.Producer
	cons     *client.Consumer
	stopProd chan struct{}
	prodDone chan struct{}
	prodOnce sync.Once
	consStop context.CancelFunc
	consDone chan struct{}
	consOnce sync.Once

	mu         sync.Mutex
	produced   []checker.Produced
	delivered  []int32 // deliveries per produced record
	deliveries []checker.Delivery
	failed     int64
	fetchErrs  int64
	unexpected int64
	distinct   int64
	ackedBy    map[string]int64 // acknowledged records per cluster
	eraStart   int              // first record produced to the current cluster
	advanced   chan struct{}    // closed and replaced on every delivery batch
	errSamples []string
}

func newLoadGen(cfg Load, cl *client.Client, logger *slog.Logger) *loadGen {
	var id [4]byte
	rand.Read(id[:])
	return &loadGen{cfg: cfg, cl: cl, logger: logger, runID: hex.EncodeToString(id[:]),
		ackedBy: map[string]int64{}, advanced: make(chan struct{})}
}

// createTopic creates the load topic on cluster if it is not there.
func createTopic(ctx context.Context, cl *client.Client, cluster string, cfg Load, rf int16) error {
	k, err := cl.KafkaClient(cluster, clientOpts()...)
	if err != nil {
		return err
	}
	defer k.Close()
	resp, err := kadm.NewClient(k).CreateTopic(ctx, cfg.Partitions, rf, nil, cfg.Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("drill: creating topic %s on %s: %w", cfg.Topic, cluster, err)
	}
	return nil
}

// start starts producing and consuming.
func (l *loadGen) start() error {
	popts := append(clientOpts(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.UnknownTopicRetries(-1),
		kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.ProduceRequestTimeout(5*time.Second),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(1<<20), // never block the paced loop: an outage shows as pending records
	)
	p, err := l.cl.NewProducer(popts...)
	if err != nil {
		return err
	}
	c, err := l.cl.NewConsumer(client.ConsumerConfig{Group: l.cfg.ConsumerGroup,
		Topics: []string{`^(.*\.)?` + regexpQuote(l.cfg.Topic) + `$`}, Regex: true,
		// A short session: a member left behind on a cluster that died
		// (its LeaveGroup could not be sent) holds up the group there
		// until it expires, e.g. when that cluster is failed back to.
		Opts: append(clientOpts(), kgo.FetchMaxWait(250*time.Millisecond), kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second))})
	if err != nil {
		p.Close()
		return err
	}
	l.prod, l.cons = p, c
	l.stopProd, l.prodDone, l.consDone = make(chan struct{}), make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	l.consStop = cancel
	go l.produceLoop()
	go l.consumeLoop(ctx)
	return nil
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (l *loadGen) produceLoop() {
	defer close(l.prodDone)
	seqs := make([]int64, l.cfg.Keys)
	start := time.Now()
	pace := time.NewTimer(0)
	defer pace.Stop()
	for n := 0; ; n++ {
		due := start.Add(time.Duration(float64(n) / l.cfg.Rate * float64(time.Second)))
		pace.Reset(time.Until(due))
		select {
		case <-l.stopProd:
			return
		case <-pace.C:
		}
		k := n % l.cfg.Keys
		key := "k" + strconv.Itoa(k)
		id := l.runID + "-" + strconv.Itoa(n)
		seq := seqs[k]
		seqs[k]++
		l.mu.Lock()
		l.produced = append(l.produced, checker.Produced{ID: id, Key: key, Seq: seq, Sent: time.Now()})
		l.delivered = append(l.delivered, 0)
		l.mu.Unlock()
		rec := &kgo.Record{Topic: l.cfg.Topic, Key: []byte(key), Value: checker.EncodeValue(key, seq, id)}
		cluster := l.prod.Produce(context.Background(), rec, func(_ *kgo.Record, err error) { l.done(n, err) })
		l.mu.Lock()
		l.produced[n].Cluster = cluster
		if n > 0 && l.produced[n-1].Cluster != cluster {
			l.eraStart = n
		}
		if l.produced[n].Acked {
			l.countAckLocked(n)
		}
		l.mu.Unlock()
	}
}

func (l *loadGen) done(n int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := &l.produced[n]
	p.Done = time.Now()
	if err != nil {
		p.Err = err.Error()
		l.failed++
		if len(l.errSamples) < 20 {
			l.errSamples = append(l.errSamples, fmt.Sprintf("%s: %v", p.Done.Format(time.RFC3339Nano), err))
		}
		return
	}
	p.Acked = true
	if p.Cluster != "" {
		l.countAckLocked(n)
	}
}

// countAckLocked counts record n, acknowledged by its cluster, once both
// are known.
func (l *loadGen) countAckLocked(n int) {
	l.ackedBy[l.produced[n].Cluster]++
}

// index is the produced record an id of this run names, or -1.
func (l *loadGen) index(id string) int {
	rest, ok := strings.CutPrefix(id, l.runID+"-")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || n >= len(l.produced) {
		return -1
	}
	return n
}

func (l *loadGen) consumeLoop(ctx context.Context) {
	defer close(l.consDone)
	for {
		b, err := l.cons.Poll(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.logger.Warn("drill: consumer", "err", err)
			continue
		}
		now := time.Now()
		l.mu.Lock()
		l.fetchErrs += int64(len(b.Errors))
		for _, r := range b.Records {
			seq, id, ok := checker.DecodeValue(r.Key, r.Value)
			n := -1
			if ok {
				n = l.index(id)
			}
			if n < 0 {
				l.unexpected++
				continue
			}
			l.deliveries = append(l.deliveries, checker.Delivery{ID: id, Key: string(r.Key), Seq: seq, Cluster: b.Cluster,
				Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, At: now})
			l.delivered[n]++
			if l.delivered[n] == 1 {
				l.distinct++
			}
		}
		close(l.advanced)
		l.advanced = make(chan struct{})
		l.mu.Unlock()
	}
}

// stopProducing stops the paced loop and waits (at most timeout) for every
// record's outcome; the client then fails the rest.
func (l *loadGen) stopProducing(timeout time.Duration) {
	if l.prod == nil {
		return
	}
	l.prodOnce.Do(func() {
		close(l.stopProd)
		<-l.prodDone
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		l.prod.Flush(ctx)
		l.prod.Close()
	})
}

// stopConsuming commits, leaves the group and stops.
func (l *loadGen) stopConsuming() {
	if l.cons == nil {
		return
	}
	l.consOnce.Do(func() {
		l.consStop()
		<-l.consDone
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.cons.Close(ctx)
	})
}

// counts is a snapshot for progress and the timeline.
type counts struct {
	Produced, Acked, Failed, Consumed, Errors int64
	Distinct                                  int64 // records delivered at least once
}

func (l *loadGen) counts() counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	var acked int64
	for _, n := range l.ackedBy {
		acked += n
	}
	return counts{Produced: int64(len(l.produced)), Acked: acked, Failed: l.failed,
		Consumed: int64(len(l.deliveries)), Errors: l.failed + l.fetchErrs, Distinct: l.distinct}
}

// caughtUpBefore reports whether the consumer has every record among the
// first n produced that cluster acknowledged since the producer last moved
// to it (records it acknowledged in an earlier era may have been lost).
func (l *loadGen) caughtUpBefore(cluster string, n int) (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	missing := 0
	for i := l.eraStart; i < min(n, len(l.produced)); i++ {
		if p := l.produced[i]; p.Acked && p.Cluster == cluster && l.delivered[i] == 0 {
			missing++
		}
	}
	return missing == 0, fmt.Sprintf("the consumer misses %d records %s acknowledged", missing, cluster)
}

// snapshot copies what the checker needs.
func (l *loadGen) snapshot() ([]checker.Produced, []checker.Delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]checker.Produced(nil), l.produced...), append([]checker.Delivery(nil), l.deliveries...)
}

// waitDelivered waits until every acknowledged record in want has been
// delivered, or ctx ends.
func (l *loadGen) waitDelivered(ctx context.Context, want map[string]bool) {
	for {
		l.mu.Lock()
		missing := 0
		for i, p := range l.produced {
			if p.Acked && want[p.ID] && l.delivered[i] == 0 {
				missing++
			}
		}
		adv := l.advanced
		l.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-adv:
		}
	}
}

func (l *loadGen) unexpectedCount() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.unexpected
}

func (l *loadGen) errorSamples() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errSamples...)
}
