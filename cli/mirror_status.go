package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdr-io/kdr/internal/promtext"
)

// MirrorStatusOptions are the parsed options of `kdr mirror status`.
type MirrorStatusOptions struct {
	IO      IO
	URL     string // a worker's /metrics
	Output  outputFormat
	Timeout time.Duration
}

// NewCmdMirrorStatus builds `kdr mirror status`. runF replaces the run step
// in tests.
func NewCmdMirrorStatus(streams IO, _ *globalOptions, runF func(*MirrorStatusOptions) error) *cobra.Command {
	opts := &MirrorStatusOptions{IO: streams}
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what a running mirror worker copies, from its metrics",
		Long: `Read a running worker's /metrics (the URL "kdr mirror run" prints) and show, per flow, topic and
partition: records and bytes copied, offset syncs written, lag in records and seconds, the age of the
last copied record and the average replication latency of the topic (per batch copied, of its oldest record); then the worker's errors by kind.`,
		Example: `  kdr mirror status --metrics http://127.0.0.1:9645/metrics`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := newViper(cmd, "")
			if err != nil {
				return err
			}
			opts.URL = v.GetString("metrics")
			if !strings.Contains(opts.URL, "://") {
				opts.URL = "http://" + opts.URL
			}
			if !strings.Contains(strings.SplitN(opts.URL, "://", 2)[1], "/") {
				opts.URL += "/metrics"
			}
			if opts.Output, err = parseOutput(output); err != nil {
				return err
			}
			if opts.Timeout <= 0 {
				return usageError{fmt.Errorf("--timeout must be positive, got %s", opts.Timeout)}
			}
			if runF != nil {
				return runF(opts)
			}
			return runMirrorStatus(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.String("metrics", "http://"+defaultMirrorMetricsListen+"/metrics", "URL of the worker's /metrics (host:port is enough)")
	f.StringVar(&output, "output", string(outputText), "output format: text or json")
	f.DurationVar(&opts.Timeout, "timeout", 10*time.Second, "how long to wait for the worker")
	return cmd
}

// mirrorStatus is the result of `kdr mirror status`.
type mirrorStatus struct {
	URL string `json:"url"`
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
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, opts.URL, nil)
	if err != nil {
		return usageError{fmt.Errorf("--metrics %q: %w", opts.URL, err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reading %s: %w (is `kdr mirror run` running there? it prints its metrics URL)", opts.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reading %s: HTTP %s (--metrics must be the /metrics URL `kdr mirror run` printed)", opts.URL, resp.Status)
	}
	samples, err := promtext.Parse(resp.Body)
	if err != nil {
		return fmt.Errorf("reading %s: %w", opts.URL, err)
	}
	st := tabulateMirror(opts.URL, samples)
	if len(st.Assigned) == 0 && len(st.Partitions) == 0 {
		return fmt.Errorf("%s has no kdr_mirror_ metrics: it is not a kdr mirror worker's (`kdr mirror run` prints its metrics URL)", opts.URL)
	}
	st.Healthy, st.Health, st.HealthError = workerHealth(ctx, strings.TrimSuffix(opts.URL, "/metrics")+"/healthz")
	if err := printResult(opts.IO.Out, opts.Output, st, printMirrorStatus); err != nil {
		return err
	}
	switch {
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
