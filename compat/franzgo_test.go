package compat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCompatFranzGoCodecsAndKeyOrder(t *testing.T) {
	proc := startBroker(t)
	for name, codec := range map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()} {
		t.Run(name, func(t *testing.T) {
			topic := "franz-" + name
			createTopic(t, proc.Addr(), topic, 3)
			cl, err := kgo.NewClient(kgo.SeedBrokers(proc.Addr()), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			want := keyedRecords(name)
			for _, r := range want {
				cl.Produce(ctxT(t), &kgo.Record{Key: []byte(r.Key), Value: []byte(r.Value)}, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Errorf("produce: %v", err)
					}
				})
			}
			if err := cl.Flush(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			checkKeyed(t, "franz-go", want, readAllFranz(t, proc.Addr(), topic, len(want)))
		})
	}
}

type franzMember struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func (m *franzMember) stop(t *testing.T) {
	m.cancel()
	<-m.done
	if err := m.cl.CommitUncommittedOffsets(context.Background()); err != nil {
		t.Errorf("franz-go final commit: %v", err)
	}
	m.cl.Close()
}

func startFranzMember(t *testing.T, addr, group, topic string, seen *valueSet) member {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(300*time.Millisecond), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &franzMember{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen.add(string(r.Value)) })
		}
	}()
	return m
}

func TestCompatFranzGoGroupRebalanceAndRestart(t *testing.T) {
	runGroupScenario(t, startFranzMember)
}
