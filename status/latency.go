package status

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// LatencyMetric is the mirror's replication latency histogram (see
// mirror/metrics.go).
const LatencyMetric = "kdr_mirror_replication_latency_seconds"

// p99 fetches the flow's workers' metrics and returns the p99 of their
// merged latency histogram, or nil when none answered with observations.
func p99(ctx context.Context, opts Options, flow string) *float64 {
	urls := opts.WorkerMetrics[flow]
	if len(urls) == 0 {
		return nil
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: opts.timeout()}
	}
	var mu sync.Mutex
	merged := Histogram{}
	var wg sync.WaitGroup
	for _, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := fetchHistogram(ctx, hc, u, flow)
			if err != nil {
				return // a worker that is down has no latency to add
			}
			mu.Lock()
			merged.Add(h)
			mu.Unlock()
		}()
	}
	wg.Wait()
	q, ok := merged.Quantile(0.99)
	if !ok {
		return nil
	}
	return &q
}

func fetchHistogram(ctx context.Context, hc *http.Client, url, flow string) (Histogram, error) {
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
	return ParseHistogram(resp.Body, LatencyMetric, map[string]string{"flow": flow})
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

// ParseHistogram reads Prometheus text exposition and sums the buckets of
// histogram name over every series whose labels include match.
func ParseHistogram(r io.Reader, name string, match map[string]string) (Histogram, error) {
	h := Histogram{}
	prefix := name + "_bucket"
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		rest := line[len(prefix):]
		labels := map[string]string{}
		if strings.HasPrefix(rest, "{") {
			var err error
			labels, rest, err = parseLabels(rest[1:])
			if err != nil {
				return nil, fmt.Errorf("status: %s: %w", line, err)
			}
		} else if !strings.HasPrefix(rest, " ") {
			continue // another metric sharing the prefix
		}
		if !matches(labels, match) {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("status: %s: value: %w", line, err)
		}
		le, err := strconv.ParseFloat(labels["le"], 64)
		if err != nil {
			return nil, fmt.Errorf("status: %s: le: %w", line, err)
		}
		h[le] += v
	}
	return h, sc.Err()
}

func matches(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// parseLabels parses `a="x",b="y\"z"}` and returns the labels and what
// follows the closing brace.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return labels, s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return nil, "", fmt.Errorf("malformed labels")
		}
		key := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var val strings.Builder
		closed := false
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			if c == '"' {
				s, closed = s[i+1:], true
				break
			}
			val.WriteByte(c)
		}
		if !closed {
			return nil, "", fmt.Errorf("unterminated label value")
		}
		labels[key] = val.String()
	}
}
