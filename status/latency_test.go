package status

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kdr-io/kdr/internal/promtext"
)

const exposition = `# HELP kdr_mirror_replication_latency_seconds Time from ...
# TYPE kdr_mirror_replication_latency_seconds histogram
kdr_mirror_replication_latency_seconds_bucket{flow="east->west",topic="orders",le="0.001"} 0
kdr_mirror_replication_latency_seconds_bucket{flow="east->west",topic="orders",le="0.002"} 50
kdr_mirror_replication_latency_seconds_bucket{flow="east->west",topic="orders",le="0.004"} 90
kdr_mirror_replication_latency_seconds_bucket{flow="east->west",topic="orders",le="+Inf"} 100
kdr_mirror_replication_latency_seconds_sum{flow="east->west",topic="orders"} 0.2
kdr_mirror_replication_latency_seconds_count{flow="east->west",topic="orders"} 100
kdr_mirror_replication_latency_seconds_bucket{flow="east->west",topic="pay\"ments",le="0.001"} 0
kdr_mirror_replication_latency_seconds_bucket{flow="east->west",topic="pay\"ments",le="0.002"} 0
kdr_mirror_replication_latency_seconds_bucket{flow="east->west",topic="pay\"ments",le="0.004"} 100
kdr_mirror_replication_latency_seconds_bucket{flow="east->west",topic="pay\"ments",le="+Inf"} 100
kdr_mirror_replication_latency_seconds_bucket{flow="west->east",topic="orders",le="0.001"} 7
kdr_mirror_replication_latency_seconds_bucket{flow="west->east",topic="orders",le="+Inf"} 7
kdr_mirror_replication_latency_seconds_bucket_other 3
`

func TestStatusLatencyHistogram(t *testing.T) {
	samples, err := promtext.Parse(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	h, err := histogramOf(samples, LatencyMetric, map[string]string{"flow": "east->west"})
	if err != nil {
		t.Fatal(err)
	}
	want := Histogram{0.001: 0, 0.002: 50, 0.004: 190, math.Inf(1): 200}
	if len(h) != len(want) {
		t.Fatalf("got %v, want %v", h, want)
	}
	for le, n := range want {
		if h[le] != n {
			t.Fatalf("got %v, want %v", h, want)
		}
	}
	// Rank 180 of 200 falls in (0.002, 0.004], which holds ranks 50-190.
	q, ok := h.Quantile(0.9)
	if !ok || math.Abs(q-(0.002+0.002*(180-50)/140)) > 1e-12 {
		t.Fatalf("p90 = %v, %v", q, ok)
	}
	if q, ok := h.Quantile(0.1); !ok || math.Abs(q-(0.001+0.001*20/50)) > 1e-12 {
		t.Fatalf("p10 = %v, %v", q, ok)
	}
	// In the +Inf bucket: the highest finite bound, as histogram_quantile.
	if q, ok := h.Quantile(0.99); !ok || q != 0.004 {
		t.Fatalf("p99 = %v, %v", q, ok)
	}
	if _, ok := (Histogram{math.Inf(1): 0}).Quantile(0.99); ok {
		t.Fatal("empty histogram has a quantile")
	}
}

// TestStatusLatencyRecent: the p99 is the highest of the workers' last-minute
// summaries, not their histograms since start; a worker that copied nothing
// in that minute (NaN) adds nothing; without any summary the histogram
// serves.
func TestStatusLatencyRecent(t *testing.T) {
	serve := func(body string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }))
		t.Cleanup(s.Close)
		return s.URL + "/metrics"
	}
	summary := func(p99 string) string {
		return "# TYPE " + RecentLatencyMetric + " summary\n" +
			RecentLatencyMetric + `{flow="east->west",quantile="0.5"} 0.001` + "\n" +
			RecentLatencyMetric + `{flow="east->west",quantile="0.99"} ` + p99 + "\n" +
			RecentLatencyMetric + `{flow="west->east",quantile="0.99"} 9` + "\n" +
			RecentLatencyMetric + `_sum{flow="east->west"} 1` + "\n" +
			RecentLatencyMetric + `_count{flow="east->west"} 10` + "\n"
	}
	// The histogram since start says seconds (a start-up catch-up).
	slow := "# TYPE " + LatencyMetric + " histogram\n" +
		LatencyMetric + `_bucket{flow="east->west",topic="t",le="4"} 0` + "\n" +
		LatencyMetric + `_bucket{flow="east->west",topic="t",le="8"} 100` + "\n" +
		LatencyMetric + `_bucket{flow="east->west",topic="t",le="+Inf"} 100` + "\n"
	ctx := context.Background()
	p := func(urls ...string) *float64 {
		return p99(ctx, Options{Timeout: time.Second, WorkerMetrics: map[string][]string{"east->west": urls}}, "east->west")
	}
	if got := p(serve(slow+summary("0.012")), serve(summary("0.034")), serve(summary("NaN"))); got == nil || *got != 0.034 {
		t.Fatalf("p99 %v, want the highest recent one, 0.034", got)
	}
	if got := p(serve(slow + summary("NaN"))); got != nil {
		t.Fatalf("p99 %v for a flow that copied nothing in the last minute, want none", *got)
	}
	if got := p(serve(slow)); got == nil || *got < 4 || *got > 8 {
		t.Fatalf("p99 %v without a summary, want the histogram's, in (4, 8]", got)
	}
}
