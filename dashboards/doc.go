// Package dashboards is kdr's observability kit: Grafana dashboards, the
// Prometheus alert rules, and a Prometheus scrape configuration for every
// process of a topology.
//
// The dashboards are written in Go (dash_*.go) with the small builder in
// grafana.go, and committed as JSON under grafana/ so that they can be
// imported without kdr; TestDashboardsGolden fails when the committed JSON
// and the Go definitions differ (`go generate ./dashboards` rewrites the
// files). Every dashboard has a datasource variable (any Prometheus) and
// cluster / flow variables that the queries filter on, so the scrape
// configuration must label broker targets with cluster and mirror worker
// targets with flow, as PrometheusConfig does.
//
// The alert rules are prometheus/alerts.yml, embedded here so that
// `kdr dashboards prometheus-config` can write them next to the scrape
// configuration, with the lag thresholds of the topology's failover policy
// (RenderAlerts). Their runbooks are docs/dashboards.md.
//
// Files:
//
//	grafana.go        builder: Dashboard, Row, Panel, Query → Grafana JSON (schemaVersion 39)
//	dash_*.go         the four dashboards: DR overview, mirror flows, broker clusters, failover & drills
//	alerts.go         alerts.yml (embedded) with the policy's lag thresholds
//	promconfig.go     prometheus.yml from endpoints.json or the topology file
//	prometheus.go     StartPrometheus: runs a local prometheus on that config
//
// Tests: the JSON is what the Go produces; every panel query parses as
// PromQL and names only metrics the code exports (found by starting a
// broker and a mirror worker in process, and registering kdr up's
// up.NewFailoverCollector on a full failover state, and describing their
// registries); the registries pass client_golang's metric-name lint;
// promtool checks and unit-tests the rules; and TestDashboardsPanelsHaveData
// runs kdr up and a real Prometheus and evaluates every panel query, then
// again after a switchover and a drill result for the panels that need them.
package dashboards

//go:generate go test -run ^TestDashboardsGolden$ -update .
