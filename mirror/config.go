package mirror

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/clientsec"
	"github.com/kdr-io/kdr/mirror/mm2"
	"github.com/kdr-io/kdr/mirror/naming"
)

// Offset-syncs topic locations accepted in Flow.OffsetSyncsLocation
// (MM2's offset-syncs.topic.location).
const (
	SyncsOnSource = "source"
	SyncsOnTarget = "target"
)

// Naming policies accepted in Flow.Naming.
const (
	NamingPrefix   = "prefix"   // MM2 DefaultReplicationPolicy: orders → east.orders
	NamingIdentity = "identity" // MM2 IdentityReplicationPolicy: orders → orders
)

// DefaultConfigsExclude is MM2's config.properties.exclude default
// (DefaultConfigPropertyFilter) plus the two timestamp bounds that replaced
// message.timestamp.difference.max.ms in Kafka 3.6. These properties describe
// the local cluster (its replicas, its clocks, its durability promise), not
// the data, so the target keeps its own. Note what is not here: MM2 syncs
// cleanup.policy, segment.*, retention.* and max.message.bytes, and so does
// kdr; a compacted source topic must stay compacted on the target.
const DefaultConfigsExclude = `follower\.replication\.throttled\.replicas, leader\.replication\.throttled\.replicas, ` +
	`message\.timestamp\.difference\.max\.ms, message\.timestamp\.before\.max\.ms, message\.timestamp\.after\.max\.ms, ` +
	`message\.timestamp\.type, unclean\.leader\.election\.enable, min\.insync\.replicas`

// ClusterConn says how to reach one cluster.
type ClusterConn struct {
	// Brokers are seed brokers, host:port (bootstrap.servers).
	Brokers []string
	// Security is TLS and SASL, for clusters that ask for them
	// (security.protocol, sasl.mechanism, ssl.truststore...).
	Security clientsec.Config
}

// Flow is the configuration of one replication flow, SourceAlias →
// TargetAlias. Start from DefaultFlow; Validate names the field at fault.
// Each field's comment gives the MM2 property it mirrors, if any.
type Flow struct {
	// SourceAlias and TargetAlias name the clusters (MM2 cluster aliases,
	// "east" in "east.orders"). See naming.ValidateAlias.
	SourceAlias, TargetAlias string
	Source, Target           ClusterConn

	// Topics and TopicsExclude select source topics (MM2 topics,
	// topics.exclude): comma-separated, fully anchored RE2 patterns.
	// Defaults: naming.DefaultTopicsInclude, naming.DefaultTopicsExclude.
	Topics, TopicsExclude string
	// Groups and GroupsExclude select the source consumer groups whose
	// offsets are checkpointed (MM2 groups, groups.exclude). Defaults:
	// naming.DefaultGroupsInclude, naming.DefaultGroupsExclude. The flow's
	// own WorkersGroup and every kdr-mirror-.* group (flows' default
	// workers groups) are always excluded.
	Groups, GroupsExclude string

	// Naming is NamingPrefix (default) or NamingIdentity
	// (replication.policy.class).
	Naming string
	// Separator goes between alias and topic under prefix naming
	// (replication.policy.separator); "" means ".".
	Separator string
	// LocalRecordsOnly (identity naming only) copies only the records
	// written on the source cluster itself: records mirrored into it (with
	// a kdr-origin header) are skipped. For meshes in which every cluster
	// mirrors every other directly, such as active-active between three or
	// more clusters: forwarded on, a record would reach a cluster twice,
	// straight from its origin and through a third cluster. The kdr-origin
	// header stops loops, not a second path.
	LocalRecordsOnly bool

	// SyncTopicConfigs copies the source topic's explicitly set configs to
	// the remote topic, minus ConfigsExclude (sync.topic.configs.enabled,
	// default true). Defaults stay the target broker's own (MM2
	// use.defaults.from=target).
	SyncTopicConfigs bool
	// ConfigsExclude lists config names never synced, as comma-separated
	// patterns (config.properties.exclude). Default DefaultConfigsExclude.
	ConfigsExclude string

	// SyncTopicDeletions deletes a remote topic on the target when the
	// worker sees its source topic deleted (default false; MM2 has no such
	// setting and never deletes). Only remote topics of topics this flow
	// mirrors are deleted, named by the naming policy, and only after the
	// source confirms the topic is gone; a topic recreated on the source
	// keeps its remote topic.
	SyncTopicDeletions bool
	// SyncTopicACLs copies the ALLOW ACLs of mirrored topics to their remote
	// topics every RefreshInterval, as read-only grants
	// (sync.topic.acls.enabled, default true). See the package doc.
	SyncTopicACLs bool

	// RefreshInterval is how often source topics and partitions are listed
	// and remote topics created, grown and reconfigured
	// (refresh.topics.interval.seconds; MM2's default of 600 s makes a new
	// topic wait ten minutes, kdr's is 5 s).
	RefreshInterval time.Duration
	// ReplicationFactor of created remote topics (replication.factor). 0,
	// the default, copies the source topic's, capped at the number of target
	// brokers (MM2 always uses 2).
	ReplicationFactor int16
	// HeartbeatInterval is how often a heartbeat is written to the target's
	// heartbeats topic (emit.heartbeats.interval.seconds, default 1 s); a
	// negative value disables heartbeats.
	HeartbeatInterval time.Duration

	// WorkersGroup is the consumer group, on the source, that the flow's
	// worker processes join to share partitions. Default
	// "kdr-mirror-<source>-<target>".
	WorkersGroup string
	// InstanceID, if set, makes this worker a static group member
	// (group.instance.id): a restarted worker takes its partitions back at
	// once instead of waiting for the session timeout.
	InstanceID string
	// SessionTimeout is the worker group's session.timeout.ms (default
	// 10 s): how long a crashed worker keeps its partitions.
	SessionTimeout time.Duration

	// BatchRecords bounds the records copied per cycle (default 10000). A
	// cycle's records are produced and acknowledged together, then
	// offset-synced and committed while the next cycle copies.
	BatchRecords int
	// CommitInterval is the shortest time between two commits of the
	// workers' source positions, each preceded by the offset syncs of what
	// it covers (MM2's offset.flush.interval.ms, 60 s there; default
	// 100 ms). A crash re-copies at most what one interval copied plus two
	// cycles. 0 commits after every cycle, holding the next cycle's
	// hand-over while a commit is out, so that a crash re-copies at most
	// two cycles (2 × BatchRecords records) per worker; each commit costs
	// two round trips to the source.
	CommitInterval time.Duration
	// Compression of the batches sent to the target (compression.type of
	// MM2's producer): "none" (default, as MM2), "gzip", "snappy", "lz4" or
	// "zstd". Compressing spends the mirror's CPU to save bandwidth between
	// regions; with it the too-large check is left to the target (a record
	// it refuses even alone is then skipped), as its compressed size is not
	// known in advance.
	Compression string
	// ForwardBatches sends the source's record batches to the target as
	// they are (default true), rewriting only the producer fields and the
	// CRC, instead of decoding every record and batching it again: about
	// half the CPU per GB. It applies with Compression "none"; forwarded
	// batches keep the source's compression. Under identity naming an
	// uncompressed batch is rewritten to give each record the provenance
	// hop (its compressed batches go record by record). Batches that
	// cannot go as they are (transactions, compaction gaps, a batch the
	// target refuses as too large) are copied record by record.
	ForwardBatches bool
	// DeliveryTimeout bounds how long a copy may wait to be sent to the
	// target before it is retried (delivery.timeout.ms, default 30 s). A
	// copy already sent when the target went silent is waited for until the
	// connection answers or breaks: giving up on it could reorder or lose
	// records under the idempotent producer.
	DeliveryTimeout time.Duration
	// OffsetSyncsRetention is retention.ms of the offset-syncs topic the
	// flow creates (default 7 days).
	OffsetSyncsRetention time.Duration
	// MaxBytesPerSecond caps how many bytes of records each worker reads
	// from the source per second (0, the default: no cap), to spare a link
	// between regions or the source's brokers; a flow of N workers reads at
	// most N times it. Record batches are counted as the source stored them
	// (compressed if they were), forwarded or copied record by record.
	MaxBytesPerSecond int64
	// OffsetSyncsLocation is the cluster holding the offset-syncs topic
	// (offset-syncs.topic.location, KIP-716): SyncsOnSource (default, as
	// MM2) or SyncsOnTarget, with which the workers write nothing to the
	// source but their group's commits, so a principal that may only read
	// topics there (READ and DESCRIBE on topics and groups) is enough.
	OffsetSyncsLocation string

	// CheckpointInterval is how often the selected groups' committed
	// offsets are translated and written as checkpoints to
	// <source>.checkpoints.internal on the target
	// (emit.checkpoints.interval.seconds and
	// sync.group.offsets.interval.seconds; MM2's 60 s, kdr's 5 s).
	CheckpointInterval time.Duration
	// SyncGroupOffsets commits the translated offsets to the same groups on
	// the target while they have no members there, never moving a partition
	// back (sync.group.offsets.enabled). Default true, where MM2's is false:
	// MM2 translates approximately (up to offset.lag.max records behind),
	// kdr exactly, so a consumer that fails over resumes at the first record
	// it had not consumed.
	SyncGroupOffsets bool
}

// DefaultMemoryLimitMiB is the soft memory limit `kdr mirror run` sets for
// its process by default: a worker's live memory is bounded (fetched bytes,
// records per cycle), and the limit keeps its RSS under the mirror's goal of
// 256 MB, the garbage collector's headroom included.
const DefaultMemoryLimitMiB = 192

// DefaultFlow returns a Flow with every default set; fill in the aliases and
// brokers.
func DefaultFlow() Flow {
	return Flow{
		Topics:               naming.DefaultTopicsInclude,
		TopicsExclude:        naming.DefaultTopicsExclude,
		Groups:               naming.DefaultGroupsInclude,
		GroupsExclude:        naming.DefaultGroupsExclude,
		Naming:               NamingPrefix,
		SyncTopicConfigs:     true,
		ConfigsExclude:       DefaultConfigsExclude,
		SyncTopicACLs:        true,
		RefreshInterval:      5 * time.Second,
		HeartbeatInterval:    time.Second,
		SessionTimeout:       10 * time.Second,
		BatchRecords:         10000,
		CommitInterval:       100 * time.Millisecond,
		Compression:          "none",
		ForwardBatches:       true,
		DeliveryTimeout:      30 * time.Second,
		OffsetSyncsRetention: 7 * 24 * time.Hour,
		OffsetSyncsLocation:  SyncsOnSource,
		CheckpointInterval:   5 * time.Second,
		SyncGroupOffsets:     true,
	}
}

// SyncsCluster is the alias of the cluster holding the flow's offset-syncs
// topic: its source, or its target with OffsetSyncsLocation SyncsOnTarget.
func (f Flow) SyncsCluster() string {
	if f.OffsetSyncsLocation == SyncsOnTarget {
		return f.TargetAlias
	}
	return f.SourceAlias
}

// SyncsTopic is the flow's offset-syncs topic, named as MM2 names it after
// the other cluster than the one holding it: mm2-offset-syncs.<target>.internal
// on the source, mm2-offset-syncs.<source>.internal on the target. Several
// flows into one target (hub and spoke) keep theirs apart that way.
func (f Flow) SyncsTopic() string {
	if f.OffsetSyncsLocation == SyncsOnTarget {
		return mm2.OffsetSyncsTopic(f.SourceAlias)
	}
	return mm2.OffsetSyncsTopic(f.TargetAlias)
}

// Name is the flow's label in metrics and logs: "east->west".
func (f Flow) Name() string { return f.SourceAlias + "->" + f.TargetAlias }

// Group is WorkersGroup, or its default.
func (f Flow) Group() string {
	if f.WorkersGroup != "" {
		return f.WorkersGroup
	}
	return "kdr-mirror-" + f.SourceAlias + "-" + f.TargetAlias
}

// workersGroups matches the default workers group of every flow
// (Flow.Group): another flow's workers, which commit to the same cluster
// when flows share a source, are not consumers to fail over, and their
// positions translated onto a target mean nothing there.
const workersGroups = `^kdr-mirror-.*$`

// GroupFilter selects the groups to checkpoint: Groups minus GroupsExclude,
// minus the flow's own WorkersGroup and every group named as kdr names flows'
// workers groups (kdr-mirror-<source>-<target>). Call Validate first.
func (f Flow) GroupFilter() naming.Filter {
	filter, _ := naming.NewFilter(f.Groups, f.GroupsExclude)
	filter.Exclude = append(filter.Exclude, regexp.MustCompile("^"+regexp.QuoteMeta(f.Group())+"$"), regexp.MustCompile(workersGroups))
	return filter
}

// Policy is the naming policy Naming and Separator select. Call Validate
// first; an unknown Naming gives Prefix.
func (f Flow) Policy() naming.Policy {
	if f.Naming == NamingIdentity {
		return naming.Identity{Separator: f.Separator}
	}
	return naming.Prefix{Separator: f.Separator}
}

// ErrInvalidFlow is wrapped by every error Validate returns.
var ErrInvalidFlow = errors.New("mirror: invalid flow")

// FieldError is one invalid Flow field; Validate joins them. Field is the
// Go field name ("Source.Brokers"), so that a CLI can name its own flag.
type FieldError struct {
	Field, Problem string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrInvalidFlow, e.Field, e.Problem)
}

// Unwrap makes errors.Is(err, ErrInvalidFlow) hold.
func (e *FieldError) Unwrap() error { return ErrInvalidFlow }

func invalid(field string, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Validate checks every field and reports all problems, each naming its
// field and value.
func (f Flow) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	switch f.Naming {
	case NamingPrefix, NamingIdentity:
	default:
		add(invalid("Naming", "%q: want %q or %q", f.Naming, NamingPrefix, NamingIdentity))
	}
	if f.LocalRecordsOnly && f.Naming != NamingIdentity {
		add(invalid("LocalRecordsOnly", "only with identity naming (under prefix naming a mirrored topic has its own name: leave it out with the topics exclude patterns)"))
	}
	if strings.ContainsAny(f.Separator, ", ") {
		add(invalid("Separator", "%q: must not contain commas or spaces", f.Separator))
	}
	p := f.Policy()
	if f.SourceAlias == "" {
		add(invalid("SourceAlias", "required: the source cluster's alias (east in east.orders)"))
	} else if err := naming.ValidateAlias(p, f.SourceAlias); err != nil {
		add(invalid("SourceAlias", "%v", err))
	}
	if f.TargetAlias == "" {
		add(invalid("TargetAlias", "required: the target cluster's alias"))
	} else if err := naming.ValidateAlias(p, f.TargetAlias); err != nil {
		add(invalid("TargetAlias", "%v", err))
	}
	if f.SourceAlias != "" && f.SourceAlias == f.TargetAlias {
		add(invalid("TargetAlias", "%q is also the source alias; a flow joins two different clusters", f.TargetAlias))
	}
	add(validBrokers("Source.Brokers", f.Source.Brokers))
	add(validBrokers("Target.Brokers", f.Target.Brokers))
	for _, c := range []struct {
		side string
		sec  clientsec.Config
	}{{"Source", f.Source.Security}, {"Target", f.Target.Security}} {
		for _, p := range c.sec.Problems() {
			fields := make([]string, len(p.Fields))
			for i, name := range p.Fields {
				fields[i] = c.side + ".Security." + name
			}
			add(invalid(strings.Join(fields, "/"), "%s (%s)", p.Problem, p.Fix))
		}
	}
	if _, err := naming.NewFilter(f.Topics, f.TopicsExclude); err != nil {
		add(invalid("Topics/TopicsExclude", "%v", err))
	}
	if _, err := naming.NewFilter(f.Groups, f.GroupsExclude); err != nil {
		add(invalid("Groups/GroupsExclude", "%v", err))
	}
	if _, err := naming.ParsePatterns(f.ConfigsExclude); err != nil {
		add(invalid("ConfigsExclude", "%v", err))
	}
	positive := func(field string, d time.Duration) {
		if d <= 0 {
			add(invalid(field, "%s: must be positive", d))
		}
	}
	positive("RefreshInterval", f.RefreshInterval)
	positive("SessionTimeout", f.SessionTimeout)
	positive("DeliveryTimeout", f.DeliveryTimeout)
	positive("OffsetSyncsRetention", f.OffsetSyncsRetention)
	if f.MaxBytesPerSecond < 0 {
		add(invalid("MaxBytesPerSecond", "%d: want 0 (no cap) or a positive byte rate", f.MaxBytesPerSecond))
	}
	switch f.OffsetSyncsLocation {
	case SyncsOnSource, SyncsOnTarget:
	default:
		add(invalid("OffsetSyncsLocation", "%q: want %q (MM2's default) or %q", f.OffsetSyncsLocation, SyncsOnSource, SyncsOnTarget))
	}
	positive("CheckpointInterval", f.CheckpointInterval)
	if f.HeartbeatInterval == 0 {
		add(invalid("HeartbeatInterval", "0: must be positive, or negative to disable heartbeats"))
	}
	if f.CommitInterval < 0 {
		add(invalid("CommitInterval", "%s: want 0 (after every cycle) or a positive duration", f.CommitInterval))
	}
	if f.ReplicationFactor < 0 {
		add(invalid("ReplicationFactor", "%d: want 0 (the source's) or a positive count", f.ReplicationFactor))
	}
	if _, err := CompressionCodec(f.Compression); err != nil {
		add(invalid("Compression", "%v", err))
	}
	if f.BatchRecords < 1 || f.BatchRecords > 1_000_000 {
		add(invalid("BatchRecords", "%d: want 1 to 1000000", f.BatchRecords))
	}
	if g := f.Group(); strings.TrimSpace(g) == "" {
		add(invalid("WorkersGroup", "%q: must not be blank", f.WorkersGroup))
	}
	return errors.Join(errs...)
}

var hostPort = regexp.MustCompile(`^[^\s,]+:[0-9]{1,5}$`)

func validBrokers(field string, brokers []string) error {
	if len(brokers) == 0 {
		return invalid(field, "empty: give at least one host:port")
	}
	for _, b := range brokers {
		if !hostPort.MatchString(b) {
			return invalid(field, "%q: want host:port", b)
		}
	}
	return nil
}

// configExcluded reports whether config name must not be synced.
func configExcluded(patterns []*regexp.Regexp, name string) bool {
	for _, re := range patterns {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// CompressionCodec is the franz-go codec of a compression name as Kafka's
// compression.type spells it: none ("" too), gzip, snappy, lz4 or zstd.
func CompressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("%q: want none, gzip, snappy, lz4 or zstd", name)
}
