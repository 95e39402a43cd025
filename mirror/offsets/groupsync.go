package offsets

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/mirror/mm2"
)

// syncGroups commits the translated offsets to the same groups on the
// target and returns how many partition offsets it committed. As in MM2, a
// group is written only while it has no members on the target (state Empty,
// or Dead: it does not exist there yet), and a partition is never moved
// back: a target offset at or past the translation is left alone (the group
// may have consumed there since a failover). Kafka has no compare-and-set
// for offsets, so a member that joins and commits between the check and the
// commit can still be overwritten; the broker refuses the commit while the
// member is in the group.
func (c *Checkpointer) syncGroups(ctx context.Context, byGroup map[string][]mm2.Checkpoint) int {
	var groups []string
	for g, cps := range byGroup {
		if len(cps) > 0 {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return 0
	}
	slices.Sort(groups)
	described, err := c.tadm.DescribeGroups(ctx, groups...)
	if err != nil && len(described) == 0 {
		c.m.errors.WithLabelValues(StageGroupCommit).Inc()
		c.log.Warn("describing groups on the target", "err", err)
		return 0
	}
	synced := 0
	for _, g := range groups {
		n, err := c.syncGroup(ctx, g, described, byGroup[g])
		synced += n
		if err != nil {
			c.m.errors.WithLabelValues(StageGroupCommit).Inc()
			c.log.Warn("syncing group offsets on the target", "group", g, "err", err)
		}
	}
	c.m.synced.Add(float64(synced))
	return synced
}

func (c *Checkpointer) syncGroup(ctx context.Context, g string, described kadm.DescribedGroups, cps []mm2.Checkpoint) (int, error) {
	dg, ok := described[g]
	// A group the target has never seen is "Dead" with no error up to
	// DescribeGroups v5; from v6 (Kafka 4, KIP-1043) it is
	// GROUP_ID_NOT_FOUND, which v6 also answers for a group of the
	// consumer protocol (KIP-848), members or not.
	notClassic := ok && errors.Is(dg.Err, kerr.GroupIDNotFound)
	switch {
	case !ok:
		return 0, fmt.Errorf("group %q missing from the describe response", g)
	case notClassic:
		if c.consumerGroupActive(ctx, g) {
			c.m.skipped.WithLabelValues(SkipActive).Add(float64(len(cps)))
			c.log.Debug("not syncing offsets of a consumer-protocol group active on the target", "group", g)
			return 0, nil
		}
	case dg.Err != nil:
		return 0, dg.Err
	case dg.State != "Empty" && dg.State != "Dead":
		c.m.skipped.WithLabelValues(SkipActive).Add(float64(len(cps)))
		c.log.Debug("not syncing offsets of a group active on the target", "group", g, "state", dg.State, "members", len(dg.Members))
		return 0, nil
	}
	current, err := c.tadm.FetchOffsets(ctx, g)
	if errors.Is(err, kerr.GroupIDNotFound) {
		current, err = nil, nil // nothing committed yet
	}
	if err != nil {
		return 0, err
	}
	commit := make(kadm.Offsets)
	for _, cp := range cps {
		if cur, ok := current.Lookup(cp.Topic, cp.Partition); ok && cur.Err == nil && cur.At >= cp.DownstreamOffset {
			if cur.At > cp.DownstreamOffset {
				c.m.skipped.WithLabelValues(SkipAhead).Inc()
			}
			continue
		}
		commit.Add(kadm.Offset{Topic: cp.Topic, Partition: cp.Partition, At: cp.DownstreamOffset, LeaderEpoch: -1, Metadata: cp.Metadata})
	}
	if len(commit) == 0 {
		return 0, nil
	}
	resp, err := c.tadm.CommitOffsets(ctx, g, commit)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	resp.Each(func(o kadm.OffsetResponse) {
		switch {
		case o.Err == nil:
			n++
		case errors.Is(o.Err, kerr.UnknownMemberID), errors.Is(o.Err, kerr.RebalanceInProgress), errors.Is(o.Err, kerr.IllegalGeneration):
			c.m.skipped.WithLabelValues(SkipActive).Inc() // a member joined since the describe
		default:
			errs = append(errs, fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, o.Err))
		}
	})
	return n, errors.Join(errs...)
}

// consumerGroupActive reports whether g is a group of the consumer protocol
// (KIP-848) with members on the target, which DescribeGroups does not
// describe. A target without ConsumerGroupDescribe has no such groups; if
// the question fails otherwise, the commit goes ahead, and the target
// refuses it while the group has members.
func (c *Checkpointer) consumerGroupActive(ctx context.Context, g string) bool {
	n, err := consumerProtocolMembers(ctx, c.tadm, g)
	return err == nil && n > 0
}

func consumerProtocolMembers(ctx context.Context, adm *kadm.Client, group string) (int, error) {
	described, err := adm.DescribeConsumerGroups(ctx, group)
	if err != nil {
		return 0, err
	}
	d, ok := described[group]
	if !ok || d.Err != nil {
		return 0, nil
	}
	return len(d.Members), nil
}

// GroupMembers is how many members group has on adm's cluster, of either
// protocol: DescribeGroups v6 (Kafka 4, KIP-1043) answers GROUP_ID_NOT_FOUND
// both for an unknown group and for one of the consumer protocol (KIP-848),
// members or not, which ConsumerGroupDescribe then counts.
func GroupMembers(ctx context.Context, adm *kadm.Client, group string) (int, error) {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return 0, err
	}
	g, ok := described[group]
	switch {
	case !ok:
		return 0, nil
	case errors.Is(g.Err, kerr.GroupIDNotFound):
		return consumerProtocolMembers(ctx, adm, group)
	case g.Err != nil:
		return 0, g.Err
	}
	return len(g.Members), nil
}
