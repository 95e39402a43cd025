package status

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/kdr-io/kdr/internal/promtext"
)

// LatencyMetric is the mirror's replication latency histogram (see
// mirror/metrics.go), RecentLatencyMetric the same latency over the last
// minute as a summary.
const (
	LatencyMetric       = "kdr_mirror_replication_latency_seconds"
	RecentLatencyMetric = "kdr_mirror_replication_latency_recent_seconds"
)

// p99 fetches the flow's workers' metrics and returns their replication
// latency p99 over the last minute: the highest of the workers' (a summary's
// quantiles do not merge), or nil when none copied anything in that minute.
// Workers without the summary (older binaries) give the p99 of their merged
// histograms since they started. nil too when no worker answered.
func p99(ctx context.Context, opts Options, flow string) *float64 {
	urls := opts.WorkerMetrics[flow]
	if len(urls) == 0 {
		return nil
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: opts.timeout()}
	}
	var (
		mu         sync.Mutex
		merged     = Histogram{}
		recent     *float64
		haveRecent bool // some worker exposes the summary
	)
	var wg sync.WaitGroup
	for _, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			samples, err := fetchSamples(ctx, hc, u)
			if err != nil {
				return // a worker that is down has no latency to add
			}
			match := map[string]string{"flow": flow}
			h, herr := histogramOf(samples, LatencyMetric, match)
			q, present := recentQuantile(samples, flow, "0.99")
			mu.Lock()
			defer mu.Unlock()
			if herr == nil {
				merged.Add(h)
			}
			haveRecent = haveRecent || present
			if present && !math.IsNaN(q) && (recent == nil || q > *recent) {
				recent = &q
			}
		}()
	}
	wg.Wait()
	if haveRecent {
		return recent
	}
	q, ok := merged.Quantile(0.99)
	if !ok {
		return nil
	}
	return &q
}

func fetchSamples(ctx context.Context, hc *http.Client, url string) ([]promtext.Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	samples, err := promtext.Parse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	return samples, nil
}

// recentQuantile is the flow's RecentLatencyMetric quantile q ("0.99"), and
// whether the worker exposes it at all (NaN when it copied nothing in the
// last minute).
func recentQuantile(samples []promtext.Sample, flow, q string) (float64, bool) {
	for _, s := range samples {
		if s.Name == RecentLatencyMetric && s.Labels["flow"] == flow && s.Labels["quantile"] == q {
			return s.Value, true
		}
	}
	return math.NaN(), false
}

// Histogram is a cumulative Prometheus histogram: bucket upper bound (le,
// +Inf included) to the count of observations at or below it.
type Histogram map[float64]float64

// Add merges o into h (same buckets: the series of several topics or
// workers).
func (h Histogram) Add(o Histogram) {
	for le, n := range o {
		h[le] += n
	}
}

// Quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: linear interpolation inside the bucket holding the rank; the
// highest finite bound when the rank falls in +Inf. ok is false without
// observations.
func (h Histogram) Quantile(q float64) (float64, bool) {
	bounds := make([]float64, 0, len(h))
	for le := range h {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 || !math.IsInf(bounds[len(bounds)-1], 1) {
		return 0, false
	}
	total := h[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, le := range bounds {
		n := h[le]
		if n >= rank {
			if math.IsInf(le, 1) {
				if i == 0 {
					return 0, true
				}
				return bounds[i-1], true
			}
			if n == below {
				return le, true
			}
			return lower + (le-lower)*(rank-below)/(n-below), true
		}
		lower, below = le, n
	}
	return bounds[len(bounds)-1], true
}

// histogramOf sums the buckets of histogram name over the samples whose
// labels include match.
func histogramOf(samples []promtext.Sample, name string, match map[string]string) (Histogram, error) {
	h := Histogram{}
	for _, s := range samples {
		if s.Name != name+"_bucket" || !matches(s.Labels, match) {
			continue
		}
		le, err := strconv.ParseFloat(s.Labels["le"], 64)
		if err != nil {
			return nil, fmt.Errorf("status: %s le=%q: %w", s.Name, s.Labels["le"], err)
		}
		h[le] += s.Value
	}
	return h, nil
}

func matches(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}
