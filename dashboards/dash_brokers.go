package dashboards

// Brokers is the broker clusters dashboard: partition health, the
// controller, leader balance, request latency, traffic and disk.
func Brokers() *Dashboard {
	return &Dashboard{
		UID: "kdr-broker-clusters", File: "broker-clusters.json", Title: "kdr / Broker clusters",
		Description: "kdr broker clusters: partition health, controller, leader balance, request latency by API, network and disk.",
		Cluster:     true,
		Rows: []Row{{
			Title: "Health",
			Panels: []Panel{
				{Kind: Stat, Title: "Brokers up", Width: 4, Height: 5,
					Queries: []Query{{Expr: `sum by (cluster) (up{job="kdr-broker",cluster=~"$cluster"})`, Legend: "{{cluster}}", Instant: true}}},
				{Kind: Stat, Title: "Active controllers", Width: 4, Height: 5,
					Description: "Exactly 1 per cluster; 0 means no leader elections or metadata changes.",
					Queries:     []Query{{Expr: `sum by (cluster) (kdr_controller_active` + byCluster + `)`, Legend: "{{cluster}}", Instant: true}}},
				{Kind: Stat, Title: "Offline partitions", Width: 4, Height: 5, Red: 1,
					Queries: []Query{{Expr: `sum by (cluster) (kdr_controller_offline_partitions` + byCluster + `)`, Legend: "{{cluster}}", Instant: true}}},
				{Kind: Stat, Title: "Under-replicated partitions", Width: 4, Height: 5, Red: 1,
					Queries: []Query{{Expr: `sum by (cluster) (kdr_controller_under_replicated_partitions` + byCluster + `)`, Legend: "{{cluster}}", Instant: true}}},
				{Kind: Stat, Title: "Under min ISR partitions", Width: 4, Height: 5, Red: 1,
					Description: "acks=all writes to these fail with NOT_ENOUGH_REPLICAS.",
					Queries:     []Query{{Expr: `sum by (cluster) (kdr_controller_under_min_isr_partitions` + byCluster + `)`, Legend: "{{cluster}}", Instant: true}}},
				{Kind: Stat, Title: "Fenced brokers", Width: 4, Height: 5, Red: 1,
					Description: "Brokers whose session expired (liveness fencing, not write fencing).",
					Queries:     []Query{{Expr: `sum by (cluster) (kdr_controller_fenced_brokers` + byCluster + `)`, Legend: "{{cluster}}", Instant: true}}},
				{Kind: TimeSeries, Title: "Partition health over time", Width: 12,
					Queries: []Query{
						{Expr: `sum by (cluster) (kdr_controller_under_replicated_partitions` + byCluster + `)`, Legend: "{{cluster}} under-replicated"},
						{Expr: `sum by (cluster) (kdr_controller_under_min_isr_partitions` + byCluster + `)`, Legend: "{{cluster}} under min ISR"},
						{Expr: `sum by (cluster) (kdr_controller_offline_partitions` + byCluster + `)`, Legend: "{{cluster}} offline"},
					}},
				{Kind: TimeSeries, Title: "Leader elections", Width: 6, Unit: "ops",
					Description: "By kind: clean, unclean (records may be lost), preferred.",
					Queries:     []Query{{Expr: rateBy("cluster, kind", "kdr_controller_elections_total", byCluster), Legend: "{{cluster}} {{kind}}"}}},
				{Kind: TimeSeries, Title: "ISR changes", Width: 6, Unit: "ops",
					Description: "ISR shrinks and expands committed by partition leaders; shrinks mean followers fell behind or died.",
					Queries:     []Query{{Expr: rateBy("cluster, kind", "kdr_partition_isr_changes_total", byCluster), Legend: "{{cluster}} {{kind}}"}}},
			},
		}, {
			Title: "Balance",
			Panels: []Panel{
				{Kind: BarGauge, Title: "Leaders per broker",
					Description: "Partitions each broker leads; a skew means clients and replication load one broker more.",
					Queries:     []Query{{Expr: `sum by (cluster, broker) (kdr_broker_leader_partitions` + byCluster + `)`, Legend: "{{cluster}} broker {{broker}}", Instant: true}}},
				{Kind: TimeSeries, Title: "Partition replicas per broker",
					Queries: []Query{{Expr: `sum by (cluster, broker) (kdr_broker_partitions` + byCluster + `)`, Legend: "{{cluster}} broker {{broker}}"}}},
				{Kind: TimeSeries, Title: "Follower fetch lag (records)",
					Description: "Worst followed partition per broker: how far its replicas are behind their leaders.",
					Queries:     []Query{{Expr: `max by (cluster, broker) (kdr_replica_fetch_lag_records` + byCluster + `)`, Legend: "{{cluster}} broker {{broker}}"}}},
			},
		}, {
			Title: "Requests",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Request latency p99 by API", Unit: "s", Width: 12,
					Queries: []Query{{Expr: `histogram_quantile(0.99, sum by (cluster, api, le) (rate(kdr_broker_request_duration_seconds_bucket` + byCluster + `[$__rate_interval])))`, Legend: "{{cluster}} {{api}}"}}},
				{Kind: TimeSeries, Title: "Requests per second by API", Unit: "reqps", Width: 12,
					Queries: []Query{
						{Expr: rateBy("cluster, api", "kdr_broker_requests_total", byCluster), Legend: "{{cluster}} {{api}}"},
					}},
				{Kind: TimeSeries, Title: "Network bytes in and out", Unit: "Bps",
					Queries: []Query{
						{Expr: rateBy("cluster, broker", "kdr_broker_network_received_bytes_total", byCluster), Legend: "{{cluster}} broker {{broker}} in"},
						{Expr: rateBy("cluster, broker", "kdr_broker_network_sent_bytes_total", byCluster), Legend: "{{cluster}} broker {{broker}} out"},
					}},
				{Kind: TimeSeries, Title: "Produced bytes per second by topic", Unit: "Bps", Stacked: true,
					Queries: []Query{{Expr: rateBy("cluster, topic", "kdr_topic_produced_bytes_total", byCluster), Legend: "{{cluster}} {{topic}}"}}},
				{Kind: TimeSeries, Title: "Client connections",
					Queries: []Query{{Expr: `sum by (cluster, broker) (kdr_broker_connections_active` + byCluster + `)`, Legend: "{{cluster}} broker {{broker}}"}}},
			},
		}, {
			Title: "Disk and metadata",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Disk used per broker", Unit: "bytes",
					Description: "Bytes of partition segments on disk.",
					Queries:     []Query{{Expr: `sum by (cluster, broker) (kdr_partition_size_bytes` + byCluster + `)`, Legend: "{{cluster}} broker {{broker}}"}}},
				{Kind: TimeSeries, Title: "Partition size by topic (leaders)", Unit: "bytes",
					Description: "One copy of each topic: the leaders' partition sizes.",
					Queries:     []Query{{Expr: `sum by (cluster, topic) (kdr_partition_size_bytes` + byCluster + ` * on (cluster, broker, topic, partition) kdr_partition_is_leader` + byCluster + `)`, Legend: "{{cluster}} {{topic}}"}}},
				{Kind: TimeSeries, Title: "Storage errors per broker", Unit: "ops",
					Description: "Appends and fetch reads that failed in the log files (disk full, I/O error) and were answered with KAFKA_STORAGE_ERROR, and failed flushes of rolled segments (kdr_broker_storage_errors_total; alert KdrBrokerStorageErrors).",
					Queries:     []Query{{Expr: rateBy("cluster, broker", "kdr_broker_storage_errors_total", byCluster), Legend: "{{cluster}} broker {{broker}}"}}},
				{Kind: TimeSeries, Title: "Rolled segment flush p99", Unit: "s",
					Description: "fsync of rolled segments, beside the appends: a rising line is a disk slow to sync, and a recovery point (what a crash makes the broker re-read) further behind (kdr_broker_log_flush_seconds).",
					Queries:     []Query{{Expr: `histogram_quantile(0.99, sum by (cluster, broker, le) (rate(kdr_broker_log_flush_seconds_bucket` + byCluster + `[$__rate_interval])))`, Legend: "{{cluster}} broker {{broker}}"}}},
				{Kind: TimeSeries, Title: "Metadata quorum commit latency p99", Unit: "s",
					Queries: []Query{{Expr: `histogram_quantile(0.99, sum by (cluster, le) (rate(kdr_raft_commit_seconds_bucket` + byCluster + `[$__rate_interval])))`, Legend: "{{cluster}}"}}},
				{Kind: TimeSeries, Title: "Consumer group members",
					Queries: []Query{{Expr: `sum by (cluster) (kdr_group_members` + byCluster + `)`, Legend: "{{cluster}}"}}},
			},
		}},
	}
}
