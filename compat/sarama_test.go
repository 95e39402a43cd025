package compat_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_8_0_0
	c.ClientID = "kdr-compat-sarama"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Partitioner = sarama.NewHashPartitioner
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.MaxWaitTime = 200 * time.Millisecond
	c.Consumer.Group.Session.Timeout = 6 * time.Second
	c.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	c.Consumer.Group.Rebalance.Timeout = 5 * time.Second
	c.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	return c
}

func TestCompatSaramaCodecsAndKeyOrder(t *testing.T) {
	proc := startBroker(t)
	for name, codec := range map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD} {
		t.Run(name, func(t *testing.T) {
			topic := "sarama-" + name
			createTopic(t, proc.Addr(), topic, 3)
			cfg := saramaConfig()
			cfg.Producer.Compression = codec
			prod, err := sarama.NewSyncProducer([]string{proc.Addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			want := keyedRecords(name)
			var msgs []*sarama.ProducerMessage
			for _, r := range want {
				msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.Key), Value: sarama.StringEncoder(r.Value)})
			}
			if err := prod.SendMessages(msgs); err != nil {
				t.Fatal(err)
			}
			// Read back with sarama's own partition consumers.
			cons, err := sarama.NewConsumer([]string{proc.Addr()}, saramaConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			msgs2 := make(chan *sarama.ConsumerMessage, len(want))
			for p := int32(0); p < 3; p++ {
				pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
				go func() {
					for m := range pc.Messages() {
						msgs2 <- m
					}
				}()
			}
			// Per-key order is per partition, so interleaving the
			// partitions' streams keeps it.
			var got []kv
			timeout := time.After(30 * time.Second)
			for len(got) < len(want) {
				select {
				case m := <-msgs2:
					got = append(got, kv{string(m.Key), string(m.Value), m.Partition})
				case <-timeout:
					t.Fatalf("sarama read %d of %d records", len(got), len(want))
				}
			}
			checkKeyed(t, "sarama", want, got)
			checkKeyed(t, "franz-go reading sarama's batches", want, readAllFranz(t, proc.Addr(), topic, len(want)))
		})
	}
}

type saramaMember struct {
	group  sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
}

type saramaHandler struct{ seen *valueSet }

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.seen.add(string(m.Value))
		s.MarkMessage(m, "")
	}
	return nil
}

func startSaramaMember(t *testing.T, addr, group, topic string, seen *valueSet) member {
	g, err := sarama.NewConsumerGroup(strings.Split(addr, ","), group, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &saramaMember{group: g, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, saramaHandler{seen}); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) && ctx.Err() == nil {
				t.Logf("sarama consume: %v", err)
			}
		}
	}()
	return m
}

func (m *saramaMember) stop(t *testing.T) {
	m.cancel()
	<-m.done
	// Close commits marked offsets and leaves the group.
	if err := m.group.Close(); err != nil {
		t.Errorf("sarama close: %v", err)
	}
}

func TestCompatSaramaGroupRebalanceAndRestart(t *testing.T) {
	runGroupScenario(t, startSaramaMember)
}
