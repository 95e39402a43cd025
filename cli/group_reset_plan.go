package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// planGroupReset computes the new offset of every selected partition.
func planGroupReset(ctx context.Context, adm *kadm.Client, opts *GroupResetOffsetsOptions) (groupResetPlan, error) {
	committed, err := adm.FetchOffsets(ctx, opts.Group)
	if err != nil {
		return groupResetPlan{}, opts.Conn.requestErr(fmt.Sprintf("fetching committed offsets of group %q", opts.Group), err)
	}
	parts, err := selectResetPartitions(ctx, adm, opts, committed)
	if err != nil {
		return groupResetPlan{}, err
	}
	topics := partitionTopics(parts)
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return groupResetPlan{}, opts.Conn.requestErr("listing log start offsets", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return groupResetPlan{}, opts.Conn.requestErr("listing log end offsets", err)
	}
	var byTime kadm.ListedOffsets
	if opts.Reset.Mode == resetDatetime {
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, opts.Reset.Time.UnixMilli(), topics...); err != nil {
			return groupResetPlan{}, opts.Conn.requestErr("listing offsets by time", err)
		}
	}
	plan := groupResetPlan{Group: opts.Group, Offsets: []offsetReset{}}
	var errs []error
	for _, p := range parts {
		current := int64(-1)
		if c, ok := committed.Lookup(p.Topic, p.Partition); ok && c.Err == nil {
			current = c.At
		}
		next, err := resetTarget(opts.Reset, p, current, starts, ends, byTime)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		plan.Offsets = append(plan.Offsets, offsetReset{Topic: p.Topic, Partition: p.Partition, CurrentOffset: current, NewOffset: next})
	}
	return plan, errors.Join(errs...)
}

// selectResetPartitions resolves --topic or --all-topics to partitions,
// sorted.
func selectResetPartitions(ctx context.Context, adm *kadm.Client, opts *GroupResetOffsetsOptions, committed kadm.OffsetResponses) ([]kadm.Partition, error) {
	var parts []kadm.Partition
	if opts.AllTopics {
		committed.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At >= 0 {
				parts = append(parts, kadm.Partition{Topic: o.Topic, Partition: o.Partition})
			}
		})
		if len(parts) == 0 {
			return nil, fmt.Errorf("group %q has no committed offsets, so --all-topics selects nothing; name topics with --topic", opts.Group)
		}
	} else {
		names := make([]string, 0, len(opts.Topics))
		for _, s := range opts.Topics {
			names = append(names, s.Topic)
		}
		tds, err := adm.ListTopics(ctx, names...)
		if err != nil {
			return nil, opts.Conn.requestErr("reading topic metadata", err)
		}
		for _, s := range opts.Topics {
			td, ok := tds[s.Topic]
			if !ok || td.Err != nil {
				return nil, fmt.Errorf("topic %q: %w", s.Topic, cmpErr(td.Err, kerr.UnknownTopicOrPartition))
			}
			want := s.Partitions
			if len(want) == 0 {
				want = td.Partitions.Numbers()
			}
			for _, p := range want {
				if _, ok := td.Partitions[p]; !ok {
					return nil, fmt.Errorf("topic %q has no partition %d (it has %d partitions)", s.Topic, p, len(td.Partitions))
				}
				parts = append(parts, kadm.Partition{Topic: s.Topic, Partition: p})
			}
		}
	}
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].Topic != parts[j].Topic {
			return parts[i].Topic < parts[j].Topic
		}
		return parts[i].Partition < parts[j].Partition
	})
	return slices.Compact(parts), nil
}

func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

func partitionTopics(ps []kadm.Partition) []string {
	var out []string
	for i, p := range ps {
		if i == 0 || p.Topic != ps[i-1].Topic {
			out = append(out, p.Topic)
		}
	}
	return out
}

// resetTarget is the new offset of one partition: the spec's target clamped
// to [log start, log end].
func resetTarget(spec resetSpec, p kadm.Partition, current int64, starts, ends, byTime kadm.ListedOffsets) (int64, error) {
	start, err := listedOffset(starts, p, "log start offset")
	if err != nil {
		return 0, err
	}
	end, err := listedOffset(ends, p, "log end offset")
	if err != nil {
		return 0, err
	}
	var target int64
	switch spec.Mode {
	case resetEarliest:
		target = start
	case resetLatest:
		target = end
	case resetOffset:
		target = spec.Offset
	case resetShiftBy:
		if current < 0 {
			return 0, fmt.Errorf("%s/%d: the group has no committed offset to shift; reset it with --to-earliest, --to-latest or --to-offset", p.Topic, p.Partition)
		}
		target = current + spec.Offset
	case resetDatetime:
		o, ok := byTime.Lookup(p.Topic, p.Partition)
		switch {
		case !ok:
			return 0, fmt.Errorf("%s/%d: the broker did not list an offset for %s", p.Topic, p.Partition, spec.Time.Format(time.RFC3339))
		case o.Err != nil:
			return 0, fmt.Errorf("%s/%d: listing the offset for %s: %w", p.Topic, p.Partition, spec.Time.Format(time.RFC3339), o.Err)
		case o.Offset < 0:
			target = end // no record at or after the time
		default:
			target = o.Offset
		}
	default:
		return 0, fmt.Errorf("unknown reset mode %q", spec.Mode)
	}
	return min(max(target, start), end), nil
}

func listedOffset(l kadm.ListedOffsets, p kadm.Partition, what string) (int64, error) {
	o, ok := l.Lookup(p.Topic, p.Partition)
	switch {
	case !ok:
		return 0, fmt.Errorf("%s/%d: the broker did not list its %s", p.Topic, p.Partition, what)
	case o.Err != nil:
		return 0, fmt.Errorf("%s/%d: listing its %s: %w", p.Topic, p.Partition, what, o.Err)
	}
	return o.Offset, nil
}

func commitGroupReset(ctx context.Context, adm *kadm.Client, conn ConnOptions, plan groupResetPlan) error {
	offsets := make(kadm.Offsets)
	for _, o := range plan.Offsets {
		// Epoch -1: the new position is not tied to a leader epoch.
		offsets.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.NewOffset, LeaderEpoch: -1})
	}
	resps, err := adm.CommitOffsets(ctx, plan.Group, offsets)
	if err != nil {
		return conn.requestErr(fmt.Sprintf("committing offsets of group %q", plan.Group), err)
	}
	var errs []error
	rejoined := false
	resps.EachError(func(o kadm.OffsetResponse) {
		errs = append(errs, fmt.Errorf("committing %s/%d for group %q: %w", o.Topic, o.Partition, plan.Group, o.Err))
		rejoined = rejoined || errors.Is(o.Err, kerr.UnknownMemberID) || errors.Is(o.Err, kerr.IllegalGeneration)
	})
	if rejoined {
		errs = append(errs, fmt.Errorf("consumers joined group %q during the reset; stop them first", plan.Group))
	}
	return errors.Join(errs...)
}
