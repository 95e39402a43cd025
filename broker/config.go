package broker

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/kdr-io/kdr/broker/cluster/raftstore"
	"github.com/kdr-io/kdr/broker/group"
	"github.com/kdr-io/kdr/broker/storage"
	"github.com/kdr-io/kdr/broker/wire"
)

// Config is one broker's configuration. Field comments name the Kafka broker
// property each one mirrors.
type Config struct {
	NodeID  int32  // node.id
	DataDir string // log.dirs (one directory)
	// Listen is the host:port the Kafka listener binds.
	Listen string
	// AdvertisedListen is the host:port clients are told to connect to
	// (advertised.listeners). Empty: Listen, or the actual bound address
	// when Listen's port is 0.
	AdvertisedListen string
	// MetricsListen is the host:port of the HTTP server for /metrics and
	// /healthz; empty disables it.
	MetricsListen string
	ClusterID     string // cluster id reported in Metadata and DescribeCluster
	Rack          string // broker.rack; empty = none

	AutoCreateTopics         bool  // auto.create.topics.enable (default true)
	NumPartitions            int32 // num.partitions for auto-created topics (default 1)
	DefaultReplicationFactor int16 // default.replication.factor (default 1)
	// OffsetsTopicReplicationFactor is offsets.topic.replication.factor;
	// capped at the number of registered brokers when the topic is created.
	OffsetsTopicReplicationFactor int16

	// Log holds the broker-wide defaults of every topic config (log.*
	// properties); topics override them.
	Log storage.Config
	// MinInsyncReplicas is min.insync.replicas (stored and reported; acks=all
	// enforcement arrives with replication).
	MinInsyncReplicas int32
	// LogMaintenanceInterval is log.retention.check.interval.ms: how often
	// segments are rolled by age, retention applied, and compaction run.
	LogMaintenanceInterval time.Duration
	// LogWritebackBytes is log.writeback.bytes, kdr's own: after this many
	// bytes are appended to a segment the broker asks the kernel to start
	// writing them to disk, so that dirty pages do not pile up to the
	// kernel's threshold and go out in one CPU-heavy burst (see
	// storage.Writeback). 0 leaves it all to the kernel, as Kafka does.
	LogWritebackBytes int64
	// LogDropBehindBytes is log.drop.behind.bytes, kdr's own: with early
	// writeback, what lies more than this many bytes behind a segment's end
	// is dropped from the page cache once on disk, so appends reuse the
	// same pages (see storage.Writeback). 0, the default, keeps Kafka's
	// behaviour: written data stays cached until the kernel needs the
	// memory, and consumers minutes behind still read from memory.
	LogDropBehindBytes int64

	// Replication and the metadata quorum.
	Cluster ClusterConfig
	// ReplicaLagTimeMax is replica.lag.time.max.ms: a follower not caught up
	// for this long is dropped from the ISR.
	ReplicaLagTimeMax time.Duration
	// ReplicaFetchWaitMax is replica.fetch.wait.max.ms.
	ReplicaFetchWaitMax time.Duration
	// OffsetCommitTimeout is offsets.commit.timeout.ms: how long a commit
	// waits for the offsets partition's ISR.
	OffsetCommitTimeout time.Duration
	// PeerAddresses overrides the address used to reach another broker's
	// Kafka listener for replication (node id → host:port), e.g. through
	// a proxy; clients still use the advertised addresses.
	PeerAddresses map[int32]string

	Socket wire.Config
	Group  group.Config
}

// DefaultConfig returns Kafka's defaults for a single broker on localhost.
func DefaultConfig() Config {
	return Config{
		NodeID:                        1,
		DataDir:                       "./kdr-data",
		Listen:                        "127.0.0.1:9092",
		MetricsListen:                 "127.0.0.1:9644",
		ClusterID:                     "kdr-cluster",
		AutoCreateTopics:              true,
		NumPartitions:                 1,
		DefaultReplicationFactor:      1,
		OffsetsTopicReplicationFactor: 3,
		Log:                           storage.DefaultConfig(),
		MinInsyncReplicas:             1,
		LogMaintenanceInterval:        5 * time.Minute,
		LogWritebackBytes:             1 << 20,
		Cluster:                       DefaultClusterConfig(),
		ReplicaLagTimeMax:             30 * time.Second,
		ReplicaFetchWaitMax:           500 * time.Millisecond,
		OffsetCommitTimeout:           5 * time.Second,
		Socket:                        wire.DefaultConfig(),
		Group:                         group.DefaultConfig(),
	}
}

// Validate reports the first invalid setting, naming the property.
func (c Config) Validate() error {
	switch {
	case c.NodeID < 0:
		return fmt.Errorf("node.id=%d: must be 0 or more", c.NodeID)
	case c.DataDir == "":
		return fmt.Errorf("data dir is empty: set --data-dir")
	case c.NumPartitions < 1:
		return fmt.Errorf("num.partitions=%d: must be at least 1", c.NumPartitions)
	case c.DefaultReplicationFactor < 1:
		return fmt.Errorf("default.replication.factor=%d: must be at least 1", c.DefaultReplicationFactor)
	case c.OffsetsTopicReplicationFactor < 1:
		return fmt.Errorf("offsets.topic.replication.factor=%d: must be at least 1", c.OffsetsTopicReplicationFactor)
	case c.MinInsyncReplicas < 1:
		return fmt.Errorf("min.insync.replicas=%d: must be at least 1", c.MinInsyncReplicas)
	case c.LogMaintenanceInterval <= 0:
		return fmt.Errorf("log.retention.check.interval.ms=%s: must be positive", c.LogMaintenanceInterval)
	case c.LogWritebackBytes < 0:
		return fmt.Errorf("log.writeback.bytes=%d: must be a byte count such as 1048576, or 0 to leave writeback to the kernel (--log-writeback-bytes)", c.LogWritebackBytes)
	case c.LogDropBehindBytes < 0:
		return fmt.Errorf("log.drop.behind.bytes=%d: must be a byte count such as 67108864, or 0 to keep written data cached (--log-drop-behind-bytes)", c.LogDropBehindBytes)
	case c.LogDropBehindBytes > 0 && c.LogWritebackBytes == 0:
		return fmt.Errorf("log.drop.behind.bytes=%d needs early writeback: set log.writeback.bytes (--log-writeback-bytes) above 0, or --log-drop-behind-bytes to 0", c.LogDropBehindBytes)
	case c.ClusterID == "":
		return fmt.Errorf("cluster id is empty: set --cluster-id")
	case len(c.ClusterID) > raftstore.MaxClusterIDLen:
		return fmt.Errorf("cluster id is %d bytes long: --cluster-id takes at most %d (it goes in every raft connection's preamble)", len(c.ClusterID), raftstore.MaxClusterIDLen)
	case c.ReplicaLagTimeMax <= 0:
		return fmt.Errorf("replica.lag.time.max.ms=%s: must be positive", c.ReplicaLagTimeMax)
	case c.ReplicaFetchWaitMax <= 0:
		return fmt.Errorf("replica.fetch.wait.max.ms=%s: must be positive", c.ReplicaFetchWaitMax)
	case c.OffsetCommitTimeout <= 0:
		return fmt.Errorf("offsets.commit.timeout.ms=%s: must be positive", c.OffsetCommitTimeout)
	}
	for _, id := range slices.Sorted(maps.Keys(c.PeerAddresses)) {
		if err := validHostPort(fmt.Sprintf("peer address of broker %d", id), c.PeerAddresses[id], false); err != nil {
			return err
		}
	}
	if err := c.Cluster.Validate(c.NodeID); err != nil {
		return err
	}
	if err := validHostPort("listen", c.Listen, true); err != nil {
		return err
	}
	if c.AdvertisedListen != "" {
		if err := validHostPort("advertised listen", c.AdvertisedListen, false); err != nil {
			return err
		}
	}
	if c.MetricsListen != "" {
		if err := validHostPort("metrics listen", c.MetricsListen, true); err != nil {
			return err
		}
	}
	if err := c.Log.Validate(); err != nil {
		return fmt.Errorf("log defaults: %w", err)
	}
	if err := c.Socket.Validate(); err != nil {
		return err
	}
	return c.Group.Validate()
}

func validHostPort(what, hp string, portZeroOK bool) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("%s %q: want host:port (%v)", what, hp, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 || (p == 0 && !portZeroOK) {
		return fmt.Errorf("%s %q: port must be a number 1-65535", what, hp)
	}
	if host == "" && !portZeroOK {
		return fmt.Errorf("%s %q: a host is required", what, hp)
	}
	return nil
}
