package compat_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// ackedSet records the values a producer had acknowledged.
type ackedSet struct {
	mu   sync.Mutex
	vals []string
}

func (a *ackedSet) add(v string) { a.mu.Lock(); a.vals = append(a.vals, v); a.mu.Unlock() }
func (a *ackedSet) all() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.vals...)
}

// TestCompatClusterRollingRestart runs a 3-broker cluster with an RF=3
// topic, described through kadm and kcat -L, while a franz-go and a sarama
// producer (acks=all) write and a franz-go and a sarama consumer group read;
// the brokers are stopped and restarted one at a time. Both groups must end
// up with every record either producer had acknowledged.
func TestCompatClusterRollingRestart(t *testing.T) {
	c := kdrtest.StartCluster(t, kdrBin, 3)
	const topic = "rolling"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	resp, err := c.Admin().CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	for p := int32(0); p < 3; p++ {
		c.WaitISR(topic, p, 3)
	}
	details, err := c.Admin().ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range details[topic].Partitions {
		if len(p.Replicas) != 3 {
			t.Fatalf("kadm: partition %d has replicas %v, want 3", p.Partition, p.Replicas)
		}
	}
	if _, err := exec.LookPath("kcat"); err == nil {
		out, err := exec.Command("kcat", "-b", strings.Join(c.Bootstrap(), ","), "-L", "-t", topic, "-m", "10").CombinedOutput()
		if err != nil {
			t.Fatalf("kcat -L: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "3 brokers:") || strings.Count(string(out), "replicas: ") != 3 {
			t.Fatalf("kcat -L does not show 3 brokers and 3 partitions:\n%s", out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			_, rest, ok := strings.Cut(line, "replicas: ")
			replicas, _, _ := strings.Cut(rest, ", isrs")
			if ok && strings.Count(replicas, ",") != 2 {
				t.Fatalf("kcat -L partition without 3 replicas: %q", line)
			}
		}
	}

	seeds := strings.Join(c.Bootstrap(), ",")
	franzSeen, saramaSeen := newValueSet(), newValueSet()
	franzGroup := startFranzMember(t, seeds, "rolling-franz", topic, franzSeen)
	saramaGroup := startSaramaMember(t, seeds, "rolling-sarama", topic, saramaSeen)

	var acked ackedSet
	pctx, stopProducing := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // franz-go, idempotent, acks=all
		defer wg.Done()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(time.Minute))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		for i := 0; pctx.Err() == nil; i++ {
			v := fmt.Sprintf("franz-%06d", i)
			if err := cl.ProduceSync(pctx, &kgo.Record{Key: []byte(v[len(v)-2:]), Value: []byte(v)}).FirstErr(); err == nil {
				acked.add(v)
			}
		}
	}()
	go func() { // sarama, acks=all
		defer wg.Done()
		cfg := saramaConfig()
		cfg.Producer.Retry.Max = 50
		cfg.Producer.Retry.Backoff = 200 * time.Millisecond
		prod, err := sarama.NewSyncProducer(c.Bootstrap(), cfg)
		if err != nil {
			t.Error(err)
			return
		}
		defer prod.Close()
		for i := 0; pctx.Err() == nil; i++ {
			v := fmt.Sprintf("sarama-%06d", i)
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(v[len(v)-2:]), Value: sarama.StringEncoder(v)}); err == nil {
				acked.add(v)
			}
		}
	}()

	progress := func(what string) {
		n := len(acked.all())
		kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
			return len(acked.all()) >= n+100, fmt.Sprintf("%s: %d records acknowledged since, want 100", what, len(acked.all())-n)
		})
	}
	progress("before the rolling restart")
	for id := int32(1); id <= 3; id++ {
		c.Stop(id)
		progress(fmt.Sprintf("with broker %d stopped", id))
		c.Restart(id)
		for p := int32(0); p < 3; p++ {
			c.WaitISR(topic, p, 3)
		}
	}
	progress("after the rolling restart")
	stopProducing()
	wg.Wait()

	want := acked.all()
	for name, seen := range map[string]*valueSet{"franz-go group": franzSeen, "sarama group": saramaSeen} {
		kdrtest.Eventually(t, 90*time.Second, func() (bool, string) {
			missing := 0
			var first string
			seen.mu.Lock()
			for _, v := range want {
				if seen.m[v] == 0 {
					if missing == 0 {
						first = v
					}
					missing++
				}
			}
			seen.mu.Unlock()
			return missing == 0, fmt.Sprintf("%s: %d of %d acknowledged records not consumed (first %s)", name, missing, len(want), first)
		})
	}
	t.Logf("rolling restart: %d records acknowledged by the two producers, all consumed by both groups", len(want))
	franzGroup.stop(t)
	saramaGroup.stop(t)
}
