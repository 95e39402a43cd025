package broker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t *testing.T, adm *kadm.Client, name string, partitions int32, configs map[string]*string) kadm.CreateTopicResponse {
	t.Helper()
	resp, err := adm.CreateTopic(ctxT(t), partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
	return resp
}

func str(s string) *string { return &s }

// consumeAll reads n records from the topic's beginning.
func consumeAll(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	ctx := ctxT(t)
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", tp, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func TestBrokerProduceConsumeEveryCodecKeepsKeyOrder(t *testing.T) {
	b := kdrtest.StartBroker(t)
	adm := kadm.NewClient(client(t, b.Addr()))
	codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			createTopic(t, adm, topic, 3, nil)
			p := client(t, b.Addr(), kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
			var recs []*kgo.Record
			for i := 0; i < 200; i++ {
				recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint("key-", i%10)), Value: []byte(fmt.Sprintf("%d:%0100d", i/10, i))})
			}
			if err := p.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			got := consumeAll(t, b.Addr(), topic, 200)
			if len(got) != 200 {
				t.Fatalf("consumed %d records, want 200", len(got))
			}
			next := map[string]int{}
			partOf := map[string]int32{}
			for _, r := range got {
				k := string(r.Key)
				var seq int
				fmt.Sscanf(string(r.Value), "%d:", &seq)
				if seq != next[k] {
					t.Fatalf("key %s: got value #%d, want #%d (order broken)", k, seq, next[k])
				}
				next[k]++
				if p, ok := partOf[k]; ok && p != r.Partition {
					t.Fatalf("key %s in partitions %d and %d", k, p, r.Partition)
				}
				partOf[k] = r.Partition
			}
			for k, n := range next {
				if n != 20 {
					t.Fatalf("key %s: %d values, want 20", k, n)
				}
			}
		})
	}
}

func TestBrokerListOffsetsEarliestLatestTimestampMax(t *testing.T) {
	b := kdrtest.StartBroker(t)
	cl := client(t, b.Addr(), kgo.DefaultProduceTopic("ts"))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, "ts", 1, nil)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := 0; i < 10; i++ {
		ts := base.Add(time.Duration(i) * time.Second)
		if i == 6 {
			ts = base.Add(time.Minute) // the max timestamp is not the last record
		}
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte{byte(i)}, Timestamp: ts}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctxT(t)
	start, err := adm.ListStartOffsets(ctx, "ts")
	if err != nil {
		t.Fatal(err)
	}
	end, _ := adm.ListEndOffsets(ctx, "ts")
	byTime, _ := adm.ListOffsetsAfterMilli(ctx, base.Add(3500*time.Millisecond).UnixMilli(), "ts")
	if o, _ := start.Lookup("ts", 0); o.Offset != 0 {
		t.Fatalf("earliest %d, want 0", o.Offset)
	}
	if o, _ := end.Lookup("ts", 0); o.Offset != 10 {
		t.Fatalf("latest %d, want 10", o.Offset)
	}
	if o, _ := byTime.Lookup("ts", 0); o.Offset != 4 {
		t.Fatalf("first offset at or after +3.5s = %d, want 4", o.Offset)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "ts"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -3
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Topics[0].Partitions[0]; p.Offset != 6 || p.Timestamp != base.Add(time.Minute).UnixMilli() {
		t.Fatalf("max timestamp: offset %d ts %d, want 6 at %d", p.Offset, p.Timestamp, base.Add(time.Minute).UnixMilli())
	}
}

func TestBrokerFetchLongPollWakesOnProduce(t *testing.T) {
	b := kdrtest.StartBroker(t)
	adm := kadm.NewClient(client(t, b.Addr()))
	createTopic(t, adm, "lp", 1, nil)
	fetchSent := make(chan struct{}, 1)
	cons := client(t, b.Addr(), kgo.ConsumeTopics("lp"), kgo.FetchMaxWait(20*time.Second), kgo.FetchMinBytes(1),
		kgo.WithHooks(fetchWriteHook(func() {
			select {
			case fetchSent <- struct{}{}:
			default:
			}
		})))
	got := make(chan *kgo.Record, 1)
	go func() {
		fs := cons.PollFetches(context.Background())
		if rs := fs.Records(); len(rs) > 0 {
			got <- rs[0]
		}
	}()
	// The fetch is parked in the broker (20 s max wait); a produce must
	// wake it long before that.
	prod := client(t, b.Addr(), kgo.DefaultProduceTopic("lp"))
	<-fetchSent // the fetch is on its way; with 20 s max wait only a wake-up answers it quickly
	if err := prod.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("wake")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if string(r.Value) != "wake" || r.Offset != 0 {
			t.Fatalf("got %q at %d", r.Value, r.Offset)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long-polling fetch was not woken by the produce")
	}
}

func TestBrokerTopicAdminErrors(t *testing.T) {
	b := kdrtest.StartBroker(t)
	cl := client(t, b.Addr())
	adm := kadm.NewClient(cl)
	ctx := ctxT(t)
	createTopic(t, adm, "a", 2, map[string]*string{"retention.ms": str("60000")})
	for name, c := range map[string]struct {
		topic   string
		configs map[string]*string
		want    error
	}{
		"exists":      {"a", nil, kerr.TopicAlreadyExists},
		"bad name":    {"bad/name", nil, kerr.InvalidTopicException},
		"bad config":  {"b", map[string]*string{"retention.ms": str("soon")}, kerr.InvalidConfig},
		"unknown key": {"b", map[string]*string{"no.such.config": str("1")}, kerr.InvalidConfig},
	} {
		resp, err := adm.CreateTopic(ctx, 1, 1, c.configs, c.topic)
		if err == nil {
			err = resp.Err
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	if _, err := adm.CreatePartitions(ctx, 1, "a"); err != nil {
		t.Fatal(err)
	}
	td, err := adm.ListTopics(ctx, "a")
	if err != nil || len(td["a"].Partitions) != 3 {
		t.Fatalf("after CreatePartitions: %v, %d partitions", err, len(td["a"].Partitions))
	}
	alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: str("compact")}, {Op: kadm.DeleteConfig, Name: "retention.ms"}}, "a")
	if err != nil || alter[0].Err != nil {
		t.Fatalf("alter: %v %v", err, alter)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := rc.On("a", nil)
	values := map[string]string{}
	sources := map[string]kmsg.ConfigSource{}
	for _, c := range cfg.Configs {
		values[c.Key] = c.MaybeValue()
		sources[c.Key] = c.Source
	}
	if values["cleanup.policy"] != "compact" || sources["cleanup.policy"] != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("cleanup.policy = %q from %v", values["cleanup.policy"], sources["cleanup.policy"])
	}
	if values["retention.ms"] != "604800000" || sources["retention.ms"] != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("retention.ms = %q from %v, want the default", values["retention.ms"], sources["retention.ms"])
	}
	if del, err := adm.DeleteTopics(ctx, "a"); err != nil || del["a"].Err != nil {
		t.Fatalf("delete: %v %v", err, del)
	}
	if del, _ := adm.DeleteTopics(ctx, "a"); !errors.Is(del["a"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("second delete: %v", del["a"].Err)
	}
}

func TestBrokerDeleteRecordsMovesLogStart(t *testing.T) {
	b := kdrtest.StartBroker(t)
	cl := client(t, b.Addr(), kgo.DefaultProduceTopic("dr"))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, "dr", 1, nil)
	for i := 0; i < 10; i++ {
		cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte{byte(i)}})
	}
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "dr", Partition: 0, At: 7})
	resp, err := adm.DeleteRecords(ctxT(t), os)
	if err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	b.Restart()
	start, _ := adm.ListStartOffsets(ctxT(t), "dr")
	if o, _ := start.Lookup("dr", 0); o.Offset != 7 {
		t.Fatalf("log start after restart %d, want 7", o.Offset)
	}
	got := consumeAll(t, b.Addr(), "dr", 3)
	if got[0].Offset != 7 || got[0].Value[0] != 7 {
		t.Fatalf("first record %d at %d", got[0].Value[0], got[0].Offset)
	}
}

func TestBrokerAutoCreateTopicsOnMetadata(t *testing.T) {
	b := kdrtest.StartBroker(t)
	cl := client(t, b.Addr(), kgo.DefaultProduceTopic("auto"), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	td, err := kadm.NewClient(cl).ListTopics(ctxT(t), "auto")
	if err != nil || len(td["auto"].Partitions) != 1 {
		t.Fatalf("auto-created topic: %v %+v", err, td["auto"])
	}
	off := kdrtest.StartBroker(t, kdrtest.WithConfig(func(c *broker.Config) { c.AutoCreateTopics = false }))
	md, err := kadm.NewClient(client(t, off.Addr())).Metadata(ctxT(t), "nope")
	if err != nil || !errors.Is(md.Topics["nope"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("with auto-create off: %v %v", err, md.Topics["nope"].Err)
	}
}

// fetchWriteHook calls fn whenever the client writes a Fetch request.
type fetchWriteHook func()

func (h fetchWriteHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 1 && err == nil {
		h()
	}
}
