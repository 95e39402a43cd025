package dashboards

// Failover is the failover & drills dashboard: the orchestrator's state
// (kdr up's /metrics), what brokers enforce, and the drills' results.
func Failover() *Dashboard {
	return &Dashboard{
		UID: "kdr-failover-drills", File: "failover-drills.json", Title: "kdr / Failover and drills",
		Description: "Failover state and operations (from kdr up), the write fences brokers enforce, and the results of failover drills.",
		Cluster:     true,
		Rows: []Row{{
			Title: "State",
			Panels: []Panel{
				{Kind: Stat, Title: "Active cluster", Width: 4, Height: 5, TextMode: "name",
					Queries: []Query{{Expr: `max by (topology, cluster) (kdr_failover_active_cluster` + byCluster + `) == 1`, Legend: "{{cluster}}", Instant: true}}},
				{Kind: Stat, Title: "Failover epoch", Width: 4, Height: 5,
					Queries: []Query{{Expr: `max by (topology) (kdr_failover_epoch)`, Legend: "{{topology}}", Instant: true}}},
				{Kind: Stat, Title: "Clusters fenced (failover state)", Width: 8, Height: 5,
					Description: "1 for a cluster the failover state says is fenced (refuses client writes).",
					Queries:     []Query{{Expr: `max by (topology, cluster) (kdr_failover_fenced` + byCluster + `)`, Legend: "{{cluster}}", Instant: true}}},
				{Kind: Stat, Title: "Clusters fenced (enforced by brokers)", Width: 8, Height: 5,
					Description: "1 when every broker of the cluster enforces a write fence, 0 when none does; in between, a broker has not applied it yet.",
					Queries:     []Query{{Expr: `avg by (cluster) (kdr_broker_fenced` + byCluster + `)`, Legend: "{{cluster}}", Instant: true}}},
				{Kind: TimeSeries, Title: "Failover epoch over time", Width: 12,
					Description: "Each step up is a failover or switchover.",
					Queries:     []Query{{Expr: `max by (topology) (kdr_failover_epoch)`, Legend: "{{topology}}"}}},
				{Kind: TimeSeries, Title: "Produce traffic per cluster", Width: 12, Unit: "rps",
					Description: "Records appended, client and mirror writes alike; after a failover it should move to the new primary.",
					Queries:     []Query{{Expr: rateBy("cluster", "kdr_topic_produced_records_total", byCluster), Legend: "{{cluster}}"}}},
				{Kind: TimeSeries, Title: "Produce refused by write fences", Width: 12, Unit: "ops",
					Description: "Produce partitions refused with POLICY_VIOLATION because the cluster is fenced: clients still writing to an old primary.",
					Queries:     []Query{{Expr: `sum by (cluster) (rate(kdr_broker_fenced_produce_rejections_total` + byCluster + `[$__rate_interval]))`, Legend: "{{cluster}}"}}},
				{Kind: TimeSeries, Title: "Fencing epoch per cluster", Width: 12,
					Queries: []Query{{Expr: `max by (cluster) (kdr_broker_fence_epoch` + byCluster + `)`, Legend: "{{cluster}}"}}},
			},
		}, {
			Title: "Operations",
			Panels: []Panel{
				{Kind: Stat, Title: "Operation in progress: current step", Width: 8, Height: 5, TextMode: "name",
					Description: "The failover, switchover or drill running now and its step.",
					Queries:     []Query{{Expr: `max by (topology, kind, step) (kdr_failover_operation_in_progress) == 1`, Legend: "{{kind}}: {{step}}", Instant: true}}},
				{Kind: TimeSeries, Title: "Failover operations", Width: 8, Unit: "short", Stacked: true,
					Description: "Operations finished, by kind and result.",
					Queries:     []Query{{Expr: `sum by (kind, result) (increase(kdr_failover_operations_total[$__rate_interval]))`, Legend: "{{kind}} {{result}}"}}},
				{Kind: BarGauge, Title: "Last operation duration", Width: 8, Unit: "s",
					Queries: []Query{{Expr: `max by (kind) (kdr_failover_last_operation_duration_seconds)`, Legend: "{{kind}}", Instant: true}}},
			},
		}, {
			Title: "Drills",
			Panels: []Panel{
				{Kind: BarGauge, Title: "Drill RTO and RPO (seconds)", Unit: "s",
					Queries: []Query{
						{Expr: `max by (scenario) (kdr_drill_last_rto_seconds)`, Legend: "{{scenario}} RTO", Instant: true},
						{Expr: `max by (scenario) (kdr_drill_last_rpo_seconds)`, Legend: "{{scenario}} RPO", Instant: true},
					}},
				{Kind: BarGauge, Title: "Drill RPO (records)",
					Queries: []Query{{Expr: `max by (scenario) (kdr_drill_last_rpo_records)`, Legend: "{{scenario}}", Instant: true}}},
				{Kind: Stat, Title: "Drill lost and duplicated records", Red: 1,
					Queries: []Query{
						{Expr: `max by (scenario) (kdr_drill_last_lost_records)`, Legend: "{{scenario}} lost", Instant: true},
						{Expr: `max by (scenario) (kdr_drill_last_duplicated_records)`, Legend: "{{scenario}} duplicated", Instant: true},
						{Expr: `max by (scenario) (kdr_drill_last_reordered_records)`, Legend: "{{scenario}} reordered", Instant: true},
					}},
				{Kind: TimeSeries, Title: "Drill results over time", Width: 24,
					Queries: []Query{
						{Expr: `max by (scenario) (kdr_drill_last_rto_seconds)`, Legend: "{{scenario}} RTO (s)"},
						{Expr: `max by (scenario) (kdr_drill_last_rpo_seconds)`, Legend: "{{scenario}} RPO (s)"},
						{Expr: `max by (scenario) (kdr_drill_last_lost_records)`, Legend: "{{scenario}} lost"},
					}},
			},
		}},
	}
}

// All are the dashboards, in the order of their files.
func All() []*Dashboard {
	return []*Dashboard{Overview(), Mirror(), Brokers(), Failover()}
}
