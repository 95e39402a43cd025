// Package promtext reads the Prometheus text exposition format (what every
// kdr process serves on /metrics) into flat samples, with prometheus/common's
// parser, for the commands that summarise a process's metrics (kdr mirror
// status, kdr status).
package promtext

import (
	"fmt"
	"io"
	"math"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one series' value, named as in the exposition: a histogram
// gives name_bucket samples (with an "le" label), name_sum and name_count.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Parse reads every sample of r.
func Parse(r io.Reader) ([]Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	var out []Sample
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			add := func(n string, v float64, extra ...string) {
				ls := labels
				if len(extra) == 2 {
					ls = make(map[string]string, len(labels)+1)
					for k, v := range labels {
						ls[k] = v
					}
					ls[extra[0]] = extra[1]
				}
				out = append(out, Sample{Name: n, Labels: ls, Value: v})
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(name, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				inf := false
				for _, b := range h.GetBucket() {
					inf = inf || math.IsInf(b.GetUpperBound(), +1)
					add(name+"_bucket", float64(b.GetCumulativeCount()), "le", formatLE(b.GetUpperBound()))
				}
				if !inf {
					add(name+"_bucket", float64(h.GetSampleCount()), "le", "+Inf")
				}
				add(name+"_sum", h.GetSampleSum())
				add(name+"_count", float64(h.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add(name, q.GetValue(), "quantile", strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64))
				}
				add(name+"_sum", s.GetSampleSum())
				add(name+"_count", float64(s.GetSampleCount()))
			}
		}
	}
	return out, nil
}

func formatLE(v float64) string {
	if math.IsInf(v, +1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
