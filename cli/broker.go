package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/kdr-io/kdr/broker"
)

// BrokerOptions are the parsed options of `kdr broker`.
type BrokerOptions struct {
	IO         IO
	Global     *globalOptions
	ConfigFile string
	Config     broker.Config
}

// brokerSetting binds one flag to one broker.Config field. The table is the
// single list of broker settings: flags, KDR_* variables and config file
// keys all come from it.
type brokerSetting struct {
	flag  string
	usage string
	// def registers the flag with its default from broker.DefaultConfig.
	def func(d *broker.Config, cmd *cobra.Command, name, usage string)
	// set copies the resolved value into the config.
	set func(c *broker.Config, v *viper.Viper, name string) error
}

// brokerSettings is the table of every broker flag.
func brokerSettings() []brokerSetting {
	return []brokerSetting{
		int32Setting("node-id", "node.id: this broker's id in the cluster", func(c *broker.Config) *int32 { return &c.NodeID }),
		stringSetting("data-dir", "directory for partition logs and metadata (log.dirs)", func(c *broker.Config) *string { return &c.DataDir }),
		stringSetting("listen", "host:port of the Kafka listener (port 0 picks a free port)", func(c *broker.Config) *string { return &c.Listen }),
		stringSetting("advertised-listen", "host:port clients are told to use (default: the bound listen address)", func(c *broker.Config) *string { return &c.AdvertisedListen }),
		stringSetting("metrics-listen", "host:port for /metrics and /healthz; empty disables", func(c *broker.Config) *string { return &c.MetricsListen }),
		stringSetting("cluster-id", "cluster id; a data dir belongs to one cluster", func(c *broker.Config) *string { return &c.ClusterID }),
		stringSetting("rack", "broker.rack", func(c *broker.Config) *string { return &c.Rack }),
		boolSetting("auto-create-topics-enable", "auto.create.topics.enable: create unknown topics on metadata requests", func(c *broker.Config) *bool { return &c.AutoCreateTopics }),
		int32Setting("num-partitions", "num.partitions: partitions of auto-created topics", func(c *broker.Config) *int32 { return &c.NumPartitions }),
		int16Setting("default-replication-factor", "default.replication.factor", func(c *broker.Config) *int16 { return &c.DefaultReplicationFactor }),
		int16Setting("offsets-topic-replication-factor", "offsets.topic.replication.factor (capped at the broker count)", func(c *broker.Config) *int16 { return &c.OffsetsTopicReplicationFactor }),
		int32Setting("min-insync-replicas", "min.insync.replicas default for topics", func(c *broker.Config) *int32 { return &c.MinInsyncReplicas }),
		msSetting("log-retention-check-interval-ms", "log.retention.check.interval.ms: how often retention, rolling and compaction run", func(c *broker.Config) *time.Duration { return &c.LogMaintenanceInterval }),
		int64Setting("log-writeback-bytes", "log.writeback.bytes: start writing each segment's appended bytes to disk every this many (0: when the kernel decides)", func(c *broker.Config) *int64 { return &c.LogWritebackBytes }),
		int64Setting("log-drop-behind-bytes", "log.drop.behind.bytes: drop what is this many bytes behind a segment's end from the page cache once on disk (0: keep it cached, as Kafka does)", func(c *broker.Config) *int64 { return &c.LogDropBehindBytes }),
		int64Setting("log-segment-bytes", "log.segment.bytes: segment size at which a log rolls", func(c *broker.Config) *int64 { return &c.Log.SegmentBytes }),
		int64Setting("log-roll-ms", "log.roll.ms: age at which the active segment rolls", func(c *broker.Config) *int64 { return &c.Log.SegmentMs }),
		int64Setting("log-retention-ms", "log.retention.ms: time to keep closed segments (-1: forever)", func(c *broker.Config) *int64 { return &c.Log.RetentionMs }),
		int64Setting("log-retention-bytes", "log.retention.bytes: partition size limit (-1: none)", func(c *broker.Config) *int64 { return &c.Log.RetentionBytes }),
		stringSetting("log-cleanup-policy", "log.cleanup.policy: delete, compact or compact,delete", func(c *broker.Config) *string { return &c.Log.CleanupPolicy }),
		int32Setting("message-max-bytes", "message.max.bytes: largest record batch accepted", func(c *broker.Config) *int32 { return &c.Log.MaxMessageBytes }),
		stringSetting("log-message-timestamp-type", "log.message.timestamp.type: CreateTime or LogAppendTime", func(c *broker.Config) *string { return &c.Log.TimestampType }),
		int64Setting("log-flush-interval-messages", "log.flush.interval.messages: fsync after this many messages", func(c *broker.Config) *int64 { return &c.Log.FlushMessages }),
		int64Setting("log-flush-interval-ms", "log.flush.interval.ms: longest time between fsyncs", func(c *broker.Config) *int64 { return &c.Log.FlushMs }),
		int64Setting("log-cleaner-delete-retention-ms", "log.cleaner.delete.retention.ms: how long tombstones survive compaction", func(c *broker.Config) *int64 { return &c.Log.DeleteRetentionMs }),
		float64Setting("log-cleaner-min-cleanable-ratio", "log.cleaner.min.cleanable.ratio", func(c *broker.Config) *float64 { return &c.Log.MinCleanableDirtyRatio }),
		int32Setting("socket-request-max-bytes", "socket.request.max.bytes: largest request accepted", func(c *broker.Config) *int32 { return &c.Socket.MaxRequestBytes }),
		msSetting("connections-max-idle-ms", "connections.max.idle.ms", func(c *broker.Config) *time.Duration { return &c.Socket.IdleTimeout }),
		int32Setting("offsets-topic-num-partitions", "offsets.topic.num.partitions", func(c *broker.Config) *int32 { return &c.Group.OffsetsTopicPartitions }),
		msSetting("group-min-session-timeout-ms", "group.min.session.timeout.ms", func(c *broker.Config) *time.Duration { return &c.Group.MinSessionTimeout }),
		msSetting("group-max-session-timeout-ms", "group.max.session.timeout.ms", func(c *broker.Config) *time.Duration { return &c.Group.MaxSessionTimeout }),
		msSetting("group-initial-rebalance-delay-ms", "group.initial.rebalance.delay.ms: wait for more members before the first rebalance", func(c *broker.Config) *time.Duration { return &c.Group.InitialRebalanceDelay }),
		stringSetting("raft-listen", "host:port of the metadata quorum (raft) listener; empty runs a single broker with local metadata", func(c *broker.Config) *string { return &c.Cluster.RaftListen }),
		setting("controller-quorum", "controller.quorum.voters: the voting brokers as ID@HOST:RAFTPORT,... (same on every broker)",
			func(d *broker.Config, cmd *cobra.Command, n, u string) { cmd.Flags().String(n, "", u) },
			func(c *broker.Config, v *viper.Viper, n string) error {
				q, err := broker.ParseQuorum(v.GetString(n))
				c.Cluster.Quorum = q
				return err
			}),
		setting("join", "raft address of any existing member, for a broker that is not a voter (comma-separated for several)",
			func(d *broker.Config, cmd *cobra.Command, n, u string) { cmd.Flags().String(n, "", u) },
			func(c *broker.Config, v *viper.Viper, n string) error {
				c.Cluster.Join = nil
				for _, s := range strings.Split(v.GetString(n), ",") {
					if s = strings.TrimSpace(s); s != "" {
						c.Cluster.Join = append(c.Cluster.Join, s)
					}
				}
				return nil
			}),
		msSetting("broker-session-timeout-ms", "broker.session.timeout.ms: a broker silent this long is fenced and loses its leaderships", func(c *broker.Config) *time.Duration { return &c.Cluster.SessionTimeout }),
		msSetting("broker-heartbeat-interval-ms", "broker.heartbeat.interval.ms", func(c *broker.Config) *time.Duration { return &c.Cluster.HeartbeatInterval }),
		msSetting("leader-imbalance-check-interval-ms", "leader.imbalance.check.interval, in ms: preferred-leader elections (0 disables auto.leader.rebalance.enable)", func(c *broker.Config) *time.Duration { return &c.Cluster.LeaderImbalanceCheckInterval }),
		msSetting("replica-lag-time-max-ms", "replica.lag.time.max.ms: a follower not caught up this long leaves the ISR", func(c *broker.Config) *time.Duration { return &c.ReplicaLagTimeMax }),
		msSetting("replica-fetch-wait-max-ms", "replica.fetch.wait.max.ms", func(c *broker.Config) *time.Duration { return &c.ReplicaFetchWaitMax }),
		msSetting("offsets-commit-timeout-ms", "offsets.commit.timeout.ms: how long a commit waits for the offsets partition's ISR", func(c *broker.Config) *time.Duration { return &c.OffsetCommitTimeout }),
		setting("peer-addresses", "replication addresses overriding other brokers' advertised ones, as ID=HOST:PORT,... (proxies, multi-homed hosts)",
			func(d *broker.Config, cmd *cobra.Command, n, u string) { cmd.Flags().String(n, "", u) },
			func(c *broker.Config, v *viper.Viper, n string) error {
				m, err := broker.ParsePeerAddresses(v.GetString(n))
				c.PeerAddresses = m
				return err
			}),
		setting("peer-raft-addresses", "raft addresses overriding other quorum members' advertised ones, as ID=HOST:PORT,... (proxies, multi-homed hosts)",
			func(d *broker.Config, cmd *cobra.Command, n, u string) { cmd.Flags().String(n, "", u) },
			func(c *broker.Config, v *viper.Viper, n string) error {
				m, err := broker.ParsePeerAddresses(v.GetString(n))
				c.Cluster.PeerRaftAddresses = m
				return err
			}),
		msSetting("offsets-retention-ms", "offsets.retention.minutes, in ms: how long offsets of empty groups are kept", func(c *broker.Config) *time.Duration { return &c.Group.OffsetsRetention }),
	}
}

type flagDef = func(d *broker.Config, cmd *cobra.Command, name, usage string)
type flagSet = func(c *broker.Config, v *viper.Viper, name string) error

func setting(flag, usage string, def flagDef, set flagSet) brokerSetting {
	return brokerSetting{flag: flag, usage: usage, def: def, set: set}
}

func stringSetting(flag, usage string, get func(*broker.Config) *string) brokerSetting {
	return setting(flag, usage,
		func(d *broker.Config, cmd *cobra.Command, n, u string) { cmd.Flags().String(n, *get(d), u) },
		func(c *broker.Config, v *viper.Viper, n string) error { *get(c) = v.GetString(n); return nil })
}

func int64Setting(flag, usage string, get func(*broker.Config) *int64) brokerSetting {
	return setting(flag, usage,
		func(d *broker.Config, cmd *cobra.Command, n, u string) { cmd.Flags().Int64(n, *get(d), u) },
		func(c *broker.Config, v *viper.Viper, n string) error { *get(c) = v.GetInt64(n); return nil })
}

func int32Setting(flag, usage string, get func(*broker.Config) *int32) brokerSetting {
	return setting(flag, usage,
		func(d *broker.Config, cmd *cobra.Command, n, u string) { cmd.Flags().Int32(n, *get(d), u) },
		func(c *broker.Config, v *viper.Viper, n string) error { *get(c) = v.GetInt32(n); return nil })
}

func int16Setting(flag, usage string, get func(*broker.Config) *int16) brokerSetting {
	return setting(flag, usage,
		func(d *broker.Config, cmd *cobra.Command, n, u string) { cmd.Flags().Int16(n, *get(d), u) },
		func(c *broker.Config, v *viper.Viper, n string) error { *get(c) = int16(v.GetInt32(n)); return nil })
}

func boolSetting(flag, usage string, get func(*broker.Config) *bool) brokerSetting {
	return setting(flag, usage,
		func(d *broker.Config, cmd *cobra.Command, n, u string) { cmd.Flags().Bool(n, *get(d), u) },
		func(c *broker.Config, v *viper.Viper, n string) error { *get(c) = v.GetBool(n); return nil })
}

func float64Setting(flag, usage string, get func(*broker.Config) *float64) brokerSetting {
	return setting(flag, usage,
		func(d *broker.Config, cmd *cobra.Command, n, u string) { cmd.Flags().Float64(n, *get(d), u) },
		func(c *broker.Config, v *viper.Viper, n string) error { *get(c) = v.GetFloat64(n); return nil })
}

// msSetting is a duration given in milliseconds, as the Kafka property is.
func msSetting(flag, usage string, get func(*broker.Config) *time.Duration) brokerSetting {
	return setting(flag, usage,
		func(d *broker.Config, cmd *cobra.Command, n, u string) {
			cmd.Flags().Int64(n, get(d).Milliseconds(), u)
		},
		func(c *broker.Config, v *viper.Viper, n string) error {
			*get(c) = time.Duration(v.GetInt64(n)) * time.Millisecond
			return nil
		})
}

// NewCmdBroker builds `kdr broker`. runF replaces the run step in tests.
func NewCmdBroker(streams IO, g *globalOptions, runF func(*BrokerOptions) error) *cobra.Command {
	opts := &BrokerOptions{IO: streams, Global: g}
	settings := brokerSettings()
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run one Kafka-compatible broker",
		Long: `Run one kdr broker. Real Kafka clients (Java, librdkafka/kcat, franz-go, sarama, kafka-go,
kafkajs) can produce to and consume from it.

Settings come from flags, then KDR_* environment variables (KDR_DATA_DIR, KDR_LOG_RETENTION_MS, ...),
then a YAML file given with --config whose keys are the flag names, then defaults.`,
		Example: `  kdr broker --data-dir /var/lib/kdr --listen 127.0.0.1:9092 --node-id 1`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := newViper(cmd, opts.ConfigFile)
			if err != nil {
				return err
			}
			opts.Config = broker.DefaultConfig()
			for _, s := range settings {
				if err := s.set(&opts.Config, v, s.flag); err != nil {
					return usageError{fmt.Errorf("--%s: %w", s.flag, err)}
				}
			}
			if err := opts.Config.Validate(); err != nil {
				return usageError{fmt.Errorf("invalid broker configuration: %w", err)}
			}
			if runF != nil {
				return runF(opts)
			}
			return runBroker(cmd, opts)
		},
	}
	defaults := broker.DefaultConfig()
	for _, s := range settings {
		s.def(&defaults, cmd, s.flag, s.usage)
	}
	cmd.Flags().StringVar(&opts.ConfigFile, "config", "", "YAML file of settings (keys are flag names)")
	return cmd
}

func runBroker(cmd *cobra.Command, opts *BrokerOptions) error {
	logger, err := opts.Global.logger(opts.IO.Err)
	if err != nil {
		return err
	}
	b, err := broker.Start(opts.Config, broker.Options{Logger: logger})
	if err != nil {
		return err
	}
	// The address line on stdout lets scripts and test harnesses learn a
	// port chosen with --listen host:0.
	fmt.Fprintf(opts.IO.Out, "kdr broker %d listening on %s", b.NodeID(), b.Addr())
	if m := b.MetricsAddr(); m != "" {
		fmt.Fprintf(opts.IO.Out, " (metrics on http://%s/metrics)", m)
	}
	fmt.Fprintln(opts.IO.Out)
	<-cmd.Context().Done()
	logger.Info("shutting down")
	return b.Close()
}
