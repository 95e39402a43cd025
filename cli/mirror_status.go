package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdr-io/kdr/internal/promtext"
	"github.com/kdr-io/kdr/up"
)

// MirrorStatusOptions are the parsed options of `kdr mirror status`.
type MirrorStatusOptions struct {
	IO  IO
	URL string // a worker's /metrics; "" means kdr up's workers, else the default
	// File and StateDir find kdr up's endpoints.json when URL is "": the
	// topology file ("" is the demo) and its state dir ("" is the default).
	File, StateDir string
	Output         outputFormat
	Timeout        time.Duration
}

// NewCmdMirrorStatus builds `kdr mirror status`. runF replaces the run step
// in tests.
func NewCmdMirrorStatus(streams IO, _ *globalOptions, runF func(*MirrorStatusOptions) error) *cobra.Command {
	opts := &MirrorStatusOptions{IO: streams}
	var output string
	cmd := &cobra.Command{
		Use:   "status [FILE]",
		Short: "Show what running mirror workers copy, from their metrics",
		Long: `Read a running worker's /metrics and show, per flow, topic and partition: records and bytes copied,
offset syncs written, lag in records and seconds, the age of the last copied record and the average
replication latency of the topic (per batch copied, of its oldest record); then the worker's errors by kind.

Without --metrics it reads every mirror worker of the topology kdr up runs (FILE, default the demo; the
workers' URLs are in endpoints.json in the state dir), one section each; when kdr up does not run
and neither FILE nor --state-dir is given, it reads ` + defaultMirrorMetricsURL + `, where "kdr mirror run"
serves by default (it prints its metrics URL). --output json prints one object with --metrics, and an
array of them, one per worker, when reading kdr up's workers. Exit status: 0 when every worker read is
healthy, 1 otherwise (or an error), 2 bad usage.`,
		Example: `  kdr mirror status                                       # the workers of a running kdr up (make run)
  kdr mirror status estate.yaml --output json
  kdr mirror status --metrics http://127.0.0.1:9645/metrics # a worker started with kdr mirror run`,
		Args: upStatusArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := newViper(cmd, "")
			if err != nil {
				return err
			}
			if len(args) == 1 {
				opts.File = args[0]
			}
			if opts.URL = v.GetString("metrics"); opts.URL != "" {
				opts.URL = metricsURL(opts.URL)
			}
			if opts.Output, err = parseOutput(output); err != nil {
				return err
			}
			if opts.Timeout <= 0 {
				return usageError{fmt.Errorf("--timeout must be positive, got %s", opts.Timeout)}
			}
			if opts.URL != "" && (opts.File != "" || opts.StateDir != "") {
				return usageError{errors.New("--metrics names one worker: give it, or a topology FILE / --state-dir to read kdr up's workers, not both")}
			}
			if runF != nil {
				return runF(opts)
			}
			return runMirrorStatus(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.String("metrics", "", "URL of a worker's /metrics (host:port is enough); default: kdr up's workers, else "+defaultMirrorMetricsURL)
	f.StringVar(&opts.StateDir, "state-dir", "", "kdr up's state dir, for endpoints.json (default $XDG_STATE_HOME/kdr/<topology name>)")
	f.StringVar(&output, "output", string(outputText), "output format: text or json")
	f.DurationVar(&opts.Timeout, "timeout", 10*time.Second, "how long to wait for the workers")
	return cmd
}

// defaultMirrorMetricsURL is where `kdr mirror run` serves its metrics
// unless told otherwise.
const defaultMirrorMetricsURL = "http://" + defaultMirrorMetricsListen + "/metrics"

// metricsURL completes a --metrics value: host:port is enough.
func metricsURL(s string) string {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	if !strings.Contains(strings.SplitN(s, "://", 2)[1], "/") {
		s += "/metrics"
	}
	return s
}

// mirrorWorker is a worker to read: its /metrics URL, and its flow and
// instance id when kdr up's endpoints.json named it.
type mirrorWorker struct {
	URL      string `json:"-"`
	Flow     string `json:"flow"`
	Instance string `json:"instance_id"`
	Log      string `json:"log,omitempty"` // kdr up's log of the worker
}

// mirrorWorkers finds the workers `kdr mirror status` reads: --metrics, or
// every worker of the topology kdr up runs (fromUp), or, when kdr up does
// not run and nothing pointed at it, kdr mirror run's default address.
func mirrorWorkers(opts *MirrorStatusOptions) (ws []mirrorWorker, fromUp bool, err error) {
	if opts.URL != "" {
		return []mirrorWorker{{URL: opts.URL}}, false, nil
	}
	t, err := upLoadTopology(opts.File)
	if err != nil {
		return nil, false, err
	}
	dir, err := upStateDir(opts.StateDir, t)
	if err != nil {
		return nil, false, usageError{err}
	}
	path := up.Layout{Dir: dir}.Endpoints()
	e, err := up.ReadEndpoints(path)
	if err == nil && e.Running && processAlive(e.PID) {
		for _, f := range e.Flows {
			for _, w := range f.Workers {
				if w.MetricsURL != "" {
					ws = append(ws, mirrorWorker{URL: w.MetricsURL, Flow: f.Name, Instance: w.InstanceID, Log: w.Log})
				}
			}
		}
		if len(ws) == 0 {
			return nil, true, fmt.Errorf("kdr up runs topology %s (%s) but no mirror worker is running: its flows are stopped or still starting (kdr status shows them)", e.Topology, path)
		}
		return ws, true, nil
	}
	if opts.File != "" || opts.StateDir != "" {
		return nil, false, fmt.Errorf("kdr up is not running topology %s: %s names no running kdr up; start it with kdr up, or give --metrics for a worker started with kdr mirror run", t.Metadata.Name, path)
	}
	return []mirrorWorker{{URL: defaultMirrorMetricsURL}}, false, nil
}

// mirrorStatus is the result of `kdr mirror status`.
type mirrorStatus struct {
	URL string `json:"url"`
	// Worker is the worker's flow and instance id, when kdr up's
	// endpoints.json named it; ReadError is why it could not be read.
	Worker    *mirrorWorker `json:"worker,omitempty"`
	ReadError string        `json:"read_error,omitempty"`
	// Healthy and Health are the worker's /healthz: "ok", or why not
	// (Health is empty and Healthy false when /healthz did not answer).
	Healthy bool   `json:"healthy"`
	Health  string `json:"health"`
	// HealthError is why /healthz could not be read, when it could not.
	HealthError string           `json:"health_error,omitempty"`
	Assigned    map[string]int64 `json:"assigned_partitions"` // by flow
	// NotFetched counts, by flow, the owned partitions whose fetches have
	// failed for 5 s or more (a source broker down while others serve).
	NotFetched map[string]int64 `json:"fetch_failing_partitions"`
	// FlowLag is, by flow, what the flow's workers have not copied, from
	// their group's committed positions: every partition, whoever owns it.
	FlowLag    map[string]int64     `json:"flow_lag_records"`
	Partitions []mirrorPartitionRow `json:"partitions"`
	Errors     []mirrorErrorRow     `json:"errors"`
	// Checkpoints are the consumer groups this worker checkpoints (only
	// the flow's checkpointing worker exports them).
	Checkpoints []mirrorCheckpointRow `json:"checkpoints"`
}

// mirrorCheckpointRow is one group's checkpoint age; AgeSeconds is null when
// the group has not been checkpointed yet (the metric reads -1).
type mirrorCheckpointRow struct {
	Flow       string   `json:"flow"`
	Group      string   `json:"group"`
	AgeSeconds *float64 `json:"age_seconds"`
}

type mirrorPartitionRow struct {
	Flow        string `json:"flow"`
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Records     int64  `json:"records"`
	Bytes       int64  `json:"bytes"`
	OffsetSyncs int64  `json:"offset_syncs"`
	// Lag fields are null for partitions the worker no longer owns.
	LagRecords        *int64   `json:"lag_records"`
	LagSeconds        *float64 `json:"lag_seconds"`
	RecordAgeSeconds  *float64 `json:"record_age_seconds"`
	AvgLatencySeconds *float64 `json:"avg_latency_seconds"` // of the topic
}

type mirrorErrorRow struct {
	Flow  string `json:"flow"`
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
}

func runMirrorStatus(ctx context.Context, opts *MirrorStatusOptions) error {
	ws, fromUp, err := mirrorWorkers(opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if !fromUp {
		st, err := readMirrorWorker(ctx, ws[0])
		if err != nil {
			return err
		}
		if err := printResult(opts.IO.Out, opts.Output, st, printMirrorStatus); err != nil {
			return err
		}
		return mirrorHealthErr(st)
	}
	// kdr up's workers: one section each, read one after the other (a
	// handful, each one HTTP request). A worker that cannot be read is
	// reported in its place and fails the exit status, not the others.
	all := make([]mirrorStatus, 0, len(ws))
	failed := 0
	for i, w := range ws {
		st, err := readMirrorWorker(ctx, w)
		if err != nil {
			st = tabulateMirror(w.URL, nil)
			st.Worker, st.ReadError = &ws[i], err.Error()
		}
		if mirrorHealthErr(st) != nil {
			failed++
		}
		all = append(all, st)
	}
	if err := printResult(opts.IO.Out, opts.Output, all, printMirrorStatuses); err != nil {
		return err
	}
	if failed > 0 {
		// The output says why, worker by worker, as it does for one.
		return exitCodeError{code: exitError, msg: fmt.Sprintf("%d of %d mirror workers unreadable or not healthy", failed, len(ws))}
	}
	return nil
}

// readMirrorWorker reads one worker's /metrics and /healthz.
func readMirrorWorker(ctx context.Context, w mirrorWorker) (mirrorStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.URL, nil)
	if err != nil {
		return mirrorStatus{}, usageError{fmt.Errorf("--metrics %q: %w", w.URL, err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if w.Flow != "" {
			return mirrorStatus{}, fmt.Errorf("reading %s: %w (kdr up restarts a worker that exits; its log says why: %s)", w.URL, err, cmp.Or(w.Log, "see kdr up's logs/ in the state dir"))
		}
		return mirrorStatus{}, fmt.Errorf("reading %s: %w (is `kdr mirror run` running there? it prints its metrics URL; under kdr up, give the topology file or --state-dir instead)", w.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return mirrorStatus{}, fmt.Errorf("reading %s: HTTP %s (--metrics must be the /metrics URL `kdr mirror run` printed)", w.URL, resp.Status)
	}
	samples, err := promtext.Parse(resp.Body)
	if err != nil {
		return mirrorStatus{}, fmt.Errorf("reading %s: %w", w.URL, err)
	}
	st := tabulateMirror(w.URL, samples)
	if len(st.Assigned) == 0 && len(st.Partitions) == 0 {
		return mirrorStatus{}, fmt.Errorf("%s has no kdr_mirror_ metrics: it is not a kdr mirror worker's (`kdr mirror run` prints its metrics URL)", w.URL)
	}
	if w.Flow != "" {
		st.Worker = &w
	}
	st.Healthy, st.Health, st.HealthError = workerHealth(ctx, strings.TrimSuffix(w.URL, "/metrics")+"/healthz")
	return st, nil
}

// mirrorHealthErr is the exit status a worker's status calls for.
func mirrorHealthErr(st mirrorStatus) error {
	switch {
	case st.ReadError != "":
		return exitCodeError{code: exitError, msg: st.ReadError}
	case st.HealthError != "":
		return exitCodeError{code: exitError, msg: "could not read the mirror worker's /healthz: " + st.HealthError}
	case !st.Healthy:
		return exitCodeError{code: exitError, msg: "the mirror worker is not healthy"}
	}
	return nil
}

// workerHealth reads a worker's /healthz: 200 with "ok", or 503 with why;
// readErr says why it could not be read.
func workerHealth(ctx context.Context, url string) (healthy bool, health, readErr string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, "", err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, "", fmt.Sprintf("reading %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode == http.StatusOK, strings.TrimSpace(string(body)), ""
}

// tabulateMirror groups the kdr_mirror_* samples by flow, topic and
// partition.
func tabulateMirror(url string, samples []promtext.Sample) mirrorStatus {
	st := mirrorStatus{URL: url, Assigned: map[string]int64{}, NotFetched: map[string]int64{}, FlowLag: map[string]int64{}, Partitions: []mirrorPartitionRow{}, Errors: []mirrorErrorRow{},
		Checkpoints: []mirrorCheckpointRow{}}
	type key struct {
		flow, topic string
		partition   int32
	}
	rows := map[key]*mirrorPartitionRow{}
	row := func(l map[string]string) *mirrorPartitionRow {
		p, err := strconv.ParseInt(l["partition"], 10, 32)
		if err != nil {
			return nil
		}
		k := key{l["flow"], l["topic"], int32(p)}
		if rows[k] == nil {
			rows[k] = &mirrorPartitionRow{Flow: k.flow, Topic: k.topic, Partition: k.partition}
		}
		return rows[k]
	}
	latSum, latCount := map[[2]string]float64{}, map[[2]string]float64{}
	for _, s := range samples {
		l, v := s.Labels, s.Value
		ptr := func(f float64) *float64 { return &f }
		switch s.Name {
		case "kdr_mirror_records_total":
			if r := row(l); r != nil {
				r.Records = int64(v)
			}
		case "kdr_mirror_bytes_total":
			if r := row(l); r != nil {
				r.Bytes = int64(v)
			}
		case "kdr_mirror_offset_syncs_total":
			if r := row(l); r != nil {
				r.OffsetSyncs = int64(v)
			}
		case "kdr_mirror_lag_records":
			if r := row(l); r != nil {
				n := int64(v)
				r.LagRecords = &n
			}
		case "kdr_mirror_lag_seconds":
			if r := row(l); r != nil {
				r.LagSeconds = ptr(v)
			}
		case "kdr_mirror_record_age_seconds":
			if r := row(l); r != nil {
				r.RecordAgeSeconds = ptr(v)
			}
		case "kdr_mirror_replication_latency_seconds_sum":
			latSum[[2]string{l["flow"], l["topic"]}] = v
		case "kdr_mirror_replication_latency_seconds_count":
			latCount[[2]string{l["flow"], l["topic"]}] = v
		case "kdr_mirror_errors_total":
			st.Errors = append(st.Errors, mirrorErrorRow{Flow: l["flow"], Kind: l["kind"], Count: int64(v)})
		case "kdr_mirror_assigned_partitions":
			st.Assigned[l["flow"]] = int64(v)
		case "kdr_mirror_flow_lag_records":
			st.FlowLag[l["flow"]] = int64(v)
		case "kdr_mirror_fetch_failing_partitions":
			st.NotFetched[l["flow"]] = int64(v)
		case "kdr_mirror_checkpoint_age_seconds":
			c := mirrorCheckpointRow{Flow: l["flow"], Group: l["group"]}
			if v >= 0 {
				c.AgeSeconds = ptr(v)
			}
			st.Checkpoints = append(st.Checkpoints, c)
		}
	}
	for _, r := range rows {
		ft := [2]string{r.Flow, r.Topic}
		if n := latCount[ft]; n > 0 {
			avg := latSum[ft] / n
			r.AvgLatencySeconds = &avg
		}
		st.Partitions = append(st.Partitions, *r)
	}
	slices.SortFunc(st.Partitions, func(a, b mirrorPartitionRow) int {
		return cmp.Or(cmp.Compare(a.Flow, b.Flow), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	slices.SortFunc(st.Errors, func(a, b mirrorErrorRow) int {
		return cmp.Or(cmp.Compare(a.Flow, b.Flow), cmp.Compare(a.Kind, b.Kind))
	})
	slices.SortFunc(st.Checkpoints, func(a, b mirrorCheckpointRow) int {
		return cmp.Or(cmp.Compare(a.Flow, b.Flow), cmp.Compare(a.Group, b.Group))
	})
	return st
}

// printMirrorStatuses prints kdr up's workers, a section each.
func printMirrorStatuses(w io.Writer, all []mirrorStatus) error {
	for i, st := range all {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s worker %s (%s)\n", st.Worker.Flow, st.Worker.Instance, st.URL)
		if st.ReadError != "" {
			fmt.Fprintf(w, "unreadable: %s\n", st.ReadError)
			continue
		}
		if err := printMirrorStatus(w, st); err != nil {
			return err
		}
	}
	return nil
}

func printMirrorStatus(w io.Writer, st mirrorStatus) error {
	if len(st.Partitions) == 0 {
		fmt.Fprintln(w, "No partitions copied yet.")
	} else {
		t := newTable(w, "FLOW", "TOPIC", "PARTITION", "RECORDS", "BYTES", "SYNCS", "LAG", "LAG_SECONDS", "RECORD_AGE", "AVG_LATENCY")
		for _, r := range st.Partitions {
			t.row(r.Flow, r.Topic, r.Partition, r.Records, r.Bytes, r.OffsetSyncs,
				optInt(r.LagRecords), optSeconds(r.LagSeconds), optSeconds(r.RecordAgeSeconds), optSeconds(r.AvgLatencySeconds))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	for _, flow := range slices.Sorted(func(yield func(string) bool) {
		for f := range st.Assigned {
			if !yield(f) {
				return
			}
		}
	}) {
		var errs []string
		for _, e := range st.Errors {
			if e.Flow == flow && e.Count > 0 {
				errs = append(errs, fmt.Sprintf("%s=%d", e.Kind, e.Count))
			}
		}
		summary := "none"
		if len(errs) > 0 {
			summary = strings.Join(errs, " ")
		}
		notFetched := ""
		if n := st.NotFetched[flow]; n > 0 {
			notFetched = fmt.Sprintf(", %d not fetched for 5s or more (see the worker's /healthz)", n)
		}
		flowLag := ""
		if n, ok := st.FlowLag[flow]; ok {
			flowLag = fmt.Sprintf("; flow lag %d records (all workers, committed)", n)
		}
		fmt.Fprintf(w, "%s: %d partitions assigned%s%s; errors: %s\n", flow, st.Assigned[flow], notFetched, flowLag, summary)
		var cps []string
		for _, c := range st.Checkpoints {
			if c.Flow == flow {
				cps = append(cps, c.Group+"="+optSeconds(c.AgeSeconds))
			}
		}
		if len(cps) > 0 {
			fmt.Fprintf(w, "%s: checkpoint age by group: %s\n", flow, strings.Join(cps, " "))
		}
	}
	switch {
	case st.Healthy:
		fmt.Fprintln(w, "health: ok")
	case st.Health == "":
		fmt.Fprintf(w, "health: unknown: the worker's /healthz did not answer (%s); is the worker still running there?\n", st.HealthError)
	default:
		fmt.Fprintf(w, "health: NOT OK: %s\n", st.Health)
	}
	return nil
}

func optInt(p *int64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(*p, 10)
}

func optSeconds(p *float64) string {
	if p == nil {
		return "-"
	}
	return (time.Duration(*p * float64(time.Second))).Round(time.Millisecond).String()
}
