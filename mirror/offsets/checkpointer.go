package offsets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/mirror/mm2"
	"github.com/kdr-io/kdr/mirror/naming"
)

// DefaultCheckpointInterval is how often a Checkpointer translates. MM2's
// emit.checkpoints.interval.seconds and sync.group.offsets.interval.seconds
// default to 60 s, so its offsets can be minutes stale at a failover.
const DefaultCheckpointInterval = 5 * time.Second

// CheckpointerConfig configures the checkpoint side of one flow. Each
// field's comment names the MM2 property it mirrors, if any.
type CheckpointerConfig struct {
	// SourceAlias and TargetAlias name the flow's clusters.
	SourceAlias, TargetAlias string
	// Policy renames source topics to target topics
	// (replication.policy.class); nil means naming.Prefix{}.
	Policy naming.Policy
	// Groups selects the source groups to checkpoint (groups,
	// groups.exclude). The zero Filter selects none; MM2's default is
	// naming.DefaultGroupFilter(). Exclude the flow's own copier group
	// (mirror.Flow.Group()), as MM2's default excludes connect-.*.
	Groups naming.Filter
	// Mirrored reports whether the flow mirrors a source topic; offsets of
	// other topics are ignored. nil means topics the Store has syncs for.
	Mirrored func(topic string) bool
	// Source lists groups and fetches their offsets; Target receives
	// checkpoints and, with SyncGroupOffsets, group offsets.
	Source, Target *kgo.Client
	// Store translates; its Run must be running.
	Store *SyncStore
	// Interval between cycles (emit.checkpoints.interval.seconds); 0 means
	// DefaultCheckpointInterval.
	Interval time.Duration
	// ReplicationFactor of the checkpoints topic when it is created; 0
	// leaves it to the target's default.replication.factor.
	ReplicationFactor int16
	// SyncGroupOffsets commits translated offsets to the same group on the
	// target while it has no members there, never moving a partition back
	// (sync.group.offsets.enabled, default false).
	SyncGroupOffsets bool
	Logger           *slog.Logger          // nil: slog.Default()
	Registerer       prometheus.Registerer // nil: no metrics
}

// Validate names the first missing or invalid field.
func (c CheckpointerConfig) Validate() error {
	switch {
	case c.SourceAlias == "" || c.TargetAlias == "":
		return errors.New("offsets: CheckpointerConfig needs SourceAlias and TargetAlias")
	case c.Source == nil || c.Target == nil:
		return errors.New("offsets: CheckpointerConfig needs Source and Target clients")
	case c.Store == nil:
		return errors.New("offsets: CheckpointerConfig needs a Store")
	case c.Interval < 0:
		return fmt.Errorf("offsets: CheckpointerConfig.Interval is %v; it must be positive (0 means %v)", c.Interval, DefaultCheckpointInterval)
	}
	return nil
}

// Checkpointer periodically translates the committed offsets of a flow's
// source groups, writes them as MM2 checkpoints to
// <source>.checkpoints.internal on the target and, if configured, commits
// them to the groups on the target.
type Checkpointer struct {
	cfg        CheckpointerConfig
	tr         Translator
	topic      string // the checkpoints topic
	sadm, tadm *kadm.Client
	log        *slog.Logger
	m          *checkpointMetrics

	topicReady bool
	cycles     int
	written    map[cpKey]mm2.Checkpoint // the last checkpoint written per key
}

// rewriteEvery is how many cycles pass between rewriting every checkpoint,
// changed or not (10 minutes at the default interval), in case the topic
// lost them.
const rewriteEvery = 120

type cpKey struct {
	group, topic string
	partition    int32
}

// NewCheckpointer validates cfg and registers the flow's metrics.
func NewCheckpointer(cfg CheckpointerConfig) (*Checkpointer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultCheckpointInterval
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	flow := cfg.SourceAlias + "->" + cfg.TargetAlias
	m, err := newCheckpointMetrics(cfg.Registerer, flow)
	if err != nil {
		return nil, err
	}
	return &Checkpointer{
		cfg: cfg, topic: mm2.CheckpointsTopic(cfg.SourceAlias),
		tr:   Translator{SourceAlias: cfg.SourceAlias, Policy: cfg.Policy, Source: cfg.Source, Store: cfg.Store, Mirrored: cfg.Mirrored},
		sadm: kadm.NewClient(cfg.Source), tadm: kadm.NewClient(cfg.Target),
		log: logger.With("component", "checkpointer"), m: m, // the caller's logger names the flow
		written: map[cpKey]mm2.Checkpoint{},
	}, nil
}

// Close unregisters the flow's checkpoint-age collector, so that a new
// Checkpointer for the flow can be registered.
func (c *Checkpointer) Close() {
	if c.cfg.Registerer != nil {
		c.cfg.Registerer.Unregister(c.m.age)
	}
}

// Run waits for the Store to be ready, then runs a cycle every Interval
// until ctx ends. A failed cycle is logged and counted; the next one runs
// on time.
func (c *Checkpointer) Run(ctx context.Context) error {
	if err := c.cfg.Store.WaitReady(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := c.RunOnce(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("checkpoint cycle failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Summary tells what one cycle did.
type Summary struct {
	Groups      int            // groups whose committed offsets were read
	Checkpoints int            // checkpoint records written (unchanged ones are not rewritten)
	Synced      int            // partition offsets committed to target groups
	Failed      []Untranslated // offsets that could not be translated
}

// RunOnce runs one cycle: translate every selected group's offsets, write
// the checkpoints that changed, sync group offsets. Per-group failures are
// logged and counted and do not fail the cycle. Not safe to call
// concurrently with itself or Run.
func (c *Checkpointer) RunOnce(ctx context.Context) (Summary, error) {
	var sum Summary
	if c.cycles++; c.cycles%rewriteEvery == 0 {
		clear(c.written)
	}
	if !c.topicReady {
		rf := c.cfg.ReplicationFactor
		if rf == 0 {
			rf = -1
		}
		if err := ensureCheckpointsTopic(ctx, c.tadm, c.topic, rf); err != nil {
			c.m.errors.WithLabelValues(StageTopic).Inc()
			return sum, err
		}
		c.topicReady = true
	}
	c.trim(ctx)
	listed, err := c.sadm.ListGroups(ctx)
	if err != nil {
		c.m.errors.WithLabelValues(StageListGroups).Inc()
		return sum, fmt.Errorf("offsets: listing groups on %s: %w", c.cfg.SourceAlias, err)
	}
	var groups []string
	selected := map[string]bool{}
	for _, g := range listed.Groups() {
		if c.cfg.Groups.Match(g) {
			groups = append(groups, g)
			selected[g] = true
		}
	}
	slices.Sort(groups)
	c.m.age.keep(selected)
	for k := range c.written {
		if !selected[k.group] {
			delete(c.written, k)
		}
	}
	fetched := c.sadm.FetchManyOffsets(ctx, groups...)
	start := time.Now()
	byGroup := map[string][]mm2.Checkpoint{}
	var records []*kgo.Record
	complete := map[string]bool{}
	for _, g := range groups {
		f := fetched[g]
		if f.Err != nil {
			c.m.errors.WithLabelValues(StageFetch).Inc()
			c.log.Warn("fetching committed offsets", "group", g, "err", f.Err)
			continue
		}
		sum.Groups++
		cps, failed := c.tr.checkpoints(g, f.Fetched)
		for _, u := range failed {
			c.m.failures[u.Status].Inc()
			c.log.Debug("offset not translated", "group", g, "topic", u.Topic, "partition", u.Partition, "offset", u.Upstream, "reason", u.Status)
		}
		sum.Failed = append(sum.Failed, failed...)
		complete[g] = len(failed) == 0 && len(cps) > 0
		byGroup[g] = cps
		for _, cp := range cps {
			if c.written[keyOf(cp)] != cp {
				records = append(records, &kgo.Record{Topic: c.topic, Partition: 0, Key: cp.Key(), Value: cp.Value()})
			}
		}
	}
	if len(records) > 0 {
		if err := c.cfg.Target.ProduceSync(ctx, records...).FirstErr(); err != nil {
			c.m.errors.WithLabelValues(StageProduce).Inc()
			return sum, fmt.Errorf("offsets: writing checkpoints to %s on %s: %w", c.topic, c.cfg.TargetAlias, err)
		}
	}
	sum.Checkpoints = len(records)
	c.m.checkpoints.Add(float64(len(records)))
	for g, cps := range byGroup {
		for _, cp := range cps {
			c.written[keyOf(cp)] = cp
		}
		if complete[g] {
			c.m.age.done(g, start)
		}
	}
	for _, u := range sum.Failed {
		c.m.age.seen(u.Group, start)
	}
	if c.cfg.SyncGroupOffsets {
		sum.Synced = c.syncGroups(ctx, byGroup)
	}
	return sum, nil
}

func keyOf(cp mm2.Checkpoint) cpKey { return cpKey{cp.Group, cp.Topic, cp.Partition} }

// TranslateGroup is Translator.TranslateGroup with this flow's settings.
func (c *Checkpointer) TranslateGroup(ctx context.Context, group string) (map[string]map[int32]int64, error) {
	return c.tr.TranslateGroup(ctx, group)
}

// trim forgets syncs below each mirrored partition's log start on the
// source, so that the indexes do not outgrow the data they describe.
func (c *Checkpointer) trim(ctx context.Context) {
	topics := c.cfg.Store.Topics()
	if len(topics) == 0 {
		return
	}
	starts, err := c.sadm.ListStartOffsets(ctx, topics...)
	if err != nil {
		c.log.Debug("listing source log start offsets", "err", err)
		return
	}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			c.cfg.Store.TrimBefore(o.Topic, o.Partition, o.Offset)
		}
	})
}

// ensureCheckpointsTopic creates the checkpoints topic as MM2 does: one
// partition of rf replicas, compacted (only the newest checkpoint per group
// and partition matters).
func ensureCheckpointsTopic(ctx context.Context, adm *kadm.Client, name string, rf int16) error {
	resp, err := adm.CreateTopic(ctx, 1, rf, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("offsets: creating checkpoints topic %s: %w", name, err)
	}
	return nil
}
