package promtext

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := `# HELP kdr_x_total things
# TYPE kdr_x_total counter
kdr_x_total{flow="a->b",topic="o\"q"} 3
# TYPE kdr_lat_seconds histogram
kdr_lat_seconds_bucket{flow="a->b",le="0.1"} 2
kdr_lat_seconds_bucket{flow="a->b",le="1"} 5
kdr_lat_seconds_bucket{flow="a->b",le="+Inf"} 6
kdr_lat_seconds_sum{flow="a->b"} 2.5
kdr_lat_seconds_count{flow="a->b"} 6
`
	got, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`kdr_x_total a->b o"q`: 3, "kdr_lat_seconds_bucket 0.1": 2, "kdr_lat_seconds_bucket 1": 5,
		"kdr_lat_seconds_bucket +Inf": 6, "kdr_lat_seconds_sum ": 2.5, "kdr_lat_seconds_count ": 6,
	}
	if len(got) != len(want) {
		t.Errorf("%d samples, want %d: %v", len(got), len(want), got)
	}
	seen := map[string]float64{}
	for _, s := range got {
		k := s.Name + " " + s.Labels["le"]
		if s.Name == "kdr_x_total" {
			k = s.Name + " " + s.Labels["flow"] + " " + s.Labels["topic"]
		}
		seen[k] = s.Value
	}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, seen[k], v, seen)
		}
	}
	if _, err := Parse(strings.NewReader("kdr_bad{ 1\n")); err == nil {
		t.Error("malformed input parsed without error")
	}
}
