package cli

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/clientsec"
	"github.com/kdr-io/kdr/internal/obs"
	"github.com/kdr-io/kdr/mirror"
)

// defaultMirrorMetricsListen is where `kdr mirror run` serves /metrics; the
// broker's default is 9644.
const defaultMirrorMetricsListen = "127.0.0.1:9645"

// mirrorGCPercent is the worker's GOGC while a memory limit is set (and
// GOGC is not): off, so the collector runs only as the heap nears the limit,
// which bounds the worker's memory.
const mirrorGCPercent = -1

// NewCmdMirror builds `kdr mirror` and its subcommands.
func NewCmdMirror(streams IO, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "Mirror topics from one Kafka cluster to another (MM2-style)",
		Long: `Copy records from a source cluster to a target cluster the way MirrorMaker 2 does: remote topics
named by a policy (east.orders, or orders under identity naming), offset syncs and heartbeats in MM2's
formats, at-least-once delivery with per-partition order. Works against any Kafka.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(NewCmdMirrorRun(streams, g, nil), NewCmdMirrorStatus(streams, g, nil), NewCmdMirrorTranslate(streams, g, nil))
	return cmd
}

// MirrorRunOptions are the parsed options of `kdr mirror run`.
type MirrorRunOptions struct {
	IO            IO
	Global        *globalOptions
	ConfigFile    string
	MetricsListen string
	// MemoryLimitMiB is the process's soft memory limit (0: none).
	MemoryLimitMiB int
	Flow           mirror.Flow
}

// mirrorSetting binds one flag to one mirror.Flow field: the single list
// from which flags, KDR_* variables and config-file keys all come.
type mirrorSetting struct {
	flag, usage string
	// field is the Go field the flag sets, when the flag's name is not
	// its kebab case ("Source.Security.TLS.CAFile": source-tls-ca-file).
	field string
	def   func(d *mirror.Flow, cmd *cobra.Command, name, usage string)
	set   func(f *mirror.Flow, v *viper.Viper, name string) error
}

func mirrorSettings() []mirrorSetting {
	s := []mirrorSetting{
		mStr("source-alias", "alias of the source cluster (\"east\" in east.orders)", func(f *mirror.Flow) *string { return &f.SourceAlias }),
		mStr("target-alias", "alias of the target cluster", func(f *mirror.Flow) *string { return &f.TargetAlias }),
		mBrokers("source-brokers", "comma-separated seed brokers of the source, host:port", func(f *mirror.Flow) *[]string { return &f.Source.Brokers }),
		mBrokers("target-brokers", "comma-separated seed brokers of the target, host:port", func(f *mirror.Flow) *[]string { return &f.Target.Brokers }),
		mStr("topics", "comma-separated regexes of topics to mirror (MM2 topics)", func(f *mirror.Flow) *string { return &f.Topics }),
		mStr("topics-exclude", "comma-separated regexes of topics not to mirror (MM2 topics.exclude)", func(f *mirror.Flow) *string { return &f.TopicsExclude }),
		mStr("groups", "comma-separated regexes of consumer groups to translate (MM2 groups)", func(f *mirror.Flow) *string { return &f.Groups }),
		mStr("groups-exclude", "comma-separated regexes of groups not to translate (MM2 groups.exclude); the workers groups of kdr flows (kdr-mirror-.*) are never translated", func(f *mirror.Flow) *string { return &f.GroupsExclude }),
		mStr("naming", "remote topic names: prefix (east.orders) or identity (orders)", func(f *mirror.Flow) *string { return &f.Naming }),
		mStr("separator", "separator between alias and topic under prefix naming (\"\" means \".\")", func(f *mirror.Flow) *string { return &f.Separator }),
		mBool("local-records-only", "with --naming identity, copy only records written on the source itself, not those mirrored into it (kdr-origin header): for meshes where every cluster mirrors every other, in which a forwarded record would arrive twice", func(f *mirror.Flow) *bool { return &f.LocalRecordsOnly }),
		mBool("sync-topic-configs", "copy topic configs set on the source to the remote topics (MM2 sync.topic.configs.enabled)", func(f *mirror.Flow) *bool { return &f.SyncTopicConfigs }),
		mBool("sync-topic-deletions", "delete a remote topic when its source topic is deleted (default false: deletions are not mirrored)", func(f *mirror.Flow) *bool { return &f.SyncTopicDeletions }),
		mBool("sync-topic-acls", "copy ALLOW ACLs of mirrored topics to the remote topics, as read-only grants (MM2 sync.topic.acls.enabled)", func(f *mirror.Flow) *bool { return &f.SyncTopicACLs }),
		mStr("configs-exclude", "comma-separated regexes of topic configs never synced (MM2 config.properties.exclude)", func(f *mirror.Flow) *string { return &f.ConfigsExclude }),
		mDur("refresh-interval", "how often topics and partitions are checked (MM2 refresh.topics.interval.seconds)", func(f *mirror.Flow) *time.Duration { return &f.RefreshInterval }),
		mInt16("replication-factor", "replication factor of created remote topics (0: the source's, capped at the target's broker count; a value set here is not capped)", func(f *mirror.Flow) *int16 { return &f.ReplicationFactor }),
		mDur("heartbeat-interval", "how often a heartbeat is written to the target (negative disables)", func(f *mirror.Flow) *time.Duration { return &f.HeartbeatInterval }),
		mStr("group", "consumer group the flow's workers share (default kdr-mirror-<source>-<target>)", func(f *mirror.Flow) *string { return &f.WorkersGroup }),
		mStr("instance-id", "static group membership id (group.instance.id): a restarted worker gets its partitions back at once", func(f *mirror.Flow) *string { return &f.InstanceID }),
		mDur("session-timeout", "how long a silent worker keeps its partitions (session.timeout.ms)", func(f *mirror.Flow) *time.Duration { return &f.SessionTimeout }),
		mInt("batch-records", "most records copied per cycle", func(f *mirror.Flow) *int { return &f.BatchRecords }),
		mInt64("max-bytes-per-second", "most bytes of records a worker reads from the source per second, to spare a link between regions (0: no cap); a flow of N workers reads at most N times it", func(f *mirror.Flow) *int64 { return &f.MaxBytesPerSecond }),
		mDur("commit-interval", "shortest time between commits of the source positions and their offset syncs (MM2 offset.flush.interval.ms); a crash re-copies at most one interval plus two cycles; 0 commits after every cycle (at most two cycles re-copied)", func(f *mirror.Flow) *time.Duration { return &f.CommitInterval }),
		mStr("compression", "compression of batches sent to the target: none (default, as MM2), gzip, snappy, lz4 or zstd", func(f *mirror.Flow) *string { return &f.Compression }),
		mBool("forward-batches", "without --compression, forward the source's batches as they are (under identity naming, uncompressed ones rewritten with the provenance hop) instead of copying record by record (half the CPU)", func(f *mirror.Flow) *bool { return &f.ForwardBatches }),
		mDur("delivery-timeout", "how long a copy may wait for the target before it is retried (delivery.timeout.ms)", func(f *mirror.Flow) *time.Duration { return &f.DeliveryTimeout }),
		mDur("offset-syncs-retention", "retention of the offset-syncs topic (set on it at start); give the longest retention of the mirrored topics, or positions further behind cannot be translated once their syncs expire", func(f *mirror.Flow) *time.Duration { return &f.OffsetSyncsRetention }),
		mStr("offset-syncs-topic-location", "cluster holding the offset-syncs topic: source (as MM2) or target, with which nothing but the workers' group commits is written to the source (MM2 offset-syncs.topic.location)", func(f *mirror.Flow) *string { return &f.OffsetSyncsLocation }).forField("OffsetSyncsLocation"),
		mDur("checkpoint-interval", "how often group offsets are translated and checkpointed (MM2 emit.checkpoints.interval.seconds)", func(f *mirror.Flow) *time.Duration { return &f.CheckpointInterval }),
		mBool("sync-group-offsets", "commit translated offsets to groups with no members on the target (MM2 sync.group.offsets.enabled; default true: kdr translates exactly)", func(f *mirror.Flow) *bool { return &f.SyncGroupOffsets }),
	}
	s = append(s, mSecurity("Source", func(f *mirror.Flow) *clientsec.Config { return &f.Source.Security })...)
	return append(s, mSecurity("Target", func(f *mirror.Flow) *clientsec.Config { return &f.Target.Security })...)
}

// mSecurity are the TLS and SASL settings of a flow's side ("Source"):
// --source-tls-ca-file and so on.
func mSecurity(side string, get func(*mirror.Flow) *clientsec.Config) []mirrorSetting {
	var out []mirrorSetting
	for _, sf := range securityFlags(strings.ToLower(side)+"-", "the "+strings.ToLower(side)) {
		out = append(out, mirrorSetting{flag: sf.name, usage: sf.usage, field: side + ".Security." + sf.field,
			def: func(d *mirror.Flow, cmd *cobra.Command, _, _ string) { sf.define(cmd.Flags(), *get(d)) },
			set: func(f *mirror.Flow, v *viper.Viper, _ string) error { sf.read(v, get(f)); return nil }})
	}
	return out
}

// forField names the Go field s sets, when the flag is not its kebab case.
func (s mirrorSetting) forField(field string) mirrorSetting {
	s.field = field
	return s
}

func mStr(flag, usage string, get func(*mirror.Flow) *string) mirrorSetting {
	return mirrorSetting{flag: flag, usage: usage,
		def: func(d *mirror.Flow, cmd *cobra.Command, n, u string) { cmd.Flags().String(n, *get(d), u) },
		set: func(f *mirror.Flow, v *viper.Viper, n string) error { *get(f) = v.GetString(n); return nil }}
}

func mBool(flag, usage string, get func(*mirror.Flow) *bool) mirrorSetting {
	return mirrorSetting{flag: flag, usage: usage,
		def: func(d *mirror.Flow, cmd *cobra.Command, n, u string) { cmd.Flags().Bool(n, *get(d), u) },
		set: func(f *mirror.Flow, v *viper.Viper, n string) error { *get(f) = v.GetBool(n); return nil }}
}

func mInt(flag, usage string, get func(*mirror.Flow) *int) mirrorSetting {
	return mirrorSetting{flag: flag, usage: usage,
		def: func(d *mirror.Flow, cmd *cobra.Command, n, u string) { cmd.Flags().Int(n, *get(d), u) },
		set: func(f *mirror.Flow, v *viper.Viper, n string) error { *get(f) = v.GetInt(n); return nil }}
}

func mInt64(flag, usage string, get func(*mirror.Flow) *int64) mirrorSetting {
	return mirrorSetting{flag: flag, usage: usage,
		def: func(d *mirror.Flow, cmd *cobra.Command, n, u string) { cmd.Flags().Int64(n, *get(d), u) },
		set: func(f *mirror.Flow, v *viper.Viper, n string) error { *get(f) = v.GetInt64(n); return nil }}
}

func mInt16(flag, usage string, get func(*mirror.Flow) *int16) mirrorSetting {
	return mirrorSetting{flag: flag, usage: usage,
		def: func(d *mirror.Flow, cmd *cobra.Command, n, u string) { cmd.Flags().Int16(n, *get(d), u) },
		set: func(f *mirror.Flow, v *viper.Viper, n string) error { *get(f) = int16(v.GetInt32(n)); return nil }}
}

func mDur(flag, usage string, get func(*mirror.Flow) *time.Duration) mirrorSetting {
	return mirrorSetting{flag: flag, usage: usage + " (a duration: 500ms, 5s, 1m)",
		def: func(d *mirror.Flow, cmd *cobra.Command, n, u string) { cmd.Flags().Duration(n, *get(d), u) },
		set: func(f *mirror.Flow, v *viper.Viper, n string) error {
			raw := v.GetString(n)
			d, err := time.ParseDuration(raw)
			if err != nil {
				return fmt.Errorf("%q is not a duration (for example 5s)", raw)
			}
			*get(f) = d
			return nil
		}}
}

func mBrokers(flag, usage string, get func(*mirror.Flow) *[]string) mirrorSetting {
	return mirrorSetting{flag: flag, usage: usage,
		def: func(_ *mirror.Flow, cmd *cobra.Command, n, u string) { cmd.Flags().String(n, "", u) },
		set: func(f *mirror.Flow, v *viper.Viper, n string) error {
			out := splitList(v.GetString(n))
			if len(out) == 0 {
				return fmt.Errorf("empty; give at least one host:port (or KDR_%s)", strings.ToUpper(strings.ReplaceAll(n, "-", "_")))
			}
			*get(f) = out
			return nil
		}}
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(raw string) []string {
	var out []string
	for _, s := range strings.Split(raw, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// NewCmdMirrorRun builds `kdr mirror run`. runF replaces the run step in
// tests.
func NewCmdMirrorRun(streams IO, g *globalOptions, runF func(*MirrorRunOptions) error) *cobra.Command {
	opts := &MirrorRunOptions{IO: streams, Global: g}
	settings := mirrorSettings()
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a mirror worker for one flow until interrupted",
		Long: `Run one worker of a flow from --source-alias to --target-alias until SIGINT or SIGTERM. Start
several with the same aliases (and --group) to share the source partitions; a worker that dies hands
its partitions to the others.

Settings come from flags, then KDR_* environment variables (KDR_SOURCE_BROKERS, KDR_TOPICS, ...),
then a YAML file given with --config whose keys are the flag names, then defaults.`,
		Example: `  kdr mirror run --source-alias east --source-brokers 10.0.0.1:9092 \
      --target-alias west --target-brokers 10.1.0.1:9092 --topics 'orders.*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := newViper(cmd, opts.ConfigFile)
			if err != nil {
				return err
			}
			opts.Flow = mirror.DefaultFlow()
			for _, s := range settings {
				if err := s.set(&opts.Flow, v, s.flag); err != nil {
					return usageError{fmt.Errorf("--%s: %w", s.flag, err)}
				}
			}
			opts.MetricsListen = v.GetString("metrics-listen")
			opts.MemoryLimitMiB = v.GetInt("memory-limit-mib")
			if opts.MemoryLimitMiB < 0 {
				return usageError{fmt.Errorf("--memory-limit-mib %d: want 0 (no limit) or more", opts.MemoryLimitMiB)}
			}
			ambientPassword(&opts.Flow.Source.Security, cmd.Flags(), "source-")
			ambientPassword(&opts.Flow.Target.Security, cmd.Flags(), "target-")
			if err := opts.Flow.Validate(); err != nil {
				return usageError{flowFlagErrors(err, settings)}
			}
			if runF != nil {
				return runF(opts)
			}
			return runMirror(cmd, opts)
		},
	}
	defaults := mirror.DefaultFlow()
	for _, s := range settings {
		s.def(&defaults, cmd, s.flag, s.usage)
	}
	cmd.Flags().String("metrics-listen", defaultMirrorMetricsListen, "host:port for /metrics and /healthz (port 0 picks a free port); empty disables")
	cmd.Flags().Int("memory-limit-mib", mirror.DefaultMemoryLimitMiB, "soft memory limit of the worker process in MiB (the Go runtime's GOMEMLIMIT, which wins when set; under it the garbage collector runs only as the heap nears the limit, unless GOGC is set); 0 for none")
	cmd.Flags().StringVar(&opts.ConfigFile, "config", "", "YAML file of settings (keys are flag names)")
	return cmd
}

func runMirror(cmd *cobra.Command, opts *MirrorRunOptions) error {
	logger, err := opts.Global.logger(opts.IO.Err)
	if err != nil {
		return err
	}
	// The worker reads the files and variables too; read here, a missing
	// one is a usage error naming its flag.
	if _, err := securityOpts(opts.Flow.Source.Security, "source-"); err != nil {
		return err
	}
	if _, err := securityOpts(opts.Flow.Target.Security, "target-"); err != nil {
		return err
	}
	reg := obs.NewRegistry()
	mopts := mirror.Options{Logger: logger, Registerer: reg}
	kl, err := newKgoLogger(opts.IO, opts.Global)
	if err != nil {
		return err
	}
	if kl != nil { // --log-level debug: the Kafka clients' logs too
		mopts.ClientOpts = append(mopts.ClientOpts, kgo.WithLogger(kl))
	}
	w, err := mirror.New(opts.Flow, mopts)
	if err != nil {
		return err
	}
	if opts.MemoryLimitMiB > 0 && os.Getenv("GOMEMLIMIT") == "" {
		// The worker's live memory is bounded (fetched bytes per worker,
		// records per cycle), so a limit can bound its heap with room
		// to collect below it.
		debug.SetMemoryLimit(int64(opts.MemoryLimitMiB) << 20)
		if os.Getenv("GOGC") == "" {
			// Collect only near the limit. A percentage ties the heap's
			// goal to the live data, which is small while the worker
			// keeps up and jumps when a fetch brings a backlog: at
			// GOGC 400 the heap swung between 6 and 165 MB, the
			// runtime returned the pages between two swings and
			// faulted them back in at the next, and each swing took
			// the worker to most of a core for a second or two (the
			// mirror's latency spikes at 75,000 records/s,
			// docs/benchmarks.md). At GOGC 100 the collector took a
			// quarter of its CPU.
			debug.SetGCPercent(mirrorGCPercent)
		}
		logger.Info("memory limit set", "mib", opts.MemoryLimitMiB)
	}
	line := fmt.Sprintf("kdr mirror %s running", opts.Flow.Name())
	if opts.MetricsListen != "" {
		srv, err := obs.ServeHTTP(opts.MetricsListen, reg, w.Health, logger)
		if err != nil {
			return err
		}
		defer srv.Close()
		line += fmt.Sprintf(" (metrics on http://%s/metrics)", srv.Addr())
	}
	// The line on stdout tells scripts and tests the worker is up and where
	// its metrics are (a port chosen with --metrics-listen host:0).
	runDone := make(chan error, 1)
	go func() { runDone <- w.Run(cmd.Context()) }()
	fmt.Fprintln(opts.IO.Out, line)
	return <-runDone
}

// flowFlagErrors restates mirror.Flow validation errors in the flags a user
// typed: "TargetAlias: ..." becomes "--target-alias (TargetAlias): ...".
func flowFlagErrors(err error, settings []mirrorSetting) error {
	flags := map[string]bool{}
	byField := map[string]string{"WorkersGroup": "group"}
	for _, s := range settings {
		flags[s.flag] = true
		if s.field != "" {
			byField[s.field] = s.flag
		}
	}
	flagFor := func(field string) string {
		var parts []string
		for _, f := range strings.Split(field, "/") {
			k, ok := byField[f]
			if !ok {
				k = kebab(strings.ReplaceAll(f, ".", ""))
			}
			if !flags[k] {
				return field // no flag of that name: keep the field's
			}
			parts = append(parts, "--"+k)
		}
		return strings.Join(parts, "/")
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var lines []string
	for _, e := range errs {
		var fe *mirror.FieldError
		if errors.As(e, &fe) {
			line := flagFor(fe.Field) + ": " + fe.Problem
			if !slices.Contains(lines, line) { // a pattern list checked twice says it once
				lines = append(lines, line)
			}
		} else {
			lines = append(lines, e.Error())
		}
	}
	return fmt.Errorf("invalid mirror flow (see kdr mirror run --help):\n  %s", strings.Join(lines, "\n  "))
}

// kebab turns a Go field name into a flag name: SourceAlias → source-alias.
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
