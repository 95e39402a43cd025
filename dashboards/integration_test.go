package dashboards_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/dashboards"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/topology"
	"github.com/kdr-io/kdr/up"
)

// needsDrill are the panels that only have data during or after a failover
// operation or a drill (kdr up exports an operation's step while it runs,
// and drill results once one has finished). TestDashboardsPanelsHaveData
// allows them to be empty on a fresh topology, then runs a switchover and
// records a drill result, and requires data from every one of them except
// the emptyAfterDrill panels.
var needsDrill = map[string]bool{
	"kdr / DR overview / Last drill: lost, duplicated, reordered records": true,
	"kdr / DR overview / Last drill: RTO and RPO":                         true,
	"kdr / DR overview / Time since the last drill":                       true,
	"kdr / Failover and drills / Operation in progress: current step":     true,
	"kdr / Failover and drills / Failover operations":                     true,
	"kdr / Failover and drills / Last operation duration":                 true,
	"kdr / Failover and drills / Drill RTO and RPO (seconds)":             true,
	"kdr / Failover and drills / Drill RPO (records)":                     true,
	"kdr / Failover and drills / Drill lost and duplicated records":       true,
	"kdr / Failover and drills / Drill results over time":                 true,
}

// emptyAfterDrill are the needsDrill panels that cannot have data once the
// switchover and the drill have finished, and why. For them
// TestDashboardsPanelsHaveData checks instead that the query parses and
// every metric it selects is described by kdr up's failover collector
// (the one its /metrics registers), and prints them.
var emptyAfterDrill = map[string]string{
	"kdr / Failover and drills / Operation in progress: current step": "kdr_failover_operation_in_progress has a series only while an operation runs, " +
		"and the switchover has finished before the panels are queried again",
}

// needsISRChange are the panels that only have data once a partition's
// ISR has shrunk or expanded (the counter has no series before), which a
// healthy run does not do.
var needsISRChange = map[string]bool{
	"kdr / Broker clusters / ISR changes": true,
}

// integrationValues replace the Grafana variables for the integration
// test: every cluster and flow, and a 10s rate window (scrapes every 1s).
var integrationValues = strings.NewReplacer(dashboards.VarRateInterval, "10s", dashboards.VarCluster, ".*", dashboards.VarFlow, ".*")

// TestDashboardsNeedsDrillNamesPanels keeps needsDrill and needsISRChange
// in step with the dashboards.
func TestDashboardsNeedsDrillNamesPanels(t *testing.T) {
	panels := map[string]bool{}
	for _, d := range dashboards.All() {
		for _, q := range d.Queries() {
			panels[q.Dashboard+" / "+q.Panel] = true
		}
	}
	for _, set := range []map[string]bool{needsDrill, needsISRChange} {
		for p := range set {
			if !panels[p] {
				t.Errorf("%q is allowed to be empty, but no dashboard has it", p)
			}
		}
	}
	for p := range emptyAfterDrill {
		if !needsDrill[p] {
			t.Errorf("%q is in emptyAfterDrill but not in needsDrill", p)
		}
	}
}

// TestDashboardsPanelsHaveData runs kdr up on two local clusters (east with
// two brokers, west with one, east mirrored to west) with producer and
// consumer-group traffic, and `kdr dashboards prometheus` on it (a real
// Prometheus scraping every 1s, kdr up's own /metrics included), waits
// until every broker and worker target is up, then evaluates every panel
// query of every dashboard through Prometheus's HTTP API and fails on any
// that returns no data, except the needsDrill panels. It checks that
// Prometheus loaded the alert rules and that none fires on this healthy
// topology. Then it runs `kdr failover switchover --to west` (the CLI, as
// a process), checks that KdrMirrorDown leaves the direction it stopped
// alone, stores a drill summary as State.LastDrill, and requires
// data from every needsDrill panel but the emptyAfterDrill ones, whose
// queries must parse and select metrics kdr up's collector describes.
func TestDashboardsPanelsHaveData(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kdr up and Prometheus")
	}
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Skip("prometheus not found: install Debian's prometheus package (make test does, through scripts/test-deps.sh)")
	}
	start := time.Now()
	bin := kdrtest.Binary(t)
	state := t.TempDir()
	avoid := map[int]bool{}
	east, west := kdrtest.FreeBasePort(t, 2, avoid), kdrtest.FreeBasePort(t, 1, avoid)
	file := filepath.Join(t.TempDir(), "dash.yaml")
	topo := fmt.Sprintf(`apiVersion: kdr.io/v1
kind: Topology
metadata:
  name: dash-it
clusters:
  - name: east
    local: {brokers: 2, basePort: %d, replicationFactor: 2, partitions: 2, minInsyncReplicas: 1}
  - name: west
    local: {brokers: 1, basePort: %d}
replication:
  - type: active-passive
    primary: east
    standby: west
    mirror: {naming: identity}
mirror:
  topics: "orders"
  refreshInterval: 1s
  checkpointInterval: 1s
  heartbeatInterval: 1s
`, east, west)
	if err := os.WriteFile(file, []byte(topo), 0o644); err != nil {
		t.Fatal(err)
	}
	upProc := kdrtest.StartCommand(t, bin, "up", file, "--state-dir", state, "--metrics-listen", kdrtest.ReserveAddr(t, avoid))
	waitHealthy(t, upProc, state)
	t.Logf("kdr up healthy after %s", time.Since(start).Round(100*time.Millisecond))

	stop := traffic(t, fmt.Sprintf("127.0.0.1:%d", east))
	defer stop()

	listen := kdrtest.ReserveAddr(t, avoid)
	prom := kdrtest.StartCommand(t, bin, "dashboards", "prometheus", file, "--state-dir", state, "--listen", listen, "--scrape-interval", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(state, "logs", "prometheus.log"))
			t.Logf("prometheus.log:\n%s", b)
		}
	})
	if err := dashboards.WaitPrometheusReady(ctx, listen); err != nil {
		t.Fatal(err)
	}
	api := "http://" + listen
	jobs := waitTargetsUp(t, api)
	t.Logf("Prometheus ready, targets up %v, after %s", jobs, time.Since(start).Round(100*time.Millisecond))

	// Every query, until each has data or the deadline passes: rates need
	// a few scrapes, checkpoints a cycle.
	type result struct {
		panel, expr string
		series      int
		allowed     string
	}
	var results []result
	deadline := time.Now().Add(30 * time.Second)
	for {
		results = results[:0]
		missing := 0
		for _, d := range dashboards.All() {
			for _, q := range d.Queries() {
				panel := d.Title + " / " + q.Panel
				expr := integrationValues.Replace(q.Expr)
				r := result{panel: panel, expr: expr, series: query(t, api, expr)}
				if r.series == 0 {
					switch {
					case needsDrill[panel]:
						r.allowed = "needsDrill"
					case needsISRChange[panel]:
						r.allowed = "needsISRChange"
					default:
						missing++
					}
				}
				results = append(results, r)
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	var drill, isr []string
	for _, r := range results {
		switch {
		case r.series > 0:
		case r.allowed == "needsDrill":
			drill = append(drill, r.panel)
		case r.allowed == "needsISRChange":
			isr = append(isr, r.panel)
		default:
			t.Errorf("panel %q: no data for %s", r.panel, r.expr)
		}
	}
	t.Logf("%d queries evaluated; empty and allowed, needsDrill (fill after a failover or drill): %q", len(results), dedupe(drill))
	t.Logf("empty and allowed, needsISRChange: %q", isr)
	checkRulesAndAlerts(t, api)
	t.Logf("first round done after %s", time.Since(start).Round(100*time.Millisecond))

	// A switchover and a drill result: the needsDrill panels fill. The
	// traffic stops first: east refuses writes once fenced.
	stop()
	switchover(t, bin, file, state, "west")
	loaded, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	finished := time.Now().UTC().Truncate(time.Second)
	writeLastDrill(t, loaded, state, map[string]any{"scenario": "dash-it", "passed": true, "lost": 0, "duplicated": 1, "reordered": 2,
		"rto_seconds": 3.5, "rpo_records": 0, "rpo_seconds": 0.5, "finished_at": finished.Format(time.RFC3339Nano)})
	t.Logf("switchover and drill result stored after %s", time.Since(start).Round(100*time.Millisecond))
	checkStoppedFlowNotAlerted(t, api)
	checkAfterDrill(t, api, finished)
	t.Logf("took %s", time.Since(start).Round(100*time.Millisecond))
	prom.Interrupt(t, 45*time.Second)
	upProc.Interrupt(t, 45*time.Second)
}

// switchover runs `kdr failover switchover --to to --yes` on kdr up's
// state dir, as a process.
func switchover(t *testing.T, bin, file, state, to string) {
	t.Helper()
	cmd := exec.Command(bin, "failover", "switchover", "--to", to, "--yes", file, "--state-dir", state)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kdr failover switchover --to %s: %v\n%s", to, err, out)
	}
}

// writeLastDrill stores summary as the failover state's LastDrill, as
// kdr drill run does at its end (compare-and-swap, retried on a conflict).
func writeLastDrill(t *testing.T, topo *topology.Topology, state string, summary map[string]any) {
	t.Helper()
	st, err := store.Open(topo, state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err := json.Marshal(summary)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		v, err := st.Get(ctx)
		if err != nil {
			return false, err.Error()
		}
		s := v.State
		s.LastDrill = b
		_, err = st.CompareAndSwap(ctx, s, v.Version)
		return err == nil, fmt.Sprintf("storing LastDrill: %v", err)
	})
}

// checkAfterDrill waits until Prometheus has scraped kdr up's /metrics
// after the switchover to west and the drill that finished at finished,
// then requires data from every needsDrill panel but the emptyAfterDrill
// ones, whose queries must parse and select metrics that kdr up's failover
// collector describes.
func checkAfterDrill(t *testing.T, api string, finished time.Time) {
	t.Helper()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		ts := queryValues(t, api, `max(kdr_drill_last_timestamp_seconds)`)
		active := queryValues(t, api, `kdr_failover_active_cluster{cluster="west"}`)
		return len(ts) == 1 && ts[0] == float64(finished.Unix()) && len(active) == 1 && active[0] == 1,
			fmt.Sprintf("kdr_drill_last_timestamp_seconds %v (want %d), west's kdr_failover_active_cluster %v (want 1)", ts, finished.Unix(), active)
	})
	described := upCollectorMetrics()
	var empty []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		empty = empty[:0]
		for _, d := range dashboards.All() {
			for _, q := range d.Queries() {
				panel := d.Title + " / " + q.Panel
				if !needsDrill[panel] || emptyAfterDrill[panel] != "" {
					continue
				}
				expr := integrationValues.Replace(q.Expr)
				if query(t, api, expr) == 0 {
					empty = append(empty, panel+": "+expr)
				}
			}
		}
		if len(empty) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	for _, e := range empty {
		t.Errorf("after the switchover and the drill, panel %s has no data", e)
	}
	checked := 0
	for _, d := range dashboards.All() {
		for _, q := range d.Queries() {
			panel := d.Title + " / " + q.Panel
			why := emptyAfterDrill[panel]
			if why == "" {
				continue
			}
			checked++
			e, err := parser.NewParser(parser.Options{}).ParseExpr(integrationValues.Replace(q.Expr))
			if err != nil {
				t.Errorf("panel %q: %v", panel, err)
				continue
			}
			parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok && !described[vs.Name] {
					t.Errorf("panel %q selects %s, which kdr up's failover collector does not describe", panel, vs.Name)
				}
				return nil
			})
			t.Logf("not required to have data after the drill: %q (%s); its query parses and its metrics are kdr up's", panel, why)
		}
	}
	if checked != len(emptyAfterDrill) {
		t.Errorf("emptyAfterDrill names %d panels, %d queries found", len(emptyAfterDrill), checked)
	}
	n := 0
	for p := range needsDrill {
		if emptyAfterDrill[p] == "" {
			n++
		}
	}
	t.Logf("after the switchover and the drill: %d needsDrill panels have data", n)
}

// checkStoppedFlowNotAlerted: after the switchover kdr up stops east->west's
// worker on purpose and runs west->east. A QA run found KdrMirrorDown
// (no_workers) firing for east->west then. Once Prometheus has no series of
// east->west's worker any more, the rule's condition without its join on
// kdr_up_flow_expected holds for east->west, and the rule's whole
// expression must give nothing: kdr up exports east->west as not expected.
func checkStoppedFlowNotAlerted(t *testing.T, api string) {
	t.Helper()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		now := query(t, api, `kdr_mirror_assigned_partitions{flow="east->west"}`)
		before := query(t, api, `max_over_time(kdr_mirror_assigned_partitions{flow="east->west"}[1h])`)
		expected := queryValues(t, api, `kdr_up_flow_expected{flow="east->west"}`)
		return now == 0 && before > 0 && len(expected) == 1 && expected[0] == 0,
			fmt.Sprintf("east->west: %d worker series now (want 0), %d in the last hour (want some), kdr_up_flow_expected %v (want [0])", now, before, expected)
	})
	var d struct {
		Groups []struct {
			Rules []struct {
				Name   string            `json:"name"`
				Query  string            `json:"query"`
				Labels map[string]string `json:"labels"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(promGet(t, api+"/api/v1/rules"), &d); err != nil {
		t.Fatal(err)
	}
	var expr string
	for _, g := range d.Groups {
		for _, r := range g.Rules {
			if r.Name == "KdrMirrorDown" && r.Labels["reason"] == "no_workers" {
				expr = r.Query
			}
		}
	}
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("KdrMirrorDown no_workers %q: %v", expr, err)
	}
	b, ok := e.(*parser.BinaryExpr)
	if !ok || b.Op != parser.LUNLESS || !strings.Contains(b.RHS.String(), "kdr_up_flow_expected") {
		t.Fatalf("KdrMirrorDown no_workers is %q, want CONDITION unless on (...) (kdr_up_flow_expected == 0)", expr)
	}
	if got := queryLabels(t, api, b.LHS.String()); !slices.Equal(got, []string{`{flow="east->west", topology="dash-it"}`}) {
		t.Errorf("the no_workers condition without the join gives %v, want east->west of dash-it", got)
	}
	if got := queryLabels(t, api, expr); len(got) != 0 {
		t.Errorf("KdrMirrorDown no_workers gives %v after the switchover, want nothing: kdr up stopped east->west on purpose", got)
	}
}

// queryLabels evaluates expr now and returns its series' labels, sorted.
func queryLabels(t *testing.T, api, expr string) []string {
	t.Helper()
	var d struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
		} `json:"result"`
	}
	if err := json.Unmarshal(promGet(t, api+"/api/v1/query?query="+url.QueryEscape(expr)), &d); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range d.Result {
		keys := slices.Sorted(maps.Keys(r.Metric))
		pairs := make([]string, len(keys))
		for i, k := range keys {
			pairs[i] = fmt.Sprintf("%s=%q", k, r.Metric[k])
		}
		out = append(out, "{"+strings.Join(pairs, ", ")+"}")
	}
	sort.Strings(out)
	return out
}

// upCollectorMetrics are the metric names kdr up's failover collector
// describes.
func upCollectorMetrics() map[string]bool {
	reg := prometheus.NewRegistry()
	reg.MustRegister(up.NewFailoverCollector(topology.Demo(), func() (store.State, bool) { return store.State{}, false }))
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	out := map[string]bool{}
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			out[m[1]] = true
		}
	}
	return out
}

func dedupe(s []string) []string {
	sort.Strings(s)
	return slices.Compact(s)
}

// traffic produces about 50 records a second to orders on east and commits
// group billing's offsets there, so that every mirror panel has data,
// until the returned func is called.
func traffic(t *testing.T, seed string) func() {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.DefaultProduceTopic("orders"), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		r, err := adm.CreateTopic(ctx, 2, 2, nil, "orders")
		if err == nil && r.Err != nil && !strings.Contains(r.Err.Error(), "TOPIC_ALREADY_EXISTS") {
			err = r.Err
		}
		return err == nil, fmt.Sprintf("creating orders on east: %v", err)
	})
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(strconv.Itoa(i % 10)), Value: []byte(`{"order":` + strconv.Itoa(i) + `}`)}, nil)
			if i%50 == 0 {
				cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
				if ends, err := adm.ListEndOffsets(cctx, "orders"); err == nil {
					adm.CommitOffsets(cctx, "billing", ends.Offsets())
				}
				ccancel()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			cl.Close()
		})
	}
}

// promResponse is the envelope of Prometheus's HTTP API.
type promResponse struct {
	Status string          `json:"status"`
	Error  string          `json:"error"`
	Data   json.RawMessage `json:"data"`
}

func promGet(t *testing.T, u string) json.RawMessage {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r promResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	if r.Status != "success" {
		t.Fatalf("%s: %s", u, r.Error)
	}
	return r.Data
}

// query evaluates expr now and returns how many series it gave.
func query(t *testing.T, api, expr string) int {
	t.Helper()
	var d struct {
		Result []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(promGet(t, api+"/api/v1/query?query="+url.QueryEscape(expr)), &d); err != nil {
		t.Fatal(err)
	}
	return len(d.Result)
}

// queryValues evaluates expr now and returns its series' values.
func queryValues(t *testing.T, api, expr string) []float64 {
	t.Helper()
	var d struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(promGet(t, api+"/api/v1/query?query="+url.QueryEscape(expr)), &d); err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, r := range d.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s: value %v", expr, r.Value)
		}
		out = append(out, v)
	}
	return out
}

// waitTargetsUp waits until Prometheus has scraped every broker and mirror
// worker target successfully (3 brokers, 1 worker) and returns the up
// targets per job. kdr up's own target is reported, not required.
func waitTargetsUp(t *testing.T, api string) map[string]int {
	t.Helper()
	var jobs map[string]int
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		var d struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := json.Unmarshal(promGet(t, api+"/api/v1/targets"), &d); err != nil {
			t.Fatal(err)
		}
		jobs = map[string]int{}
		var bad []string
		for _, tg := range d.ActiveTargets {
			if tg.Health == "up" {
				jobs[tg.Labels["job"]]++
			} else {
				bad = append(bad, fmt.Sprintf("%v %s %s", tg.Labels, tg.Health, tg.LastError))
			}
		}
		return jobs[dashboards.JobBroker] == 3 && jobs[dashboards.JobMirror] == 1, fmt.Sprintf("targets up %v; not up %v", jobs, bad)
	})
	return jobs
}

// checkRulesAndAlerts checks that Prometheus loaded every rule of
// alerts.yml, healthy, and that no alert fires.
func checkRulesAndAlerts(t *testing.T, api string) {
	t.Helper()
	var d struct {
		Groups []struct {
			Rules []struct {
				Name, Health, State, LastError string
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(promGet(t, api+"/api/v1/rules"), &d); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range d.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health == "err" || r.State == "firing" {
				t.Errorf("rule %s: health %s (%s), state %s on a healthy topology", r.Name, r.Health, r.LastError, r.State)
			}
		}
	}
	if want := bytes.Count(dashboards.Alerts(), []byte("- alert: ")); n != want {
		t.Errorf("Prometheus loaded %d rules, alerts.yml has %d", n, want)
	}
}

func waitHealthy(t *testing.T, p *kdrtest.Command, dir string) {
	t.Helper()
	kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
		select {
		case <-p.Done():
			t.Fatalf("kdr up exited early:\n%s", p.Output())
		default:
		}
		e, err := up.ReadEndpoints(up.Layout{Dir: dir}.Endpoints())
		if err != nil {
			return false, err.Error()
		}
		return e.Healthy, "endpoints.json not healthy yet"
	})
}
