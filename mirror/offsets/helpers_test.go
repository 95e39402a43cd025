package offsets

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror/mm2"
)

// cluster is one in-process kdr broker with a client.
type cluster struct {
	addr string
	cl   *kgo.Client
	adm  *kadm.Client
}

func startCluster(t *testing.T) cluster {
	t.Helper()
	b := kdrtest.StartBroker(t)
	cl := newClient(t, b.Addr())
	return cluster{addr: b.Addr(), cl: cl, adm: kadm.NewClient(cl)}
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t *testing.T, c cluster, topic string, partitions int32) {
	t.Helper()
	resp, err := c.adm.CreateTopic(ctxT(t), partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}
}

// fill produces n records to each partition of topic, valued
// "<topic>-<partition>-<i>".
func fill(t *testing.T, c cluster, topic string, partitions int32, n int) {
	t.Helper()
	p := newClient(t, c.addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for part := range partitions {
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: part, Value: fmt.Appendf(nil, "%s-%d-%d", topic, part, i)})
		}
	}
	if err := p.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// readRange returns partition p's records with offsets in [from, until),
// from the log start if from is below it.
func readRange(t *testing.T, c cluster, topic string, p int32, from, until int64) []*kgo.Record {
	t.Helper()
	if from >= until {
		return nil
	}
	cl := newClient(t, c.addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	var out []*kgo.Record
	ctx := ctxT(t)
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s/%d [%d, %d): %v after %d records", topic, p, from, until, err, len(out))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		for _, r := range fs.Records() {
			if r.Offset >= until {
				return out
			}
			out = append(out, r)
			if r.Offset == until-1 {
				return out
			}
		}
	}
}

// copier stands in for the copy engine: it copies source records to the
// same partition of the remote topic in batches, computes the pairs from
// the target's acknowledgements, and writes the Emitter's syncs to the
// offset-syncs topic on the source, as the engine will.
type copier struct {
	t                    *testing.T
	src, dst             cluster
	topic, remote, syncs string
	target, syncWriter   *kgo.Client
	emitters             map[int32]*Emitter
	pairs                map[int32][]Pair // every record copied, in order
	values               map[int32]map[int64]string
	written              int // syncs written
}

func newCopier(t *testing.T, src, dst cluster, topic, remote, syncTopic string) *copier {
	manual := kgo.RecordPartitioner(kgo.ManualPartitioner())
	return &copier{
		t: t, src: src, dst: dst, topic: topic, remote: remote, syncs: syncTopic,
		target: newClient(t, dst.addr, manual), syncWriter: newClient(t, src.addr, manual),
		emitters: map[int32]*Emitter{}, pairs: map[int32][]Pair{}, values: map[int32]map[int64]string{},
	}
}

// copy copies partition p's records in [from, until) that keep accepts (nil:
// all), batch records per produce.
func (c *copier) copy(p int32, from, until int64, batch int, keep func(int64) bool) {
	c.t.Helper()
	if c.emitters[p] == nil {
		c.emitters[p] = NewEmitter()
	}
	if c.values[p] == nil {
		c.values[p] = map[int64]string{}
	}
	var todo []*kgo.Record
	for _, r := range readRange(c.t, c.src, c.topic, p, from, until) {
		c.values[p][r.Offset] = string(r.Value)
		if keep == nil || keep(r.Offset) {
			todo = append(todo, r)
		}
	}
	ctx := ctxT(c.t)
	for len(todo) > 0 {
		n := min(batch, len(todo))
		var out []*kgo.Record
		for _, r := range todo[:n] {
			out = append(out, &kgo.Record{Topic: c.remote, Partition: p, Key: r.Key, Value: r.Value})
		}
		if err := c.target.ProduceSync(ctx, out...).FirstErr(); err != nil {
			c.t.Fatalf("copying to %s/%d: %v", c.remote, p, err)
		}
		pairs := make([]Pair, n)
		for i := range pairs {
			pairs[i] = Pair{Upstream: todo[i].Offset, Downstream: out[i].Offset}
		}
		c.pairs[p] = append(c.pairs[p], pairs...)
		var syncs []*kgo.Record
		for _, s := range c.emitters[p].Batch(pairs) {
			os := mm2.OffsetSync{Topic: c.topic, Partition: p, UpstreamOffset: s.Upstream, DownstreamOffset: s.Downstream}
			syncs = append(syncs, &kgo.Record{Topic: c.syncs, Partition: 0, Key: os.Key(), Value: os.Value()})
		}
		if err := c.syncWriter.ProduceSync(ctx, syncs...).FirstErr(); err != nil {
			c.t.Fatalf("writing syncs: %v", err)
		}
		c.written += len(syncs)
		todo = todo[n:]
	}
}

// restart gives partition p a new Emitter, as a restarted copier would.
func (c *copier) restart(p int32) { c.emitters[p] = NewEmitter() }

// want is the exact translation of u, by brute force over every pair.
func (c *copier) want(p int32, u int64) (int64, bool) {
	ps := c.pairs[p]
	i := sort.Search(len(ps), func(i int) bool { return ps[i].Upstream >= u })
	switch {
	case len(ps) == 0:
		return 0, false
	case i < len(ps) && (i > 0 || u >= ps[0].Upstream):
		return ps[i].Downstream, true
	case i == len(ps) && u == ps[i-1].Upstream+1:
		return ps[i-1].Downstream + 1, true
	}
	return 0, false
}

// remaining is the values of the records copied at or after u, in target
// order: what a consumer resuming on the target must read.
func (c *copier) remaining(p int32, u int64) []string {
	var out []string
	for _, pr := range c.pairs[p] {
		if pr.Upstream >= u {
			out = append(out, c.values[p][pr.Upstream])
		}
	}
	return out
}

// metric returns the value of the series of name whose labels include
// labels ("k=v" pairs), or -1 if there is none.
func metric(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for _, kv := range labels {
				k, v, _ := strings.Cut(kv, "=")
				if have[k] != v {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}
