package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/clientsec"
	"github.com/kdr-io/kdr/mirror"
	"github.com/kdr-io/kdr/mirror/naming"
	"github.com/kdr-io/kdr/mirror/offsets"
)

// MirrorTranslateOptions are the parsed options of `kdr mirror translate`.
type MirrorTranslateOptions struct {
	IO            IO
	Group         string
	SourceAlias   string
	TargetAlias   string
	SourceBrokers []string
	// SourceSecurity is the source's TLS and SASL (--source-tls-*,
	// --source-sasl-*).
	SourceSecurity clientsec.Config
	// SyncsOnTarget: the flow keeps its offset syncs on the target
	// (--offset-syncs-topic-location target), reached through
	// TargetBrokers and TargetSecurity.
	SyncsOnTarget  bool
	TargetBrokers  []string
	TargetSecurity clientsec.Config
	Policy         naming.Policy
	Output         outputFormat
	Timeout        time.Duration
	// Execute commits the translated offsets to Group on the target
	// (TargetBrokers, TargetSecurity), which must have no members there.
	Execute bool
}

// NewCmdMirrorTranslate builds `kdr mirror translate`. runF replaces the
// run step in tests.
func NewCmdMirrorTranslate(streams IO, _ *globalOptions, runF func(*MirrorTranslateOptions) error) *cobra.Command {
	opts := &MirrorTranslateOptions{IO: streams}
	var output string
	cmd := &cobra.Command{
		Use:   "translate",
		Short: "Translate a consumer group's committed offsets from a flow's source to its target",
		Long: `Read the offset syncs of the flow --source-alias → --target-alias (mm2-offset-syncs.<target>.internal
on the source, or mm2-offset-syncs.<source>.internal on the target with --offset-syncs-topic-location
target) and the committed offsets of --group on the source, and print where the group would resume on
the target: target topic (renamed by --naming), partition and offset. Only the source is contacted,
unless the syncs are on the target. Offsets that cannot be translated exactly are listed with their
reason: no_syncs (nothing of the partition was mirrored yet), before_history (older than the oldest
sync kept), not_mirrored (the group is ahead of the mirror) or missing_syncs. Topics the flow does
not mirror are left out.

With --execute the translated offsets are committed to the same group on the target (--target-brokers),
as a consumer switched to the target would need them, when the group has no active members there
(stop its consumers on the target first); offsets not translated are left as they are. The output then
shows each partition's PREVIOUS offset in the group, and says when the group was moved back. A running flow
does this by itself every --checkpoint-interval for groups without members on the target (never moving
one back); --execute is for a flow that is stopped, or to set a group now.

Exit status: 0 when the translation ran, even if some offsets could not be translated (they are
listed); 1 on errors (the source unreachable, the group's offsets not readable, the group active on
the target with --execute); 2 on usage errors.`,
		Example: `  kdr mirror translate --group billing --source-alias east --source-brokers 10.0.0.1:9092 --target-alias west
  kdr mirror translate --group billing --source-alias east --source-brokers 10.0.0.1:9092 --target-alias west \
      --target-brokers 10.1.0.1:9092 --execute`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := newViper(cmd, "")
			if err != nil {
				return err
			}
			opts.Group = v.GetString("group")
			opts.SourceAlias, opts.TargetAlias = v.GetString("source-alias"), v.GetString("target-alias")
			opts.SourceBrokers = splitList(v.GetString("source-brokers"))
			var problems []string
			if strings.TrimSpace(opts.Group) == "" {
				problems = append(problems, "--group is required")
			}
			if len(opts.SourceBrokers) == 0 {
				problems = append(problems, "--source-brokers is required (or KDR_SOURCE_BROKERS)")
			}
			opts.SourceSecurity = readSecurity(v, cmd.Flags(), "source-")
			if err := securityProblems(opts.SourceSecurity, "source-"); err != nil {
				problems = append(problems, err.Error())
			}
			opts.Execute = v.GetBool("execute")
			switch loc := v.GetString("offset-syncs-topic-location"); loc {
			case mirror.SyncsOnSource:
			case mirror.SyncsOnTarget:
				opts.SyncsOnTarget = true
			default:
				problems = append(problems, fmt.Sprintf("--offset-syncs-topic-location %q: want %s or %s", loc, mirror.SyncsOnSource, mirror.SyncsOnTarget))
			}
			if opts.SyncsOnTarget || opts.Execute {
				opts.TargetBrokers = splitList(v.GetString("target-brokers"))
				if len(opts.TargetBrokers) == 0 {
					problems = append(problems, "--target-brokers is required with --offset-syncs-topic-location target or --execute (or KDR_TARGET_BROKERS)")
				}
				opts.TargetSecurity = readSecurity(v, cmd.Flags(), "target-")
				if err := securityProblems(opts.TargetSecurity, "target-"); err != nil {
					problems = append(problems, err.Error())
				}
			}
			switch n := v.GetString("naming"); n {
			case mirror.NamingPrefix:
				opts.Policy = naming.Prefix{Separator: v.GetString("separator")}
			case mirror.NamingIdentity:
				opts.Policy = naming.Identity{Separator: v.GetString("separator")}
			default:
				problems = append(problems, fmt.Sprintf("--naming %q: want %s or %s", n, mirror.NamingPrefix, mirror.NamingIdentity))
			}
			if opts.Policy != nil {
				for flag, alias := range map[string]string{"--source-alias": opts.SourceAlias, "--target-alias": opts.TargetAlias} {
					if err := naming.ValidateAlias(opts.Policy, alias); err != nil {
						problems = append(problems, fmt.Sprintf("%s: %v", flag, err))
					}
				}
			}
			if opts.Output, err = parseOutput(output); err != nil {
				return err
			}
			if opts.Timeout <= 0 {
				problems = append(problems, fmt.Sprintf("--timeout must be positive, got %s", opts.Timeout))
			}
			if len(problems) > 0 {
				slices.Sort(problems)
				return usageError{errors.New(strings.Join(problems, "; "))}
			}
			if runF != nil {
				return runF(opts)
			}
			return runMirrorTranslate(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.String("group", "", "consumer group whose committed source offsets to translate")
	f.String("source-alias", "", "alias of the flow's source cluster")
	f.String("target-alias", "", "alias of the flow's target cluster (names the offset-syncs topic)")
	f.String("source-brokers", "", "comma-separated seed brokers of the source, host:port")
	addSecurityFlags(f, "source-", "the source")
	f.String("offset-syncs-topic-location", mirror.SyncsOnSource, "where the flow keeps its offset syncs: source or target (its --offset-syncs-topic-location)")
	f.String("target-brokers", "", "comma-separated seed brokers of the target, host:port (with --offset-syncs-topic-location target or --execute; the --target-tls-* and --target-sasl-* flags apply then)")
	addSecurityFlags(f, "target-", "the target")
	f.Bool("execute", false, "commit the translated offsets to --group on the target (--target-brokers); the group must have no active members there")
	f.String("naming", mirror.NamingPrefix, "remote topic names: prefix (east.orders) or identity (orders)")
	f.String("separator", "", "separator between alias and topic under prefix naming (\"\" means \".\")")
	f.StringVar(&output, "output", string(outputText), "output format: text or json")
	f.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "how long to wait for the source")
	return cmd
}

// mirrorTranslation is the result of `kdr mirror translate`.
type mirrorTranslation struct {
	Group        string               `json:"group"`
	SourceAlias  string               `json:"source_alias"`
	TargetAlias  string               `json:"target_alias"`
	Offsets      []translatedOffset   `json:"offsets"`
	Untranslated []untranslatedOffset `json:"untranslated"`
	// Committed is true when --execute committed Offsets to the group on
	// the target.
	Committed bool `json:"committed"`
}

type translatedOffset struct {
	Topic     string `json:"topic"` // on the target
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	// Previous is, with --execute, the group's offset on the target before
	// the commit; nil if it had none.
	Previous *int64 `json:"previous,omitempty"`
}

type untranslatedOffset struct {
	SourceTopic  string `json:"source_topic"`
	Partition    int32  `json:"partition"`
	SourceOffset int64  `json:"source_offset"`
	Reason       string `json:"reason"`
}

func runMirrorTranslate(ctx context.Context, opts *MirrorTranslateOptions) error {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	srcOpts, err := seededOpts(opts.SourceBrokers, opts.SourceSecurity, "source-")
	if err != nil {
		return err
	}
	var tgtOpts []kgo.Opt // only with --target-brokers
	if opts.SyncsOnTarget || opts.Execute {
		if tgtOpts, err = seededOpts(opts.TargetBrokers, opts.TargetSecurity, "target-"); err != nil {
			return err
		}
	}
	syncsOpts, syncsOn := srcOpts, opts.SourceAlias
	if opts.SyncsOnTarget {
		syncsOpts, syncsOn = tgtOpts, opts.TargetAlias
	}
	store, err := offsets.NewSyncStore(offsets.SyncStoreConfig{
		Source: syncsOpts,
		Topic:  syncsTopic(opts), Flow: opts.SourceAlias + "->" + opts.TargetAlias,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	defer store.Close()
	runCtx, stopStore := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { defer close(stopped); store.Run(runCtx) }()
	defer func() { stopStore(); <-stopped }()
	if err := store.WaitReady(ctx); err != nil {
		return fmt.Errorf("reading offset syncs from %s on %s: %w", store.Topic(), syncsOn, err)
	}
	cl, err := kgo.NewClient(srcOpts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if len(store.Topics()) == 0 {
		if err := syncsTopicExists(ctx, syncsOpts, store.Topic(), syncsOn, opts); err != nil {
			return err
		}
	}
	tr := offsets.Translator{SourceAlias: opts.SourceAlias, Policy: opts.Policy, Source: cl, Store: store}
	got, err := tr.TranslateGroup(ctx, opts.Group)
	res := mirrorTranslation{Group: opts.Group, SourceAlias: opts.SourceAlias, TargetAlias: opts.TargetAlias,
		Offsets: []translatedOffset{}, Untranslated: []untranslatedOffset{}}
	if err != nil {
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		var real []error
		for _, e := range errs {
			var te *offsets.TranslateError
			if !errors.As(e, &te) {
				real = append(real, e)
				continue
			}
			for _, u := range te.Failed {
				res.Untranslated = append(res.Untranslated, untranslatedOffset{SourceTopic: u.Topic, Partition: u.Partition,
					SourceOffset: u.Upstream, Reason: u.Status.String()})
			}
		}
		if len(real) > 0 {
			return errors.Join(real...)
		}
	}
	for topic, parts := range got {
		for p, o := range parts {
			res.Offsets = append(res.Offsets, translatedOffset{Topic: topic, Partition: p, Offset: o})
		}
	}
	slices.SortFunc(res.Offsets, func(a, b translatedOffset) int {
		if a.Topic != b.Topic {
			return strings.Compare(a.Topic, b.Topic)
		}
		return int(a.Partition - b.Partition)
	})
	if opts.Execute && len(res.Offsets) > 0 {
		if err := commitOnTarget(ctx, tgtOpts, opts, res.Offsets); err != nil {
			return err
		}
		res.Committed = true
	}
	return printResult(opts.IO.Out, opts.Output, res, printMirrorTranslation)
}

func printMirrorTranslation(w io.Writer, r mirrorTranslation) error {
	if len(r.Offsets) == 0 && len(r.Untranslated) == 0 {
		_, err := fmt.Fprintf(w, "group %s has no committed offsets on topics mirrored from %s to %s\n", r.Group, r.SourceAlias, r.TargetAlias)
		return err
	}
	if len(r.Offsets) > 0 {
		cols := []string{"TOPIC", "PARTITION", "OFFSET"}
		if r.Committed {
			cols = append(cols, "PREVIOUS")
		}
		t := newTable(w, cols...)
		back := 0
		for _, o := range r.Offsets {
			row := []any{o.Topic, o.Partition, o.Offset}
			if r.Committed {
				prev := any("-")
				if o.Previous != nil {
					prev = *o.Previous
					if o.Offset < *o.Previous {
						back++
					}
				}
				row = append(row, prev)
			}
			t.row(row...)
		}
		if err := t.flush(); err != nil {
			return err
		}
		if r.Committed {
			fmt.Fprintf(w, "committed to group %s on %s\n", r.Group, r.TargetAlias)
		}
		if back > 0 {
			fmt.Fprintf(w, "moved back on %d partition(s): the group's consumers will read the records between OFFSET and PREVIOUS again\n", back)
		}
	}
	if len(r.Untranslated) > 0 {
		if len(r.Offsets) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%d offset(s) not translated:\n", len(r.Untranslated))
		t := newTable(w, "SOURCE-TOPIC", "PARTITION", "SOURCE-OFFSET", "REASON")
		reasons := map[string]bool{}
		for _, u := range r.Untranslated {
			t.row(u.SourceTopic, u.Partition, u.SourceOffset, u.Reason)
			reasons[u.Reason] = true
		}
		if err := t.flush(); err != nil {
			return err
		}
		for _, reason := range slices.Sorted(maps.Keys(reasons)) {
			if why := untranslatedWhy(reason); why != "" {
				fmt.Fprintf(w, "%s: %s\n", reason, why)
			}
		}
		return nil
	}
	return nil
}

// commitOnTarget commits offs to opts.Group on the target, refusing while
// the group has members there: a member's own commits would overwrite
// them, and its position is not moved by a commit anyway. It sets each
// offset's Previous, so that a group moved back says so.
func commitOnTarget(ctx context.Context, tgtOpts []kgo.Opt, opts *MirrorTranslateOptions, offs []translatedOffset) error {
	cl, err := kgo.NewClient(tgtOpts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	members, err := offsets.GroupMembers(ctx, adm, opts.Group)
	if err != nil {
		return fmt.Errorf("describing group %s on %s: %w", opts.Group, opts.TargetAlias, err)
	}
	if members > 0 {
		return fmt.Errorf("group %s has %d active member(s) on %s: stop its consumers there, then run again; nothing was committed",
			opts.Group, members, opts.TargetAlias)
	}
	current, err := adm.FetchOffsets(ctx, opts.Group)
	if err != nil {
		return fmt.Errorf("reading the offsets of group %s on %s: %w", opts.Group, opts.TargetAlias, err)
	}
	var commit kadm.Offsets
	for i, o := range offs {
		if c, ok := current.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			offs[i].Previous = &c.At
		}
		commit.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1})
	}
	resps, err := adm.CommitOffsets(ctx, opts.Group, commit)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return fmt.Errorf("committing the translated offsets to group %s on %s: %w", opts.Group, opts.TargetAlias, err)
	}
	return nil
}

// syncsTopicExists says, when the flow's offset-syncs topic is missing, that
// the aliases or the syncs' location do not name a flow that runs (a typo in
// an alias read as "no committed offsets").
func syncsTopicExists(ctx context.Context, clOpts []kgo.Opt, topic, on string, opts *MirrorTranslateOptions) error {
	cl, err := kgo.NewClient(clOpts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	tds, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("looking for %s on %s: %w", topic, on, err)
	}
	if td, ok := tds[topic]; ok && td.Err == nil {
		return nil
	}
	other := "target"
	if opts.SyncsOnTarget {
		other = "source"
	}
	return fmt.Errorf("%s does not exist on %s, so no flow from %s to %s keeps its offset syncs there: check --source-alias and --target-alias (the flow's aliases, as kdr mirror run got them) and --offset-syncs-topic-location (the flow's; syncs on the %s?)",
		topic, on, opts.SourceAlias, opts.TargetAlias, other)
}

// syncsTopic is the flow's offset-syncs topic, named after the other
// cluster than the one holding it (mirror.Flow.SyncsTopic).
func syncsTopic(opts *MirrorTranslateOptions) string {
	f := mirror.Flow{SourceAlias: opts.SourceAlias, TargetAlias: opts.TargetAlias, OffsetSyncsLocation: mirror.SyncsOnSource}
	if opts.SyncsOnTarget {
		f.OffsetSyncsLocation = mirror.SyncsOnTarget
	}
	return f.SyncsTopic()
}

// untranslatedWhy explains a reason an offset was not translated
// (offsets.Status) and what to do; "" for none.
func untranslatedWhy(reason string) string {
	switch reason {
	case "not_mirrored":
		return "the group has read past what the mirror has copied so far; run again once the flow has caught up (kdr mirror status)"
	case "no_syncs":
		return "no offset sync for the partition yet: the mirror has not copied from it; run again once it has"
	case "before_history":
		return "the position lies before the oldest offset sync kept (syncs expired, or records the flow never copied): there is no exact answer"
	case "missing_syncs":
		return "offset syncs around the position are missing (a worker stopped between copying and writing them); kdr does not guess there"
	}
	return ""
}
