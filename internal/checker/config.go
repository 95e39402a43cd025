package checker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Acks is the producer's acknowledgement level.
type Acks int8

const (
	// AcksAll waits for every in-sync replica (acks=all, -1); the default.
	AcksAll Acks = iota
	// AcksLeader waits for the leader only (acks=1).
	AcksLeader
)

func (a Acks) String() string {
	if a == AcksLeader {
		return "1"
	}
	return "all"
}

// Config is a workload. Start from DefaultConfig: its zero value is not
// idempotent.
type Config struct {
	// Brokers are the seed addresses. Required.
	Brokers []string
	// Topic is written and read. It must have no other writer. Required.
	Topic string
	// Keys is the number of distinct keys, k0..k<Keys-1>. Default 16.
	Keys int
	// Partitions for the topic if Start creates it; 0 means 3. An existing
	// topic is used as it is.
	Partitions int32
	// ReplicationFactor for the topic if Start creates it; 0 means the
	// broker's default.
	ReplicationFactor int16
	// Acks is the producer's acknowledgement level (acks). Default AcksAll.
	Acks Acks
	// Idempotent makes the producer idempotent (enable.idempotence). It
	// needs AcksAll. DefaultConfig sets it.
	Idempotent bool
	// Rate is the records per second to offer; 0 offers as fast as
	// acknowledgements allow, with at most MaxPending records outstanding.
	Rate float64
	// MaxPending bounds the records produced but not yet acknowledged or
	// failed (the producer's buffer). Default 256.
	MaxPending int
	// Group is the reader's consumer group; empty reads without a group
	// (direct assignment of every partition, nothing committed).
	Group string
	// DeliveryTimeout is how long a record may be retried before it fails
	// (delivery.timeout.ms). It must outlast the longest outage a test
	// expects to ride through. Default 2 minutes.
	DeliveryTimeout time.Duration
	// RequestTimeout is the produce request timeout given to the broker
	// (request.timeout.ms for produce); the client waits 3 s longer before
	// it drops the connection. Default 5 s.
	RequestTimeout time.Duration
	// OutageThreshold is the shortest gap between acknowledgements that
	// counts towards Report.TotalUnavailable and Report.Outages. Default
	// 250 ms.
	OutageThreshold time.Duration
	// ProgressInterval is how often progress is logged; default 3 s.
	ProgressInterval time.Duration
	// Logger receives progress and outage logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns a config for brokers and topic with every default
// set: idempotent, acks=all, 16 keys over 3 partitions.
func DefaultConfig(brokers []string, topic string) Config {
	return Config{
		Brokers:          brokers,
		Topic:            topic,
		Keys:             16,
		Partitions:       3,
		Acks:             AcksAll,
		Idempotent:       true,
		MaxPending:       256,
		DeliveryTimeout:  2 * time.Minute,
		RequestTimeout:   5 * time.Second,
		OutageThreshold:  250 * time.Millisecond,
		ProgressInterval: 3 * time.Second,
	}
}

// withDefaults fills unset numeric fields and validates the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig(c.Brokers, c.Topic)
	if c.Keys == 0 {
		c.Keys = d.Keys
	}
	if c.Partitions == 0 {
		c.Partitions = d.Partitions
	}
	if c.MaxPending == 0 {
		c.MaxPending = d.MaxPending
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = d.DeliveryTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.OutageThreshold == 0 {
		c.OutageThreshold = d.OutageThreshold
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = d.ProgressInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case len(c.Brokers) == 0:
		return c, errors.New("checker: Config.Brokers is empty")
	case c.Topic == "":
		return c, errors.New("checker: Config.Topic is empty")
	case c.Keys < 0:
		return c, fmt.Errorf("checker: Config.Keys is %d, want > 0", c.Keys)
	case c.Partitions < 0:
		return c, fmt.Errorf("checker: Config.Partitions is %d, want > 0", c.Partitions)
	case c.MaxPending < 0:
		return c, fmt.Errorf("checker: Config.MaxPending is %d, want > 0", c.MaxPending)
	case c.Rate < 0:
		return c, fmt.Errorf("checker: Config.Rate is %g, want >= 0", c.Rate)
	case c.Idempotent && c.Acks != AcksAll:
		return c, fmt.Errorf("checker: Config.Idempotent needs Acks %s, have %s", AcksAll, c.Acks)
	}
	return c, nil
}

// clientOpts are the options every client of the workload shares: short
// backoffs and fresh metadata, so that a moved leader is found quickly.
func (c Config) clientOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.DialTimeout(3 * time.Second),
		kgo.RequestTimeoutOverhead(3 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.MetadataMaxAge(5 * time.Second),
		kgo.RetryBackoffFn(func(tries int) time.Duration {
			d := 25 * time.Millisecond << min(tries, 4)
			return min(d, 250*time.Millisecond)
		}),
	}
}

// producerOpts are clientOpts plus what makes the producer ride through a
// failover: retries within DeliveryTimeout (kgo's record retries are
// unlimited by default), unknown-topic errors retried too (a restarted
// broker may not have loaded the topic yet).
func (c Config) producerOpts() []kgo.Opt {
	opts := append(c.clientOpts(),
		kgo.DefaultProduceTopic(c.Topic),
		kgo.UnknownTopicRetries(-1),
		kgo.RecordDeliveryTimeout(c.DeliveryTimeout),
		kgo.ProduceRequestTimeout(c.RequestTimeout),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.MaxBufferedRecords(c.MaxPending+1),
	)
	if c.Acks == AcksLeader {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	} else {
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	if !c.Idempotent {
		// Without sequence numbers only one request in flight keeps a
		// key's records in order across retries.
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(1))
	}
	return opts
}
