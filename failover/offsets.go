package failover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/mirror"
	"github.com/kdr-io/kdr/mirror/naming"
	"github.com/kdr-io/kdr/mirror/offsets"
)

// syncOffsets moves the consumer groups the flow selects from the old
// primary to the new one: it waits (OffsetSync timeout) for them to have
// no members on from, translates their committed offsets exactly through
// the flow's offset syncs and commits them on to, never moving a group
// back (except after a failback's resync, whose topics are new).
func (o *opRun) syncOffsets(ctx context.Context) (stepOut, error) {
	f := o.pat.Flow(o.from)
	fromAdm, err := o.cl.admin(o.from)
	if err != nil {
		return stepOut{}, err
	}
	toAdm, err := o.cl.admin(o.to)
	if err != nil {
		return stepOut{}, err
	}
	listed, err := fromAdm.ListGroups(ctx)
	if err != nil {
		return stepOut{}, fmt.Errorf("listing consumer groups on %s: %w", o.from, err)
	}
	filter := f.GroupFilter()
	var groups []string
	for _, g := range listed.Groups() {
		if filter.Match(g) && !strings.HasPrefix(g, "kdr-mirror-") {
			groups = append(groups, g)
		}
	}
	slices.Sort(groups)
	name := o.steps[o.stepIndex("sync-offsets")].name
	var stillActive []string
	if len(groups) > 0 {
		_ = withTimeout(ctx, o.opts.OffsetSync, "waiting for consumers to leave "+o.from, func(ctx context.Context) error {
			return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
				stillActive = stillActive[:0]
				for _, g := range groups {
					if n, err := offsets.GroupMembers(ctx, fromAdm, g); err != nil || n > 0 {
						stillActive = append(stillActive, g)
					}
				}
				if len(stillActive) > 0 {
					o.progress(name, fmt.Sprintf("waiting for %d group(s) to leave %s: %s", len(stillActive), o.from, strings.Join(stillActive, ", ")))
				}
				return len(stillActive) == 0, "", nil
			})
		})
		if ctx.Err() != nil {
			return stepOut{}, context.Cause(ctx)
		}
	}
	var overwrite bool
	if _, err := o.getData("offsets_overwrite", &overwrite); err != nil {
		return stepOut{}, err
	}
	committed, notes, err := o.translateGroups(ctx, f, groups, toAdm, overwrite)
	if err != nil {
		return stepOut{}, err
	}
	msg := fmt.Sprintf("%d group(s) moved to %s (%d partition offsets committed)", len(groups), o.to, committed)
	if len(stillActive) > 0 {
		msg += fmt.Sprintf("; still consuming on %s after %s, so they may re-read from the translated offsets: %s", o.from, o.opts.OffsetSync, strings.Join(stillActive, ", "))
	}
	if len(notes) > 0 {
		msg += "; " + strings.Join(notes, "; ")
	}
	return stepOut{msg: msg, apply: func(st *store.State) { st.ConsumerOffsets = o.to }}, nil
}

// translateGroups translates and commits every group; it returns the
// partition offsets committed and notes about what was left alone.
func (o *opRun) translateGroups(ctx context.Context, f mirror.Flow, groups []string, toAdm *kadm.Client, overwrite bool) (int, []string, error) {
	if len(groups) == 0 {
		return 0, nil, nil
	}
	// The syncs are on the flow's source (o.from), or its target.
	tc := o.opts.Topology.ClusterByName(f.SyncsCluster())
	sec, err := tc.ClientOpts()
	if err != nil {
		return 0, nil, err
	}
	src := append([]kgo.Opt{kgo.SeedBrokers(tc.BootstrapServers()...), kgo.ClientID(clientID)}, sec...)
	ss, err := offsets.NewSyncStore(offsets.SyncStoreConfig{Source: src, Topic: f.SyncsTopic(), Flow: f.Name(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return 0, nil, err
	}
	defer ss.Close()
	rctx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { defer close(stopped); ss.Run(rctx) }()
	defer func() { stop(); <-stopped }()
	wctx, cancel := context.WithTimeout(ctx, o.opts.OffsetSync)
	err = ss.WaitReady(wctx)
	cancel()
	if err != nil {
		return 0, nil, fmt.Errorf("reading the offset syncs of %s: %w", f.Name(), err)
	}
	fromCl, err := o.cl.client(o.from)
	if err != nil {
		return 0, nil, err
	}
	filter, _ := naming.NewFilter(f.Topics, f.TopicsExclude)
	rules := naming.Rules{Policy: f.Policy(), Topics: filter}
	tr := offsets.Translator{SourceAlias: f.SourceAlias, Policy: f.Policy(), Source: fromCl, Store: ss,
		Mirrored: func(topic string) bool {
			ok, _ := rules.ShouldReplicate(f.SourceAlias, f.TargetAlias, topic)
			return ok
		}}
	total := 0
	var notes []string
	for _, g := range groups {
		got, err := tr.TranslateGroup(ctx, g)
		if err != nil {
			var te *offsets.TranslateError
			if !errors.As(err, &te) {
				return total, notes, fmt.Errorf("translating group %s: %w", g, err)
			}
			notes = append(notes, te.Error()+fmt.Sprintf("; those partitions keep the offsets group %s already had on %s (if any)", g, o.to))
		}
		if n, err := offsets.GroupMembers(ctx, toAdm, g); err != nil || n > 0 {
			notes = append(notes, fmt.Sprintf("group %s already has members on %s: left as it is", g, o.to))
			continue
		}
		cur, err := toAdm.FetchOffsets(ctx, g)
		if err != nil {
			return total, notes, fmt.Errorf("reading group %s's offsets on %s: %w", g, o.to, err)
		}
		var commit kadm.Offsets
		n := 0
		for topic, parts := range got {
			for p, off := range parts {
				if c, ok := cur.Lookup(topic, p); ok && c.Err == nil && c.At >= off && !overwrite {
					continue // never move a group back
				}
				commit.Add(kadm.Offset{Topic: topic, Partition: p, At: off, LeaderEpoch: -1})
				n++
			}
		}
		if n == 0 {
			continue
		}
		resp, err := toAdm.CommitOffsets(ctx, g, commit)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return total, notes, fmt.Errorf("committing group %s's offsets on %s: %w", g, o.to, err)
		}
		total += n
	}
	return total, notes, nil
}
