package compat_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

func TestCompatKafkaGoCodecsAndKeyOrder(t *testing.T) {
	proc := startBroker(t)
	for name, codec := range map[string]compress.Compression{"none": 0, "gzip": compress.Gzip, "snappy": compress.Snappy, "lz4": compress.Lz4, "zstd": compress.Zstd} {
		t.Run(name, func(t *testing.T) {
			topic := "kafkago-" + name
			createTopic(t, proc.Addr(), topic, 3)
			w := &kafka.Writer{Addr: kafka.TCP(proc.Addr()), Topic: topic, Balancer: &kafka.Hash{}, Compression: codec,
				RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond,
				// A transport per writer: the shared default one caches
				// metadata for seconds and would not know the new topic.
				Transport: &kafka.Transport{}}
			defer w.Close()
			want := keyedRecords(name)
			var msgs []kafka.Message
			for _, r := range want {
				msgs = append(msgs, kafka.Message{Key: []byte(r.Key), Value: []byte(r.Value)})
			}
			if err := w.WriteMessages(ctxT(t), msgs...); err != nil {
				t.Fatal(err)
			}
			// Read each partition up to its log end offset: stopping on a
			// count, not on a quiet timeout, so a missing record fails.
			ends, err := admin(t, proc.Addr()).ListEndOffsets(ctxT(t), topic)
			if err != nil {
				t.Fatal(err)
			}
			var got []kv
			for p := 0; p < 3; p++ {
				end, ok := ends.Lookup(topic, int32(p))
				if !ok || end.Err != nil {
					t.Fatalf("end offset of partition %d: %v", p, end.Err)
				}
				r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{proc.Addr()}, Topic: topic, Partition: p, MaxWait: 200 * time.Millisecond})
				r.SetOffset(kafka.FirstOffset)
				for next := int64(0); next < end.Offset; {
					m, err := r.ReadMessage(ctxT(t))
					if err != nil {
						t.Fatalf("partition %d at offset %d of %d: %v", p, next, end.Offset, err)
					}
					if m.Offset != next {
						t.Fatalf("partition %d: got offset %d, want %d", p, m.Offset, next)
					}
					next++
					got = append(got, kv{string(m.Key), string(m.Value), int32(m.Partition)})
				}
				r.Close()
			}
			checkKeyed(t, "kafka-go", want, got)
			checkKeyed(t, "franz-go reading kafka-go's batches", want, readAllFranz(t, proc.Addr(), topic, len(want)))
		})
	}
}

type kafkaGoMember struct {
	r      *kafka.Reader
	cancel context.CancelFunc
	done   chan struct{}
}

func startKafkaGoMember(t *testing.T, addr, group, topic string, seen *valueSet) member {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: group, Topic: topic, MaxWait: 200 * time.Millisecond,
		StartOffset: kafka.FirstOffset, SessionTimeout: 6 * time.Second, HeartbeatInterval: 300 * time.Millisecond,
		RebalanceTimeout: 5 * time.Second, CommitInterval: 0, GroupBalancers: []kafka.GroupBalancer{kafka.RangeGroupBalancer{}}})
	ctx, cancel := context.WithCancel(context.Background())
	m := &kafkaGoMember{r: r, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			msg, err := r.FetchMessage(ctx)
			if err != nil {
				return
			}
			seen.add(string(msg.Value))
			if err := r.CommitMessages(context.Background(), msg); err != nil && ctx.Err() == nil {
				t.Logf("kafka-go commit: %v", err)
			}
		}
	}()
	return m
}

func (m *kafkaGoMember) stop(t *testing.T) {
	m.cancel()
	<-m.done
	if err := m.r.Close(); err != nil {
		t.Errorf("kafka-go close: %v", err)
	}
}

func TestCompatKafkaGoGroupRebalanceAndRestart(t *testing.T) {
	runGroupScenario(t, startKafkaGoMember)
}
