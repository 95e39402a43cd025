package dashboards

// rateBy is sum by (by) (rate(metric{flow=~"$flow"}[$__rate_interval])).
func rateBy(by, metric, filter string) string {
	return `sum by (` + by + `) (rate(` + metric + filter + `[$__rate_interval]))`
}

// Mirror is the mirror flows dashboard: what the workers copy, how fast and
// how late, and their checkpoints, offset syncs and errors.
func Mirror() *Dashboard {
	return &Dashboard{
		UID: "kdr-mirror-flows", File: "mirror-flows.json", Title: "kdr / Mirror flows",
		Description: "The MM2-style mirror workers of every flow: throughput, record age, latency, checkpoints, offset syncs, errors and partition assignment.",
		Flow:        true,
		Rows: []Row{{
			Title: "Throughput",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Records copied per second", Unit: "rps",
					Description: "Records the target acknowledged, per flow.",
					Queries:     []Query{{Expr: rateBy("flow", "kdr_mirror_records_total", byFlow), Legend: "{{flow}}"}}},
				{Kind: TimeSeries, Title: "Bytes copied per second", Unit: "Bps",
					Description: "Key, value and header bytes of the copied records, per flow.",
					Queries:     []Query{{Expr: rateBy("flow", "kdr_mirror_bytes_total", byFlow), Legend: "{{flow}}"}}},
				{Kind: TimeSeries, Title: "Records copied per second by topic", Unit: "rps", Stacked: true,
					Description: "Per source topic.",
					Queries:     []Query{{Expr: rateBy("flow, topic", "kdr_mirror_records_total", byFlow), Legend: "{{flow}} {{topic}}"}}},
			},
		}, {
			Title: "Latency and lag",
			Panels: []Panel{
				{Kind: Heatmap, Title: "Replication latency", Unit: "s", Width: 12,
					Description: "Distribution of source timestamp to target acknowledgement (kdr_mirror_replication_latency_seconds).",
					Queries:     []Query{{Expr: `sum by (le) (increase(kdr_mirror_replication_latency_seconds_bucket` + byFlow + `[$__rate_interval]))`, Legend: "{{le}}"}}},
				{Kind: TimeSeries, Title: "Replication latency p50 and p99", Unit: "s", Width: 12,
					Queries: []Query{
						{Expr: `histogram_quantile(0.5, sum by (flow, le) (rate(kdr_mirror_replication_latency_seconds_bucket` + byFlow + `[$__rate_interval])))`, Legend: "{{flow}} p50"},
						{Expr: latencyP99("flow"), Legend: "{{flow}} p99"},
					}},
				{Kind: TimeSeries, Title: "Fetch and copy cycle p99", Unit: "s",
					Description: "Where a record's replication latency goes: a fetch from the source (kdr_mirror_fetch_seconds, forwarding flows) and a copy cycle until the target acknowledged it (kdr_mirror_cycle_seconds).",
					Queries: []Query{
						{Expr: `histogram_quantile(0.99, sum by (flow, le) (rate(kdr_mirror_fetch_seconds_bucket` + byFlow + `[$__rate_interval])))`, Legend: "{{flow}} fetch p99"},
						{Expr: `histogram_quantile(0.99, sum by (flow, le) (rate(kdr_mirror_cycle_seconds_bucket` + byFlow + `[$__rate_interval])))`, Legend: "{{flow}} cycle p99"},
					}},
				{Kind: TimeSeries, Title: "Forwarding cycles sent behind another", Unit: "percentunit",
					Description: "Share of forwarding cycles sent while the one before still waited for the target (kdr_mirror_forward_inflight_cycles; the mirror overlaps two at most). Near 100 % the target answers slower than the source supplies, and the cycles wait at that bound.",
					Queries:     []Query{{Expr: `1 - sum by (flow) (rate(kdr_mirror_forward_inflight_cycles_bucket{flow=~"$flow",le="1"}[$__rate_interval])) / sum by (flow) (rate(kdr_mirror_forward_inflight_cycles_count` + byFlow + `[$__rate_interval]))`, Legend: "{{flow}}"}}},
				{Kind: TimeSeries, Title: "Record age at copy", Unit: "s",
					Description: "Age of the last record copied, at its acknowledgement, worst partition per topic.",
					Queries:     []Query{{Expr: `max by (flow, topic) (kdr_mirror_record_age_seconds` + byFlow + `)`, Legend: "{{flow}} {{topic}}"}}},
				{Kind: TimeSeries, Title: "Lag by topic (records)",
					Queries: []Query{{Expr: `sum by (flow, topic) (kdr_mirror_lag_records` + byFlow + `)`, Legend: "{{flow}} {{topic}}"}}},
				{Kind: TimeSeries, Title: "Lag by topic (seconds)", Unit: "s",
					Queries: []Query{{Expr: `max by (flow, topic) (kdr_mirror_lag_seconds` + byFlow + `)`, Legend: "{{flow}} {{topic}}"}}},
			},
		}, {
			Title: "Checkpoints and offset syncs",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Checkpoint age by group", Unit: "s",
					Description: "Seconds since every mirrored partition of the group was last translated and checkpointed; consumers failing over resume from checkpoints this old.",
					Queries:     []Query{{Expr: `max by (flow, group) (kdr_mirror_checkpoint_age_seconds` + byFlow + `)`, Legend: "{{flow}} {{group}}"}}},
				{Kind: TimeSeries, Title: "Checkpoints and group offsets synced per second", Unit: "ops",
					Queries: []Query{
						{Expr: rateBy("flow", "kdr_mirror_checkpoints_total", byFlow), Legend: "{{flow}} checkpoints"},
						{Expr: rateBy("flow", "kdr_mirror_group_offsets_synced_total", byFlow), Legend: "{{flow}} group offsets synced"},
					}},
				{Kind: TimeSeries, Title: "Offset syncs and commits per second", Unit: "ops",
					Description: "Offset syncs written to mm2-offset-syncs.<target>.internal (on the source, or the target with offset-syncs-topic-location target), the basis of exact offset translation, and the commits of the workers' source positions that follow them (at most one per commit interval).",
					Queries: []Query{{Expr: rateBy("flow", "kdr_mirror_offset_syncs_total", byFlow), Legend: "{{flow}} offset syncs"},
						{Expr: rateBy("flow", "kdr_mirror_commits_total", byFlow), Legend: "{{flow}} commits"}}},
			},
		}, {
			Title: "Errors and workers",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Errors by kind", Unit: "ops", Stacked: true,
					Description: "kdr_mirror_errors_total by kind: source, target, too_large, topic, config, offset_sync, commit, heartbeat, topic_deleted, checkpoint, acl.",
					Queries:     []Query{{Expr: rateBy("flow, kind", "kdr_mirror_errors_total", byFlow), Legend: "{{flow}} {{kind}}"}}},
				{Kind: TimeSeries, Title: "Checkpoint errors and translation failures", Unit: "ops",
					Queries: []Query{
						{Expr: rateBy("flow, stage", "kdr_mirror_checkpoint_errors_total", byFlow), Legend: "{{flow}} error {{stage}}"},
						{Expr: rateBy("flow, reason", "kdr_mirror_translation_failures_total", byFlow), Legend: "{{flow}} untranslated {{reason}}"},
					}},
				{Kind: TimeSeries, Title: "Assigned partitions per worker",
					Description: "Source partitions each worker copies; workers of a flow share them through a consumer group.",
					Queries:     []Query{{Expr: `sum by (flow, worker) (kdr_mirror_assigned_partitions` + byFlow + `)`, Legend: "{{flow}} {{worker}}"}}},
				{Kind: TimeSeries, Title: "Partitions not fetched",
					Description: "Source partitions a worker has failed to fetch for 5 s or more while the rest of the source answers (a broker down with no replica to take over); their lag is not measured meanwhile. Forwarding workers.",
					Queries:     []Query{{Expr: `sum by (flow, worker) (kdr_mirror_fetch_failing_partitions` + byFlow + `)`, Legend: "{{flow}} {{worker}}"}}},
				{Kind: TimeSeries, Title: "Heartbeats written per second", Unit: "ops",
					Queries: []Query{{Expr: rateBy("flow", "kdr_mirror_heartbeats_total", byFlow), Legend: "{{flow}}"}}},
				{Kind: TimeSeries, Title: "Throttled seconds per second", Unit: "s",
					Description: "Time the workers held back from reading the source to stay under --max-bytes-per-second (topology mirror.maxBytesPerSecond), per second; a forwarding worker waits once per source broker it fetches from, so this passes 1 with several. Near 1 a broker the cap, not the clusters, sets the pace, and the lag grows with the source's rate.",
					Queries:     []Query{{Expr: `sum by (flow, worker) (rate(kdr_mirror_throttle_seconds_total` + byFlow + `[$__rate_interval]))`, Legend: "{{flow}} {{worker}}"}}},
				{Kind: Stat, Title: "Workers up", Red: 0,
					Description: "Mirror worker processes Prometheus reaches, per flow.",
					Queries:     []Query{{Expr: `sum by (flow) (up{job="kdr-mirror",flow=~"$flow"})`, Legend: "{{flow}}", Instant: true}}},
			},
		}},
	}
}
