package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// topicUsableWait bounds how long create and add-partitions wait for
	// the new partitions to be served: long enough for a cluster under
	// load to spread the metadata, short of hanging on a broker that is down.
	topicUsableWait = 10 * time.Second
	// topicUsablePoll is how often they look again.
	topicUsablePoll = 50 * time.Millisecond
)

// waitTopicUsable returns once every broker of the cluster shows topic with
// (at least) partitions partitions, each with a leader, and each leader
// serves its partition, so that a client bootstrapped from any broker can
// describe, produce to and consume the topic at once. A broker answers
// metadata from its own copy, which follows the controller's by a moment,
// and a leader opens its partition's log only once it has applied the
// change; until then they answer UNKNOWN_TOPIC_OR_PARTITION. With
// partitions ≤ 0 (a CreateTopics answer before v5 does not give the count),
// any count will do. After topicUsableWait, or when ctx ends, it returns
// what is still missing.
func waitTopicUsable(ctx context.Context, cl *kgo.Client, adm *kadm.Client, topic string, partitions int32) error {
	ctx, cancel := context.WithTimeout(ctx, topicUsableWait)
	defer cancel()
	tick := time.NewTicker(topicUsablePoll)
	defer tick.Stop()
	for {
		missing := topicNotUsable(ctx, cl, adm, topic, partitions)
		if missing == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return missing
		case <-tick.C:
		}
	}
}

// topicNotUsable is what keeps topic from being usable through every
// broker right now, or nil.
func topicNotUsable(ctx context.Context, cl *kgo.Client, adm *kadm.Client, topic string, partitions int32) error {
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("reading the cluster's brokers: %w", err)
	}
	leaders := map[int32]int32{} // partition -> leader
	for _, b := range meta.Brokers {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.Broker(int(b.NodeID)))
		if err != nil {
			return fmt.Errorf("broker %d: reading metadata: %w", b.NodeID, err)
		}
		if len(resp.Topics) != 1 {
			return fmt.Errorf("broker %d: the metadata answer does not mention the topic", b.NodeID)
		}
		t := resp.Topics[0]
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("broker %d: %w", b.NodeID, err)
		}
		switch n := int32(len(t.Partitions)); {
		case n == 0:
			return fmt.Errorf("broker %d shows no partitions of it", b.NodeID)
		case n < partitions:
			return fmt.Errorf("broker %d shows %d of its %d partitions", b.NodeID, n, partitions)
		}
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil || p.Leader < 0 {
				return fmt.Errorf("broker %d shows no leader for partition %d", b.NodeID, p.Partition)
			}
			leaders[p.Partition] = p.Leader
		}
	}
	for p, leader := range leaders {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // the high watermark, as describe reads it
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
		if err != nil {
			return fmt.Errorf("partition %d: leader %d: %w", p, leader, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return fmt.Errorf("partition %d: leader %d's answer does not mention it", p, leader)
		}
		if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
			return fmt.Errorf("partition %d: leader %d does not serve it yet: %w", p, leader, err)
		}
	}
	return nil
}

// warnNotUsable tells the user that a change was made but its partitions
// are not served everywhere yet. It is a warning, not an error: the change
// is done, and running the command again would fail (TOPIC_ALREADY_EXISTS).
func warnNotUsable(w io.Writer, done string, err error) {
	fmt.Fprintf(w, "Warning: %s, but after waiting up to %s it is not yet usable through every broker (%v); clients may see UNKNOWN_TOPIC_OR_PARTITION or LEADER_NOT_AVAILABLE for a while\n",
		done, topicUsableWait, err)
}

// topicChange is what a command that gives a topic new partitions did:
// Done describes it for the warning ("topic t was created"), "" when
// nothing changed and there is nothing to wait for.
type topicChange struct {
	Topic      string
	Partitions int32
	Done       string
}

// runTopicChange is runAdmin for the commands that give a topic new
// partitions (create, add-partitions): after do it waits until they are
// usable through every broker (waitTopicUsable), so that the next command,
// through whichever broker, finds them, and warns on errOut if they are
// not in time.
func runTopicChange[T any](ctx context.Context, conn ConnOptions, streams IO, do func(context.Context, *kadm.Client) (T, error),
	change func(T) topicChange, print func(io.Writer, T) error) error {
	ctx, cancel := conn.withTimeout(ctx)
	defer cancel()
	cl, err := conn.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := conn.adminOf(cl)
	res, err := do(ctx, adm)
	if err != nil {
		return err
	}
	if c := change(res); c.Done != "" {
		if err := waitTopicUsable(ctx, cl, adm, c.Topic, c.Partitions); err != nil {
			warnNotUsable(streams.Err, c.Done, err)
		}
	}
	return printResult(streams.Out, conn.Output, res, print)
}
