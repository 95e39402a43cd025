package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/internal/faultproxy"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// cluster is one single-broker kdr cluster with a client for the test.
type cluster struct {
	t    *testing.T
	addr string
	cl   *kgo.Client
	adm  *kadm.Client
	// sec are the options a client of the cluster needs (TLS, SASL).
	sec []kgo.Opt
}

func startCluster(t *testing.T, opts ...kdrtest.Option) *cluster {
	t.Helper()
	b := kdrtest.StartBroker(t, opts...)
	cl := startClient(t, b.Addr())
	return &cluster{t: t, addr: b.Addr(), cl: cl, adm: kadm.NewClient(cl)}
}

// startBehindProxy starts a one-broker cluster that clients reach through
// a fault proxy: the broker advertises the proxy's address, so a client
// seeded with it keeps to it. The cluster's own client goes direct.
func startBehindProxy(t *testing.T) (*cluster, *faultproxy.Proxy) {
	t.Helper()
	proxy, err := faultproxy.New("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	b := kdrtest.StartBroker(t, kdrtest.WithConfig(func(c *broker.Config) { c.AdvertisedListen = proxy.Addr() }))
	proxy.SetUpstream(b.ListenAddr())
	cl := startClient(t, b.ListenAddr())
	return &cluster{t: t, addr: b.ListenAddr(), cl: cl, adm: kadm.NewClient(cl)}, proxy
}

// startClient is a client of addr that produces to the partition each
// record names.
func startClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(4<<20), kgo.BrokerMaxWriteBytes(16<<20),
		// kadm answers from metadata up to this old: tests look for
		// topics and partitions the moment they are made.
		kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (c *cluster) createTopic(name string, partitions int32) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.adm.CreateTopic(ctx, partitions, 1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		c.t.Fatalf("creating %s: %v", name, err)
	}
}

func (c *cluster) produce(recs ...*kgo.Record) {
	c.t.Helper()
	if err := c.tryProduce(recs...); err != nil {
		c.t.Fatal(err)
	}
}

// tryProduce is produce for goroutines other than the test's.
func (c *cluster) tryProduce(recs ...*kgo.Record) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("producing: %w", err)
	}
	return nil
}

// ends returns the end offset of every partition of topic (nil if the topic
// does not exist).
func (c *cluster) ends(topic string) map[int32]int64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lo, err := c.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		c.t.Fatalf("listing end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[o.Partition] = o.Offset
		}
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

// count is the number of records in topic (its end offsets' sum: the test
// topics have no gaps).
func (c *cluster) count(topic string) int64 {
	var n int64
	for _, e := range c.ends(topic) {
		n += e
	}
	return n
}

func (c *cluster) topics() []string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tds, err := c.adm.ListTopics(ctx)
	if err != nil {
		c.t.Fatalf("listing topics: %v", err)
	}
	return tds.Names()
}

func (c *cluster) hasTopic(name string) bool { return slices.Contains(c.topics(), name) }

// readAll reads every record of topic, per partition in offset order, up to
// the end offsets at the time of the call.
func (c *cluster) readAll(topic string) map[int32][]*kgo.Record {
	c.t.Helper()
	ends := c.ends(topic)
	out := map[int32][]*kgo.Record{}
	parts := map[int32]kgo.Offset{}
	remaining := 0
	for p, e := range ends {
		if e > 0 {
			parts[p] = kgo.NewOffset().AtStart()
			remaining++
		}
	}
	if remaining == 0 {
		return out
	}
	cl, err := kgo.NewClient(append(c.sec, kgo.SeedBrokers(c.addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxBytes(64<<20))...)
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := map[int32]bool{}
	for len(done) < remaining {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			c.t.Fatalf("reading %s: got %d of %d partitions to their end before the deadline", topic, len(done), remaining)
		}
		fs.EachError(func(_ string, p int32, err error) { c.t.Logf("reading %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < ends[r.Partition] {
				out[r.Partition] = append(out[r.Partition], r)
			}
			if r.Offset >= ends[r.Partition]-1 {
				done[r.Partition] = true
			}
		})
	}
	return out
}

// testFlow is a flow between two test clusters with intervals short enough
// for tests.
func testFlow(src, tgt *cluster, srcAlias, tgtAlias string) Flow {
	f := DefaultFlow()
	f.SourceAlias, f.TargetAlias = srcAlias, tgtAlias
	f.Source.Brokers, f.Target.Brokers = []string{src.addr}, []string{tgt.addr}
	f.RefreshInterval = 500 * time.Millisecond
	f.HeartbeatInterval = 200 * time.Millisecond
	f.SessionTimeout = 6 * time.Second
	f.DeliveryTimeout = 10 * time.Second
	return f
}

// running is a Worker running in the test process.
type running struct {
	*Worker
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

func startWorker(t *testing.T, f Flow) *running {
	t.Helper()
	return startWorkerLogging(t, f, testLogger(t))
}

// startWorkerLogging is startWorker with the worker logging to logger.
func startWorkerLogging(t *testing.T, f Flow, logger *slog.Logger) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	w, err := New(f, Options{Logger: logger, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Worker: w, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := w.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(r.stop)
	return r
}

// stop cancels the worker and waits for Run to finish its shutdown.
func (r *running) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		panic("mirror worker did not stop within 60s")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("KDR_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return nil
}

// metricSum sums a metric's samples whose labels include want.
func metricSum(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	var sum float64
	for _, m := range seriesOf(t, reg, name, want) {
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// bucketSum is the cumulative count of histogram name's bucket le, summed
// over the series whose labels include want.
func bucketSum(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string, le float64) float64 {
	t.Helper()
	var n float64
	for _, m := range seriesOf(t, reg, name, want) {
		for _, b := range m.GetHistogram().GetBucket() {
			if b.GetUpperBound() == le {
				n += float64(b.GetCumulativeCount())
			}
		}
	}
	return n
}

// seriesOf is the series of name whose labels include want.
func seriesOf(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == k && l.GetValue() == v }) {
					continue metric
				}
			}
			out = append(out, m)
		}
	}
	return out
}

// checkFirstCopiesInOrder checks that, per partition, the first copy of
// each value comes in source order (values sort in production order).
func checkFirstCopiesInOrder(t *testing.T, got map[int32][]*kgo.Record) {
	t.Helper()
	for part, recs := range got {
		var firsts []string
		seen := map[string]bool{}
		for _, r := range recs {
			if v := string(r.Value); !seen[v] {
				seen[v] = true
				firsts = append(firsts, v)
			}
		}
		if !slices.IsSorted(firsts) {
			t.Errorf("partition %d: copies out of order", part)
		}
	}
}

// waitDistinct waits until topic on c holds n distinct records (by their
// id header), repeats aside.
func waitDistinct(t *testing.T, c *cluster, topic string, n int, within time.Duration) {
	t.Helper()
	kdrtest.Eventually(t, within, func() (bool, string) {
		seen := map[string]bool{}
		for _, id := range ids(c.readAll(topic)) {
			seen[id] = true
		}
		return len(seen) == n, fmt.Sprintf("%d of %d records copied to %s", len(seen), n, topic)
	})
}

// waitCount waits until topic on c holds n records.
func waitCount(t *testing.T, c *cluster, topic string, n int64, within time.Duration) {
	t.Helper()
	kdrtest.Eventually(t, within, func() (bool, string) {
		got := c.count(topic)
		return got == n, fmt.Sprintf("%s has %d records, want %d", topic, got, n)
	})
}
