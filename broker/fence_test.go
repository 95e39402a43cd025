package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/internal/recordbatch"
)

// fenceConfigs is the kadm alteration that fences (or, with fenced false,
// unfences) at epoch.
func fenceConfigs(fenced bool, epoch int64, reason string) []kadm.AlterConfig {
	return []kadm.AlterConfig{
		{Name: "kdr.fenced", Value: kadm.StringPtr(fmt.Sprint(fenced))},
		{Name: "kdr.fence.epoch", Value: kadm.StringPtr(fmt.Sprint(epoch))},
		{Name: "kdr.fence.reason", Value: kadm.StringPtr(reason)},
	}
}

// alterFence alters the cluster-wide broker resource and returns its
// answer.
func alterFence(t *testing.T, adm *kadm.Client, validate bool, cfgs []kadm.AlterConfig) kadm.AlterConfigsResponse {
	t.Helper()
	alter := adm.AlterBrokerConfigs
	if validate {
		alter = adm.ValidateAlterBrokerConfigs
	}
	resps, err := alter(ctxT(t), cfgs)
	if err != nil {
		t.Fatalf("alter broker configs: %v", err)
	}
	if len(resps) != 1 || resps[0].Name != "" {
		t.Fatalf("alter broker configs answered %+v, want one response for resource \"\"", resps)
	}
	return resps[0]
}

// describedFence is the fence as DescribeConfigs of the cluster-wide broker
// resource shows it, "fenced/epoch/reason", and the source of kdr.fenced.
func describedFence(t *testing.T, adm *kadm.Client) (string, kmsg.ConfigSource) {
	t.Helper()
	rcs, err := adm.DescribeBrokerConfigs(ctxT(t))
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("describe broker configs: %v %+v", err, rcs)
	}
	vals := map[string]string{}
	var src kmsg.ConfigSource
	for _, c := range rcs[0].Configs {
		if strings.HasPrefix(c.Key, "kdr.fence") {
			vals[c.Key] = c.MaybeValue()
			if c.Key == "kdr.fenced" {
				src = c.Source
			}
		}
	}
	return vals["kdr.fenced"] + "/" + vals["kdr.fence.epoch"] + "/" + vals["kdr.fence.reason"], src
}

// produceRaw sends one acks=all record to topic/p at the broker at addr
// itself, without retries, and returns the partition's answer.
func produceRaw(t *testing.T, addr, topic string, p int32) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	batch, err := recordbatch.Build([]recordbatch.Record{{Value: []byte("raw")}}, recordbatch.Options{TimestampMs: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = p, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := kdrtest.BrokerRequest(ctxT(t), addr, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
}

// produceFenced produces one record with cl and checks it fails fast with
// POLICY_VIOLATION.
func produceFenced(t *testing.T, cl *kgo.Client, topic string) {
	t.Helper()
	start := time.Now()
	err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Value: []byte("refused")}).FirstErr()
	if !errors.Is(err, kerr.PolicyViolation) {
		t.Fatalf("produce to %s while fenced: %v, want POLICY_VIOLATION", topic, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a fenced produce took %s to fail: it was retried", took)
	}
}

func metricsText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBrokerFenceSingleNode fences a single broker through kadm (the
// standard IncrementalAlterConfigs and AlterConfigs path): franz-go and
// sarama producers fail fast with POLICY_VIOLATION and the fence message,
// consumers still read and commit, the mirror's client id and the internal
// topics are exempt, the fence survives a restart, a stale epoch cannot
// lift it and an equal or newer one can.
func TestBrokerFenceSingleNode(t *testing.T) {
	b := kdrtest.StartBroker(t, kdrtest.WithConfig(func(c *broker.Config) { c.MetricsListen = "127.0.0.1:0" }))
	addr := b.Addr()
	adm := kadm.NewClient(client(t, addr))
	createTopic(t, adm, "orders", 2, nil)
	createTopic(t, adm, "heartbeats", 1, nil)
	createTopic(t, adm, "mm2-offset-syncs.west.internal", 1, nil)
	producer := client(t, addr, kgo.DefaultProduceTopic("orders"))
	if err := producer.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got, src := describedFence(t, adm); got != "false/0/" || src != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("fence before any change: %s (source %v)", got, src)
	}

	// Validate-only changes nothing.
	if r := alterFence(t, adm, true, fenceConfigs(true, 3, "failover to west")); r.Err != nil {
		t.Fatalf("validate fence: %v %s", r.Err, r.ErrMessage)
	}
	if got, _ := describedFence(t, adm); got != "false/0/" {
		t.Fatalf("validate-only changed the fence: %s", got)
	}
	if err := producer.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("after-validate")}).FirstErr(); err != nil {
		t.Fatalf("produce after a validate-only fence: %v", err)
	}

	if r := alterFence(t, adm, false, fenceConfigs(true, 3, "failover to west")); r.Err != nil {
		t.Fatalf("fence: %v %s", r.Err, r.ErrMessage)
	}
	if got, src := describedFence(t, adm); got != "true/3/failover to west" || src != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("fence described as %s (source %v)", got, src)
	}
	produceFenced(t, producer, "orders")
	want := "cluster fenced by failover epoch 3: failover to west; produce to the active cluster"
	if p := produceRaw(t, addr, "orders", 1); p.ErrorCode != kerr.PolicyViolation.Code || p.ErrorMessage == nil || *p.ErrorMessage != want {
		t.Fatalf("raw produce while fenced: code %d message %v, want %d %q", p.ErrorCode, p.ErrorMessage, kerr.PolicyViolation.Code, want)
	}

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	sp, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	start := time.Now()
	_, _, err = sp.SendMessage(&sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder("sarama")})
	if !errors.Is(err, sarama.ErrPolicyViolation) || time.Since(start) > 5*time.Second {
		t.Fatalf("sarama produce while fenced: %v after %s, want POLICY_VIOLATION at once", err, time.Since(start))
	}

	// Exempt: the mirror's clients, and the internal topics from anyone.
	mirror := client(t, addr, kgo.ClientID("kdr-mirror-producer"))
	if err := mirror.ProduceSync(ctxT(t), &kgo.Record{Topic: "orders", Value: []byte("mirrored")}).FirstErr(); err != nil {
		t.Fatalf("mirror produce while fenced: %v", err)
	}
	for _, topic := range []string{"heartbeats", "mm2-offset-syncs.west.internal"} {
		if err := producer.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Value: []byte("internal")}).FirstErr(); err != nil {
			t.Fatalf("produce to %s while fenced: %v", topic, err)
		}
	}

	// Consumers read and commit.
	consumer := client(t, addr, kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("drain"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	var got int
	for got < 3 {
		fs := consumer.PollFetches(ctxT(t))
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", tp, p, err) })
		got += len(fs.Records())
	}
	if err := consumer.CommitUncommittedOffsets(ctxT(t)); err != nil {
		t.Fatalf("commit while fenced: %v", err)
	}
	offs, err := adm.FetchOffsets(ctxT(t), "drain")
	if err != nil || offs.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, offs.Error())
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != 3 {
		t.Fatalf("committed offsets sum to %d, want 3", committed)
	}

	m := metricsText(t, b.MetricsAddr())
	for _, line := range []string{"kdr_broker_fenced 1", "kdr_broker_fence_epoch 3", `kdr_broker_fenced_produce_allowed_total{exception="mirror_client"} 1`,
		`kdr_broker_fenced_produce_allowed_total{exception="internal_topic"} 2`} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
	if !strings.Contains(m, "kdr_broker_fenced_produce_rejections_total ") || strings.Contains(m, "kdr_broker_fenced_produce_rejections_total 0\n") {
		t.Errorf("no fenced produce rejections counted")
	}

	// Refused changes: a stale epoch, a missing epoch, a specific broker,
	// a static broker config.
	if r := alterFence(t, adm, false, fenceConfigs(false, 2, "")); !errors.Is(r.Err, kerr.InvalidConfig) || !strings.Contains(r.ErrMessage, "epoch 2") || !strings.Contains(r.ErrMessage, "epoch 3") {
		t.Fatalf("unfence at a stale epoch: %v %q", r.Err, r.ErrMessage)
	}
	if r := alterFence(t, adm, false, fenceConfigs(false, 3, "")[:1]); !errors.Is(r.Err, kerr.InvalidConfig) || !strings.Contains(r.ErrMessage, "kdr.fence.epoch") {
		t.Fatalf("unfence without an epoch: %v %q", r.Err, r.ErrMessage)
	}
	resps, err := adm.AlterBrokerConfigs(ctxT(t), fenceConfigs(false, 9, ""), 1)
	if err != nil || len(resps) != 1 || !errors.Is(resps[0].Err, kerr.InvalidRequest) || !strings.Contains(resps[0].ErrMessage, `resource ""`) {
		t.Fatalf("unfence on broker 1's resource: %v %+v", err, resps)
	}
	if r := alterFence(t, adm, false, []kadm.AlterConfig{{Name: "log.retention.ms", Value: kadm.StringPtr("1")}}); !errors.Is(r.Err, kerr.InvalidRequest) || !strings.Contains(r.ErrMessage, "not dynamic") {
		t.Fatalf("altering a static broker config: %v %q", r.Err, r.ErrMessage)
	}

	b.Restart()
	adm = kadm.NewClient(client(t, addr))
	if got, _ := describedFence(t, adm); got != "true/3/failover to west" {
		t.Fatalf("fence after restart: %s", got)
	}
	produceFenced(t, client(t, addr), "orders")

	// The legacy AlterConfigs API replaces: only the epoch given unfences.
	resps, err = adm.AlterBrokerConfigsState(ctxT(t), []kadm.AlterConfig{{Name: "kdr.fence.epoch", Value: kadm.StringPtr("3")}})
	if err != nil || len(resps) != 1 || resps[0].Err != nil {
		t.Fatalf("unfence at the same epoch through AlterConfigs: %v %+v", err, resps)
	}
	if got, _ := describedFence(t, adm); got != "false/3/" {
		t.Fatalf("fence after unfence: %s", got)
	}
	// The producer that was refused works again, sequences intact.
	if err := producer.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("after-unfence")}).FirstErr(); err != nil {
		t.Fatalf("produce after unfence: %v", err)
	}

	// A newer failover fences and lifts again.
	if r := alterFence(t, adm, false, fenceConfigs(true, 4, "drill")); r.Err != nil {
		t.Fatalf("fence at epoch 4: %v %s", r.Err, r.ErrMessage)
	}
	produceFenced(t, producer, "orders")
	if r := alterFence(t, adm, false, fenceConfigs(false, 5, "")); r.Err != nil {
		t.Fatalf("unfence at epoch 5: %v %s", r.Err, r.ErrMessage)
	}
	if err := producer.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("after-second-unfence")}).FirstErr(); err != nil {
		t.Fatalf("produce after the second unfence: %v", err)
	}
}

// describeFenceAt asks the broker at addr itself for the fence it enforces.
func describeFenceAt(ctx context.Context, addr string) (string, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ConfigNames = kmsg.ConfigResourceTypeBroker, []string{"kdr.fenced", "kdr.fence.epoch"}
	req.Resources = append(req.Resources, rr)
	resp, err := kdrtest.BrokerRequest(ctx, addr, req)
	if err != nil {
		return "", err
	}
	var vals []string
	for _, c := range resp.(*kmsg.DescribeConfigsResponse).Resources[0].Configs {
		vals = append(vals, c.Name+"="+*c.Value)
	}
	return strings.Join(vals, ","), nil
}

// waitFencedEverywhere waits until every broker of c reports want.
func waitFencedEverywhere(t *testing.T, c *kdrtest.Cluster, want string) {
	t.Helper()
	for _, addr := range c.Bootstrap() {
		kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			got, err := describeFenceAt(ctx, addr)
			return got == want, fmt.Sprintf("broker %s: %s %v, want %s", addr, got, err, want)
		})
	}
}

// TestBrokerClusterFenceSurvivesRestarts fences a 3-broker cluster through
// a broker that is not the controller (the change is forwarded through the
// metadata quorum), checks every broker refuses produces, restarts one
// broker and then the whole cluster after SIGKILL and checks the fence holds
// (a produce started right after the restart, retried by franz-go through
// the cluster's recovery, must end in POLICY_VIOLATION, never succeed), and
// lifts it with a newer epoch after a stale one is refused.
func TestBrokerClusterFenceSurvivesRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := kdrtest.StartCluster(t, kdrtest.Binary(t), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	resp, err := c.Admin().CreateTopic(ctx, 3, 3, nil, "orders")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	for p := int32(0); p < 3; p++ {
		c.WaitISR("orders", p, 3)
	}
	meta, err := c.Admin().BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var follower string
	for id := int32(1); id <= 3; id++ {
		if id != meta.Controller {
			follower = c.Brokers[c.Index(id)].Addr()
			break
		}
	}
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType = kmsg.ConfigResourceTypeBroker
	for _, kv := range [][2]string{{"kdr.fenced", "true"}, {"kdr.fence.epoch", "7"}, {"kdr.fence.reason", "failover to west"}} {
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Value = kv[0], kmsg.StringPtr(kv[1])
		rr.Configs = append(rr.Configs, cfg)
	}
	req.Resources = append(req.Resources, rr)
	raw, err := kdrtest.BrokerRequest(ctx, follower, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := raw.(*kmsg.IncrementalAlterConfigsResponse).Resources[0]; r.ErrorCode != 0 {
		t.Fatalf("fence through broker %s: code %d %v", follower, r.ErrorCode, r.ErrorMessage)
	}
	waitFencedEverywhere(t, c, "kdr.fenced=true,kdr.fence.epoch=7")
	producer := client(t, c.Bootstrap()[0], kgo.DefaultProduceTopic("orders"), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceFenced(t, producer, "orders")
	mirror := client(t, c.Bootstrap()[0], kgo.ClientID("kdr-mirror-producer"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := mirror.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("mirrored")}).FirstErr(); err != nil {
		t.Fatalf("mirror produce while fenced: %v", err)
	}

	c.Kill(2)
	c.Restart(2)
	waitFencedEverywhere(t, c, "kdr.fenced=true,kdr.fence.epoch=7")

	for id := int32(1); id <= 3; id++ {
		c.Kill(id)
	}
	for id := int32(1); id <= 3; id++ {
		c.Restart(id)
	}
	// Produce at once, while the quorum re-forms: franz-go retries the
	// retriable errors of a recovering cluster; the first definite answer
	// must be the fence.
	produceCtx, produceCancel := context.WithTimeout(ctx, 45*time.Second)
	defer produceCancel()
	early := client(t, c.Bootstrap()[0], kgo.DefaultProduceTopic("orders"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := early.ProduceSync(produceCtx, &kgo.Record{Value: []byte("early")}).FirstErr(); !errors.Is(err, kerr.PolicyViolation) {
		t.Fatalf("produce right after the full restart: %v, want POLICY_VIOLATION", err)
	}
	c.WaitBrokers(3)
	waitFencedEverywhere(t, c, "kdr.fenced=true,kdr.fence.epoch=7")
	produceFenced(t, early, "orders")

	if r := alterFence(t, c.Admin(), false, fenceConfigs(false, 6, "")); !errors.Is(r.Err, kerr.InvalidConfig) {
		t.Fatalf("unfence at stale epoch 6: %v %s", r.Err, r.ErrMessage)
	}
	if r := alterFence(t, c.Admin(), false, fenceConfigs(false, 8, "failed back")); r.Err != nil {
		t.Fatalf("unfence at epoch 8: %v %s", r.Err, r.ErrMessage)
	}
	waitFencedEverywhere(t, c, "kdr.fenced=false,kdr.fence.epoch=8")
	if err := early.ProduceSync(ctx, &kgo.Record{Value: []byte("after-unfence")}).FirstErr(); err != nil {
		t.Fatalf("produce after unfence: %v", err)
	}
}
