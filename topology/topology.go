package topology

import (
	"time"

	"github.com/kdr-io/kdr/clientsec"
)

// The document header every topology file carries.
const (
	APIVersion = "kdr.io/v1"
	Kind       = "Topology"
)

// Pattern types, Pattern.Type.
const (
	ActivePassive = "active-passive"
	ActiveActive  = "active-active"
	HubAndSpoke   = "hub-and-spoke"
)

// Coordination backends, Coordination.Backend.
const (
	BackendFile   = "file"
	BackendConsul = "consul"
)

// Topology is one document. Field tags are the YAML keys.
type Topology struct {
	APIVersion string   `mapstructure:"apiVersion"`
	Kind       string   `mapstructure:"kind"`
	Metadata   Metadata `mapstructure:"metadata"`
	// Clusters are the Kafka clusters of the estate, by unique name.
	Clusters []Cluster `mapstructure:"clusters"`
	// Replication lists the patterns; Flows expands them.
	Replication []Pattern `mapstructure:"replication"`
	// Mirror holds the defaults of every flow; a pattern's Mirror block
	// overrides them field by field.
	Mirror MirrorSettings `mapstructure:"mirror"`
	// Failover is the failover policy (issue 6 uses it).
	Failover FailoverPolicy `mapstructure:"failover"`

	// File is the path the document was read from ("" for the built-in
	// demo); errors name it.
	File string `mapstructure:"-"`
}

// Metadata names the topology.
type Metadata struct {
	Name string `mapstructure:"name"`
}

// Cluster is one Kafka cluster: an existing one reached through Bootstrap,
// or one kdr runs itself (Local). Exactly one of the two is set.
type Cluster struct {
	// Name is the cluster's alias: in flows, in prefixed topic names
	// ("east.orders") and in metrics.
	Name string `mapstructure:"name"`
	// Region (or site) the cluster lives in, for display and for checks
	// that a flow crosses regions.
	Region string `mapstructure:"region"`
	// Bootstrap servers (host:port) of an existing cluster.
	Bootstrap []string `mapstructure:"bootstrap"`
	// Local makes kdr run the cluster (kdr up).
	Local *LocalCluster `mapstructure:"local"`
	// Security is how kdr's clients connect to the cluster.
	Security ClientSecurity `mapstructure:"security"`
}

// LocalCluster is a cluster kdr up runs as child processes on this machine.
// Broker i (0-based, node ID i+1) listens for Kafka on BasePort+i, for raft
// on BasePort+100+i, and serves metrics on BasePort+200+i.
type LocalCluster struct {
	// Brokers is the broker count (default 3, at most 99).
	Brokers int `mapstructure:"brokers"`
	// Host to listen on (default 127.0.0.1).
	Host string `mapstructure:"host"`
	// BasePort is broker 0's Kafka port (required).
	BasePort int `mapstructure:"basePort"`
	// DataDir is where the brokers keep their logs; relative paths are
	// under kdr up's state dir. Default "<cluster name>".
	DataDir string `mapstructure:"dataDir"`
	// Racks gives broker i the rack Racks[i] (broker.rack); empty means
	// no racks. When set it has one entry per broker.
	Racks []string `mapstructure:"racks"`
	// ReplicationFactor and Partitions are the brokers' defaults for
	// created topics (default.replication.factor, num.partitions);
	// 0 means min(3, Brokers) and 3.
	ReplicationFactor int `mapstructure:"replicationFactor"`
	Partitions        int `mapstructure:"partitions"`
	// MinInsyncReplicas is min.insync.replicas (0: min(2, RF)).
	MinInsyncReplicas int `mapstructure:"minInsyncReplicas"`
	// GroupInitialRebalanceDelayMs is group.initial.rebalance.delay.ms:
	// how long a group's first rebalance waits for more members. 0 by
	// default, as in the server.properties Kafka ships for development:
	// a mirror worker started by kdr up then owns its partitions at once
	// instead of 3 s later (Kafka's broker default, the value for a
	// production estate where many consumers start together).
	GroupInitialRebalanceDelayMs int `mapstructure:"groupInitialRebalanceDelayMs"`
}

// ClientSecurity is how kdr's clients authenticate to a cluster: TLS and
// SASL, under "security" (see package clientsec). kdr's own brokers do not
// speak TLS or SASL yet; these apply to existing clusters.
type ClientSecurity = clientsec.Config

// Pattern is one replication pattern. Which fields apply depends on Type:
//
//   - active-passive: Primary → Standby (one flow);
//   - active-active: every ordered pair of Clusters (two flows for two);
//   - hub-and-spoke: each spoke → Hub with the Up topic selection, Hub →
//     each spoke with Down (either may be empty to run one direction only).
type Pattern struct {
	Type string `mapstructure:"type"`

	Primary string `mapstructure:"primary"`
	Standby string `mapstructure:"standby"`

	Clusters []string `mapstructure:"clusters"`

	Hub    string          `mapstructure:"hub"`
	Spokes []string        `mapstructure:"spokes"`
	Up     *TopicSelection `mapstructure:"up"`
	Down   *TopicSelection `mapstructure:"down"`

	// Mirror overrides the topology's mirror defaults for this pattern's
	// flows.
	Mirror MirrorSettings `mapstructure:"mirror"`
}

// TopicSelection picks topics by comma-separated, anchored RE2 patterns
// (MM2's topics and topics.exclude).
type TopicSelection struct {
	Topics        string `mapstructure:"topics"`
	TopicsExclude string `mapstructure:"topicsExclude"`
}

// MirrorSettings are a flow's mirror settings. Zero values (nil pointers,
// "", 0) inherit: pattern, then topology, then mirror.DefaultFlow.
type MirrorSettings struct {
	Topics        string `mapstructure:"topics"`
	TopicsExclude string `mapstructure:"topicsExclude"`
	Groups        string `mapstructure:"groups"`
	GroupsExclude string `mapstructure:"groupsExclude"`
	// Naming is "prefix" (MM2's default) or "identity".
	Naming    string `mapstructure:"naming"`
	Separator string `mapstructure:"separator"`

	RefreshInterval    time.Duration `mapstructure:"refreshInterval"`
	CheckpointInterval time.Duration `mapstructure:"checkpointInterval"`
	HeartbeatInterval  time.Duration `mapstructure:"heartbeatInterval"`
	SessionTimeout     time.Duration `mapstructure:"sessionTimeout"`
	DeliveryTimeout    time.Duration `mapstructure:"deliveryTimeout"`
	ReplicationFactor  int16         `mapstructure:"replicationFactor"`
	BatchRecords       int           `mapstructure:"batchRecords"`
	// CommitInterval is mirror.Flow.CommitInterval; here only a positive
	// value, as 0 inherits (`kdr mirror run --commit-interval 0` commits
	// after every cycle).
	CommitInterval time.Duration `mapstructure:"commitInterval"`
	// OffsetSyncsRetention is retention.ms of the offset-syncs topic (default
	// 7 days, Kafka's default retention): set it to the longest retention
	// of the mirrored topics, or positions further behind cannot be
	// translated once their syncs expire.
	OffsetSyncsRetention time.Duration `mapstructure:"offsetSyncsRetention"`
	// MaxBytesPerSecond caps each worker's reading from the source, to
	// spare a link between regions; 0 is no cap, so a pattern can lift a
	// cap the topology's mirror block sets (unset inherits).
	MaxBytesPerSecond *int64 `mapstructure:"maxBytesPerSecond"`
	// OffsetSyncsLocation is where the offset-syncs topic lives:
	// "source" (default, as MM2) or "target", so that the workers only
	// read from the source (MM2's offset-syncs.topic.location).
	OffsetSyncsLocation string `mapstructure:"offsetSyncsTopicLocation"`

	SyncGroupOffsets   *bool `mapstructure:"syncGroupOffsets"`
	SyncTopicConfigs   *bool `mapstructure:"syncTopicConfigs"`
	SyncTopicACLs      *bool `mapstructure:"syncTopicACLs"`
	SyncTopicDeletions *bool `mapstructure:"syncTopicDeletions"`
	// LocalRecordsOnly (identity naming) copies only records written on
	// the source itself; see mirror.Flow.LocalRecordsOnly. An
	// active-active pattern of three or more clusters with identity naming
	// sets it unless a mirror block does.
	LocalRecordsOnly *bool `mapstructure:"localRecordsOnly"`
	// ForwardBatches (default true) forwards the source's batches as they
	// are; see mirror.Flow.ForwardBatches.
	ForwardBatches *bool `mapstructure:"forwardBatches"`

	// Workers is how many mirror worker processes kdr up runs per flow
	// (default 1); they share the flow's partitions.
	Workers int `mapstructure:"workers"`
}

// FailoverPolicy says how failover is coordinated and what a planned
// switchover may accept.
type FailoverPolicy struct {
	Coordination Coordination `mapstructure:"coordination"`
	// MaxLagRecords and MaxLagSeconds bound the mirror lag a planned
	// switchover starts from (default 10000 records, 30 s); beyond them
	// the pre-flight refuses.
	MaxLagRecords int64         `mapstructure:"maxLagRecords"`
	MaxLag        time.Duration `mapstructure:"maxLag"`
	// Timeouts bound each step.
	Timeouts FailoverTimeouts `mapstructure:"timeouts"`
}

// Coordination is where failover state lives.
type Coordination struct {
	// Backend is "file" (default: a JSON file under the state dir) or
	// "consul".
	Backend string       `mapstructure:"backend"`
	Consul  ConsulConfig `mapstructure:"consul"`
	// Path of the file backend's state (default "<state dir>/failover").
	Path string `mapstructure:"path"`
}

// ConsulConfig reaches a Consul agent.
type ConsulConfig struct {
	Address   string `mapstructure:"address"`   // default 127.0.0.1:8500
	Token     string `mapstructure:"token"`     // ACL token, or TokenEnv
	TokenEnv  string `mapstructure:"tokenEnv"`  // env var holding the token
	KeyPrefix string `mapstructure:"keyPrefix"` // default "kdr/<topology name>"
}

// FailoverTimeouts bound failover steps (defaults: fence 30 s, drain 2 m,
// promote 30 s).
type FailoverTimeouts struct {
	Fence   time.Duration `mapstructure:"fence"`
	Drain   time.Duration `mapstructure:"drain"`
	Promote time.Duration `mapstructure:"promote"`
}

// LocalPorts are the ports broker i (0-based) of a local cluster uses.
func (l LocalCluster) LocalPorts(i int) (kafka, raft, metrics int) {
	return l.BasePort + i, l.BasePort + 100 + i, l.BasePort + 200 + i
}
