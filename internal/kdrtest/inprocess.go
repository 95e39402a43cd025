package kdrtest

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/kdr-io/kdr/broker"
)

// Broker is an in-process broker that can be restarted on the same data
// directory and port.
type Broker struct {
	t   TB
	cfg broker.Config
	*broker.Broker
}

// Option changes a test broker's config before it starts.
type Option func(*broker.Config)

// WithConfig applies fn to the broker config.
func WithConfig(fn func(*broker.Config)) Option { return Option(fn) }

// TestConfig is the config test brokers start from: loopback port 0, a temp
// data dir, a cluster id of its own, no metrics listener, no initial rebalance delay, few offsets
// partitions so group tests start fast.
func TestConfig(t TB) broker.Config {
	cfg := broker.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.ClusterID = newClusterID()
	cfg.Listen = "127.0.0.1:0"
	cfg.MetricsListen = ""
	cfg.Group.InitialRebalanceDelay = 0
	cfg.Group.OffsetsTopicPartitions = 4
	cfg.OffsetsTopicReplicationFactor = 1
	return cfg
}

// StartBroker starts an in-process broker and stops it at test cleanup.
func StartBroker(t TB, opts ...Option) *Broker {
	t.Helper()
	cfg := TestConfig(t)
	for _, o := range opts {
		o(&cfg)
	}
	b := &Broker{t: t, cfg: cfg}
	b.start()
	t.Cleanup(func() { b.Close() })
	return b
}

func (b *Broker) start() {
	b.t.Helper()
	var w io.Writer = io.Discard
	if os.Getenv("KDR_TEST_LOGS") != "" {
		w = os.Stderr
	}
	inner, err := broker.Start(b.cfg, broker.Options{Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		b.t.Fatalf("starting broker: %v", err)
	}
	b.Broker = inner
	// Restarts reuse the port so clients' seed addresses stay valid.
	b.cfg.Listen = inner.ListenAddr()
}

// Config returns the broker's configuration.
func (b *Broker) Config() broker.Config { return b.cfg }

// Restart closes the broker cleanly and starts it again on the same data
// directory and address.
func (b *Broker) Restart() {
	b.t.Helper()
	if err := b.Broker.Close(); err != nil {
		b.t.Fatalf("closing broker: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The old listener's port may take a moment to be reusable.
		inner, err := broker.Start(b.cfg, broker.Options{})
		if err == nil {
			b.Broker = inner
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("restarting broker: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
