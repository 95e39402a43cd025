package dashboards

// Label matchers for the cluster and flow variables.
const (
	byCluster = `{cluster=~"$cluster"}`
	byFlow    = `{flow=~"$flow"}`
)

// latencyP99 is the p99 replication latency from the mirror's histogram,
// grouped by the given labels ("" for one series).
func latencyP99(by string) string {
	return `histogram_quantile(0.99, sum by (` + join(by, "le") + `) (rate(kdr_mirror_replication_latency_seconds_bucket` + byFlow + `[$__rate_interval])))`
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

// Overview is the DR overview: where clients should be, how far behind the
// standbys are, and how much would be lost if a source died now.
func Overview() *Dashboard {
	return &Dashboard{
		UID: "kdr-dr-overview", File: "dr-overview.json", Title: "kdr / DR overview",
		Description: "Active cluster, failover epoch, mirror lag per flow and the data a failover would lose right now (see docs/dashboards.md).",
		Cluster:     true, Flow: true,
		Rows: []Row{{
			Title: "Now",
			Panels: []Panel{
				{Kind: Stat, Title: "Active cluster", Width: 4, Height: 5, TextMode: "name",
					Description: "The cluster clients should produce to, per topology (kdr_failover_active_cluster == 1).",
					Queries:     []Query{{Expr: `max by (topology, cluster) (kdr_failover_active_cluster` + byCluster + `) == 1`, Legend: "{{cluster}}", Instant: true}}},
				{Kind: Stat, Title: "Failover epoch", Width: 3, Height: 5,
					Description: "Increases with every failover or switchover; it fences the previous primary.",
					Queries:     []Query{{Expr: `max by (topology) (kdr_failover_epoch)`, Legend: "{{topology}}", Instant: true}}},
				{Kind: Stat, Title: "RPO if a source died now (seconds)", Width: 5, Height: 5, Unit: "s", Red: 30,
					Description: "Per flow, the age of the oldest source record not yet copied: the window of writes a failover now would lose (max of kdr_mirror_lag_seconds).",
					Queries:     []Query{{Expr: `max by (flow) (kdr_mirror_lag_seconds` + byFlow + `)`, Legend: "{{flow}}", Instant: true}}},
				{Kind: Stat, Title: "RPO if a source died now (records)", Width: 5, Height: 5, Red: 10000,
					Description: "Per flow, the records written to the source and not yet copied (sum of kdr_mirror_lag_records).",
					Queries:     []Query{{Expr: `sum by (flow) (kdr_mirror_lag_records` + byFlow + `)`, Legend: "{{flow}}", Instant: true}}},
				{Kind: Stat, Title: "Clusters without a controller", Width: 4, Height: 5, Red: 1,
					Description: "Clusters whose brokers report no active controller: no leader elections, no topic changes.",
					Queries:     []Query{{Expr: `count(sum by (cluster) (kdr_controller_active` + byCluster + `) == 0) or vector(0)`, Legend: "clusters", Instant: true}}},
				{Kind: Stat, Title: "Offline partitions", Width: 3, Height: 5, Red: 1,
					Description: "Partitions without a leader, all clusters.",
					Queries:     []Query{{Expr: `sum(kdr_controller_offline_partitions` + byCluster + `)`, Legend: "offline", Instant: true}}},
			},
		}, {
			Title: "Flows",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Lag per flow (records)", Width: 8,
					Description: "Source high watermark minus the next offset to copy, summed over the flow's partitions.",
					Queries:     []Query{{Expr: `sum by (flow) (kdr_mirror_lag_records` + byFlow + `)`, Legend: "{{flow}}"}}},
				{Kind: TimeSeries, Title: "Lag per flow (seconds)", Width: 8, Unit: "s",
					Description: "Age of the oldest source record not yet copied; 0 when caught up.",
					Queries:     []Query{{Expr: `max by (flow) (kdr_mirror_lag_seconds` + byFlow + `)`, Legend: "{{flow}}"}}},
				{Kind: TimeSeries, Title: "Replication latency p99 per flow", Width: 8, Unit: "s",
					Description: "Source timestamp to the target's acknowledgement of the copy, 99th percentile.",
					Queries:     []Query{{Expr: latencyP99("flow"), Legend: "{{flow}}"}}},
				{Kind: TimeSeries, Title: "Copy throughput per flow", Width: 12, Unit: "rps",
					Description: "Records copied and acknowledged by the target, per second.",
					Queries:     []Query{{Expr: `sum by (flow) (rate(kdr_mirror_records_total` + byFlow + `[$__rate_interval]))`, Legend: "{{flow}}"}}},
				{Kind: TimeSeries, Title: "Mirror workers up", Width: 12,
					Description: "Mirror worker processes Prometheus reaches, per flow.",
					Queries:     []Query{{Expr: `sum by (flow) (up{job="kdr-mirror",flow=~"$flow"})`, Legend: "{{flow}}"}}},
			},
		}, {
			Title: "Last drill",
			Panels: []Panel{
				{Kind: Stat, Title: "Last drill: lost, duplicated, reordered records", Width: 8, Height: 5, Red: 1,
					Description: "What the checker found in the last drill, per scenario. Lost records are data loss.",
					Queries: []Query{
						{Expr: `max by (scenario) (kdr_drill_last_lost_records)`, Legend: "{{scenario}} lost", Instant: true},
						{Expr: `max by (scenario) (kdr_drill_last_duplicated_records)`, Legend: "{{scenario}} duplicated", Instant: true},
						{Expr: `max by (scenario) (kdr_drill_last_reordered_records)`, Legend: "{{scenario}} reordered", Instant: true},
					}},
				{Kind: Stat, Title: "Last drill: RTO and RPO", Width: 10, Height: 5, Unit: "s",
					Description: "Recovery time (writes unavailable) and recovery point (seconds of writes lost) measured by the last drill.",
					Queries: []Query{
						{Expr: `max by (scenario) (kdr_drill_last_rto_seconds)`, Legend: "{{scenario}} RTO", Instant: true},
						{Expr: `max by (scenario) (kdr_drill_last_rpo_seconds)`, Legend: "{{scenario}} RPO", Instant: true},
					}},
				{Kind: Stat, Title: "Time since the last drill", Width: 6, Height: 5, Unit: "s", Red: 7 * 24 * 3600,
					Description: "Drill regularly: red after a week.",
					Queries:     []Query{{Expr: `time() - max by (scenario) (kdr_drill_last_timestamp_seconds)`, Legend: "{{scenario}}", Instant: true}}},
			},
		}},
	}
}
