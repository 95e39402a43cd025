package group

import (
	"context"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxMetadataBytes is offset.metadata.max.bytes.
const maxMetadataBytes = 4096

// OffsetCommit stores committed offsets. They are appended to the log
// before the answer says they are committed.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	answerAll := func(code int16) *kmsg.OffsetCommitResponse {
		resp.Topics = resp.Topics[:0]
		for _, rt := range req.Topics {
			ot := kmsg.NewOffsetCommitResponseTopic()
			ot.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				op := kmsg.NewOffsetCommitResponseTopicPartition()
				op.Partition, op.ErrorCode = rp.Partition, code
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
		return resp
	}
	admin := req.Generation < 0 && req.MemberID == ""
	g, code := c.lookup(req.Group, admin)
	if code == nil && g == nil {
		code = kerr.IllegalGeneration // a member commit for a group that does not exist
	}
	if code != nil {
		return answerAll(code.Code)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.state == Dead:
		return answerAll(kerr.CoordinatorNotAvailable.Code)
	case admin:
		// A commit outside the group protocol (admin tools, simple
		// consumers) is only allowed while nobody consumes.
		if len(g.members) > 0 {
			return answerAll(kerr.UnknownMemberID.Code)
		}
	default:
		m, code := checkMember(g, req.MemberID, req.InstanceID, req.Generation)
		if code != nil {
			return answerAll(code.Code)
		}
		if g.state == CompletingRebalance {
			return answerAll(kerr.RebalanceInProgress.Code)
		}
		c.touch(g, m)
	}

	now := c.now()
	type pending struct {
		topic string
		part  int32
		o     offset
	}
	var records []Record
	var accepted []pending
	codes := map[string]map[int32]int16{}
	for _, rt := range req.Topics {
		codes[rt.Topic] = map[int32]int16{}
		for _, rp := range rt.Partitions {
			meta := ""
			if rp.Metadata != nil {
				meta = *rp.Metadata
			}
			switch {
			case len(meta) > maxMetadataBytes:
				codes[rt.Topic][rp.Partition] = kerr.OffsetMetadataTooLarge.Code
			case !c.exists(rt.Topic, rp.Partition):
				codes[rt.Topic][rp.Partition] = kerr.UnknownTopicOrPartition.Code
			default:
				epoch := rp.LeaderEpoch
				if req.Version < 6 {
					epoch = -1
				}
				o := offset{offset: rp.Offset, leaderEpoch: epoch, metadata: meta, committedAt: now}
				accepted = append(accepted, pending{rt.Topic, rp.Partition, o})
				records = append(records, offsetRecord(g.id, rt.Topic, rp.Partition, &o))
			}
		}
	}
	if len(records) > 0 {
		if err := c.log.Append(ctx, g.partition, records); err != nil {
			ke := appendErr(err)
			c.logger.Warn("offset commit not stored", "group", g.id, "err", err)
			return answerAll(ke.Code)
		}
		for _, a := range accepted {
			if g.offsets[a.topic] == nil {
				g.offsets[a.topic] = map[int32]offset{}
			}
			g.offsets[a.topic][a.part] = a.o
		}
		c.metrics.commits.Add(float64(len(records)))
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewOffsetCommitResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetCommitResponseTopicPartition()
			op.Partition, op.ErrorCode = rp.Partition, codes[rt.Topic][rp.Partition]
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

// fetchedOffset is one answer of OffsetFetch.
type fetchedOffset struct {
	topic     string
	partition int32
	o         offset
	found     bool
}

// committed lists a group's offsets for the requested topics (nil: all).
func (g *group) committed(topics map[string][]int32, all bool) []fetchedOffset {
	var out []fetchedOffset
	if all {
		names := make([]string, 0, len(g.offsets))
		for t := range g.offsets {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, t := range names {
			parts := make([]int32, 0, len(g.offsets[t]))
			for p := range g.offsets[t] {
				parts = append(parts, p)
			}
			sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
			for _, p := range parts {
				out = append(out, fetchedOffset{t, p, g.offsets[t][p], true})
			}
		}
		return out
	}
	for t, parts := range topics {
		for _, p := range parts {
			o, ok := g.offsets[t][p]
			out = append(out, fetchedOffset{t, p, o, ok})
		}
	}
	return out
}

// fetchGroup answers one group of an OffsetFetch.
func (c *Coordinator) fetchGroup(id string, topics map[string][]int32, all bool) ([]fetchedOffset, *kerr.Error) {
	g, code := c.lookup(id, false)
	if code != nil {
		return nil, code
	}
	if g == nil {
		g = newGroup(id, 0, c.now()) // unknown group: every offset unknown
	} else {
		g.mu.Lock()
		defer g.mu.Unlock()
	}
	return g.committed(topics, all), nil
}

// OffsetFetch returns committed offsets; unknown ones are -1.
func (c *Coordinator) OffsetFetch(_ context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			og := kmsg.NewOffsetFetchResponseGroup()
			og.Group = rg.Group
			topics := map[string][]int32{}
			for _, t := range rg.Topics {
				topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
			}
			got, code := c.fetchGroup(rg.Group, topics, rg.Topics == nil)
			if code != nil {
				og.ErrorCode = code.Code
			}
			byTopic := map[string]int{}
			for _, f := range got {
				i, ok := byTopic[f.topic]
				if !ok {
					i = len(og.Topics)
					byTopic[f.topic] = i
					t := kmsg.NewOffsetFetchResponseGroupTopic()
					t.Topic = f.topic
					og.Topics = append(og.Topics, t)
				}
				p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				p.Partition, p.Offset, p.LeaderEpoch, p.Metadata = f.partition, -1, -1, new(string)
				if f.found {
					p.Offset, p.LeaderEpoch, p.Metadata = f.o.offset, f.o.leaderEpoch, &f.o.metadata
				}
				og.Topics[i].Partitions = append(og.Topics[i].Partitions, p)
			}
			resp.Groups = append(resp.Groups, og)
		}
		return resp
	}
	topics := map[string][]int32{}
	for _, t := range req.Topics {
		topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
	}
	got, code := c.fetchGroup(req.Group, topics, req.Topics == nil && req.Version >= 2)
	if code != nil {
		resp.ErrorCode = code.Code
		// Before v2 there is no top-level error: report it per partition.
		if req.Version < 2 {
			for _, t := range req.Topics {
				ot := kmsg.NewOffsetFetchResponseTopic()
				ot.Topic = t.Topic
				for _, p := range t.Partitions {
					op := kmsg.NewOffsetFetchResponseTopicPartition()
					op.Partition, op.Offset, op.LeaderEpoch, op.ErrorCode = p, -1, -1, code.Code
					ot.Partitions = append(ot.Partitions, op)
				}
				resp.Topics = append(resp.Topics, ot)
			}
		}
		return resp
	}
	byTopic := map[string]int{}
	for _, f := range got {
		i, ok := byTopic[f.topic]
		if !ok {
			i = len(resp.Topics)
			byTopic[f.topic] = i
			t := kmsg.NewOffsetFetchResponseTopic()
			t.Topic = f.topic
			resp.Topics = append(resp.Topics, t)
		}
		p := kmsg.NewOffsetFetchResponseTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch, p.Metadata = f.partition, -1, -1, new(string)
		if f.found {
			p.Offset, p.LeaderEpoch, p.Metadata = f.o.offset, f.o.leaderEpoch, &f.o.metadata
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, p)
	}
	return resp
}

// OffsetDelete deletes committed offsets of a group nobody consumes.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	g, code := c.lookup(req.Group, false)
	if code == nil && g == nil {
		code = kerr.GroupIDNotFound
	}
	if code != nil {
		resp.ErrorCode = code.Code
		return resp
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var records []Record
	for _, rt := range req.Topics {
		ot := kmsg.NewOffsetDeleteResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetDeleteResponseTopicPartition()
			op.Partition = rp.Partition
			if len(g.members) > 0 {
				op.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if _, ok := g.offsets[rt.Topic][rp.Partition]; ok {
				records = append(records, offsetRecord(g.id, rt.Topic, rp.Partition, nil))
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	if len(records) == 0 {
		return resp
	}
	if err := c.log.Append(ctx, g.partition, records); err != nil {
		resp.ErrorCode = appendErr(err).Code
		resp.Topics = nil
		return resp
	}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if len(g.members) == 0 {
				delete(g.offsets[rt.Topic], rp.Partition)
			}
		}
		if len(g.offsets[rt.Topic]) == 0 {
			delete(g.offsets, rt.Topic)
		}
	}
	return resp
}

// Expire removes offsets of Empty groups older than offsets.retention.ms
// (counted from the commit, as Kafka does for groups without members), with
// tombstones, and forgets groups left with nothing.
func (c *Coordinator) Expire() {
	now := c.now()
	for _, g := range c.allGroups() {
		g.mu.Lock()
		if g.state != Empty {
			g.mu.Unlock()
			continue
		}
		n, err := c.dropOffsetsLocked(context.Background(), g, func(_ string, _ int32, o offset) bool {
			return now.Sub(o.committedAt) >= c.cfg.OffsetsRetention
		})
		if err != nil {
			c.logger.Warn("expiring offsets", "group", g.id, "err", err)
			g.mu.Unlock()
			continue
		}
		if n > 0 {
			c.logger.Info("expired committed offsets", "group", g.id, "partitions", n)
		}
		dead := len(g.offsets) == 0 && len(g.members) == 0
		if dead {
			if err := c.log.Append(context.Background(), g.partition, []Record{groupRecord(g.id, nil)}); err == nil {
				g.setState(Dead, now)
			} else {
				dead = false
			}
		}
		g.mu.Unlock()
		if dead {
			c.forget(g)
		}
	}
}

// DeleteTopicOffsets removes every group's committed offsets for topics that
// were deleted, with tombstones, as Kafka does when a topic is deleted:
// offsets left behind would make a consumer of a topic re-created under the
// same name resume at positions of the old one, past the new log's end (and
// a mirror take that for a truncated log). Groups with members lose them
// too; their consumers already get UNKNOWN_TOPIC_OR_PARTITION. A group left
// with neither offsets nor members is forgotten by the next Expire.
func (c *Coordinator) DeleteTopicOffsets(ctx context.Context, topics []string) {
	for _, g := range c.allGroups() {
		g.mu.Lock()
		n, err := c.dropOffsetsLocked(ctx, g, func(t string, _ int32, _ offset) bool { return slices.Contains(topics, t) })
		g.mu.Unlock()
		switch {
		case err != nil:
			c.logger.Warn("removing committed offsets of deleted topics", "group", g.id, "topics", topics, "err", err)
		case n > 0:
			c.logger.Info("removed committed offsets of deleted topics", "group", g.id, "topics", topics, "partitions", n)
		}
	}
}

// dropOffsetsLocked removes g's committed offsets that match, with
// tombstones, and returns how many; nothing is forgotten if the tombstones
// cannot be written. Called with g.mu held.
func (c *Coordinator) dropOffsetsLocked(ctx context.Context, g *group, match func(topic string, partition int32, o offset) bool) (int, error) {
	var records []Record
	for t, parts := range g.offsets {
		for p, o := range parts {
			if match(t, p, o) {
				records = append(records, offsetRecord(g.id, t, p, nil))
			}
		}
	}
	if len(records) == 0 {
		return 0, nil
	}
	if err := c.log.Append(ctx, g.partition, records); err != nil {
		return 0, err
	}
	for t, parts := range g.offsets {
		for p, o := range parts {
			if match(t, p, o) {
				delete(parts, p)
			}
		}
		if len(parts) == 0 {
			delete(g.offsets, t)
		}
	}
	return len(records), nil
}
