package status

import (
	"math"
	"strings"
	"testing"
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
	h, err := ParseHistogram(strings.NewReader(exposition), LatencyMetric, map[string]string{"flow": "east->west"})
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
