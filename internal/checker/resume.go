package checker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrGroupActive is returned by ResumeCheck for a group that still has
// members: their commits would move the positions being checked.
var ErrGroupActive = errors.New("checker: consumer group has active members")

// ResumePartition is one partition's outcome of a ResumeCheck.
type ResumePartition struct {
	Partition int32
	Committed int64 // committed offset; -1 if none
	Want      int64 // where a member must start: Committed, or the log start if nothing is committed
	End       int64 // log end offset when checked
	First     int64 // offset of the first record the fresh member fetched; -1 if none
}

// OK reports whether the member started exactly at Want; with Want at the
// log end it must have fetched nothing.
func (p ResumePartition) OK() bool {
	if p.Want >= p.End {
		return p.First == -1
	}
	return p.First == p.Want
}

// ResumeReport is the outcome of a ResumeCheck, partitions in order.
type ResumeReport struct {
	Group, Topic string
	Partitions   []ResumePartition
}

// OK reports whether every partition resumed at its committed offset.
func (r ResumeReport) OK() bool {
	for _, p := range r.Partitions {
		if !p.OK() {
			return false
		}
	}
	return len(r.Partitions) > 0
}

func (r ResumeReport) String() string {
	parts := make([]string, 0, len(r.Partitions))
	for _, p := range r.Partitions {
		mark := ""
		if !p.OK() {
			mark = " MISMATCH"
		}
		parts = append(parts, fmt.Sprintf("%d: committed=%d want=%d first=%d end=%d%s", p.Partition, p.Committed, p.Want, p.First, p.End, mark))
	}
	verdict := "OK"
	if !r.OK() {
		verdict = "FAILED"
	}
	return fmt.Sprintf("resume %s of group %s on %s: %s", verdict, r.Group, r.Topic, strings.Join(parts, "; "))
}

// ResumeCheck verifies that a consumer group resumes from its committed
// offsets: it snapshots the group's commits for topic, joins the group with
// a fresh member that does not commit, and compares each partition's first
// fetched offset with the commit (exactly). The group must have no active
// member. Partitions whose commit is at the log end must fetch nothing
// while the others deliver their first record. Afterwards it checks that the
// commits did not move.
func ResumeCheck(ctx context.Context, brokers []string, group, topic string) (ResumeReport, error) {
	rep := ResumeReport{Group: group, Topic: topic}
	base := Config{Brokers: brokers, Topic: topic, DeliveryTimeout: time.Minute}
	admCl, err := kgo.NewClient(base.clientOpts()...)
	if err != nil {
		return rep, fmt.Errorf("checker: resume check client: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)

	described, err := adm.DescribeGroups(ctx, group)
	if err == nil {
		err = described.Error()
	}
	if err != nil {
		return rep, fmt.Errorf("checker: describing group %s: %w", group, err)
	}
	if g := described[group]; len(g.Members) > 0 {
		return rep, fmt.Errorf("%w: %s has %d in state %s", ErrGroupActive, group, len(g.Members), g.State)
	}
	commits, err := fetchCommits(ctx, adm, group, topic)
	if err != nil {
		return rep, err
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return rep, fmt.Errorf("checker: listing start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return rep, fmt.Errorf("checker: listing end offsets of %s: %w", topic, err)
	}
	byPart := map[int32]*ResumePartition{}
	ends.Each(func(o kadm.ListedOffset) {
		p := ResumePartition{Partition: o.Partition, Committed: -1, End: o.Offset, First: -1}
		if start, ok := starts.Lookup(topic, o.Partition); ok {
			p.Want = start.Offset
		}
		if c, ok := commits[o.Partition]; ok {
			p.Committed, p.Want = c, c
		}
		rep.Partitions = append(rep.Partitions, p)
	})
	slices.SortFunc(rep.Partitions, func(a, b ResumePartition) int { return int(a.Partition - b.Partition) })
	waiting := 0
	for i := range rep.Partitions {
		p := &rep.Partitions[i]
		byPart[p.Partition] = p
		if p.Want < p.End {
			waiting++
		}
	}

	member, err := kgo.NewClient(append(base.clientOpts(),
		kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))...)
	if err != nil {
		return rep, fmt.Errorf("checker: resume check member: %w", err)
	}
	for waiting > 0 && ctx.Err() == nil {
		member.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if p := byPart[r.Partition]; p != nil && p.First == -1 {
				p.First = r.Offset
				if p.Want < p.End {
					waiting--
				}
			}
		})
	}
	member.Close() // leaves the group without committing
	if waiting > 0 {
		return rep, fmt.Errorf("checker: resume check of %s: %d partitions delivered nothing: %w", group, waiting, ctx.Err())
	}
	after, err := fetchCommits(ctx, adm, group, topic)
	if err != nil {
		return rep, err
	}
	for p, c := range commits {
		if after[p] != c {
			return rep, fmt.Errorf("checker: resume check of %s moved partition %d's commit from %d to %d", group, p, c, after[p])
		}
	}
	return rep, nil
}

func fetchCommits(ctx context.Context, adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	resps, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("checker: fetching commits of group %s: %w", group, err)
	}
	out := map[int32]int64{}
	resps.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}
