package group

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Config holds the coordinator settings, named after Kafka's broker
// properties.
type Config struct {
	OffsetsTopicPartitions int32         // offsets.topic.num.partitions (default 50)
	MinSessionTimeout      time.Duration // group.min.session.timeout.ms (default 6s)
	MaxSessionTimeout      time.Duration // group.max.session.timeout.ms (default 30m)
	InitialRebalanceDelay  time.Duration // group.initial.rebalance.delay.ms (default 3s)
	MaxGroupSize           int           // group.max.size (default unlimited)
	OffsetsRetention       time.Duration // offsets.retention.minutes (default 7 days)
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		OffsetsTopicPartitions: 50,
		MinSessionTimeout:      6 * time.Second,
		MaxSessionTimeout:      30 * time.Minute,
		InitialRebalanceDelay:  3 * time.Second,
		MaxGroupSize:           math.MaxInt32,
		OffsetsRetention:       7 * 24 * time.Hour,
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.OffsetsTopicPartitions < 1:
		return fmt.Errorf("offsets.topic.num.partitions=%d: must be at least 1", c.OffsetsTopicPartitions)
	case c.MinSessionTimeout <= 0:
		return fmt.Errorf("group.min.session.timeout.ms=%d: must be positive", c.MinSessionTimeout.Milliseconds())
	case c.MaxSessionTimeout < c.MinSessionTimeout:
		return fmt.Errorf("group.max.session.timeout.ms=%d is below group.min.session.timeout.ms=%d", c.MaxSessionTimeout.Milliseconds(), c.MinSessionTimeout.Milliseconds())
	case c.InitialRebalanceDelay < 0:
		return fmt.Errorf("group.initial.rebalance.delay.ms=%d: must not be negative", c.InitialRebalanceDelay.Milliseconds())
	case c.MaxGroupSize < 1:
		return fmt.Errorf("group.max.size=%d: must be at least 1", c.MaxGroupSize)
	case c.OffsetsRetention <= 0:
		return fmt.Errorf("offsets.retention.minutes: must be positive")
	}
	return nil
}

type clientKey struct{}

// Client identifies the connection a request came from; DescribeGroups
// reports it per member.
type Client struct{ ID, Host string }

// WithClient returns ctx carrying the requesting client's id and host.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

func clientFrom(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}
