package dashboards

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestDashboardsMetricsLint runs client_golang's metric lint (promlint:
// base units, _total on counters, no camelCase, help text) over the
// series of the broker and mirror registries.
func TestDashboardsMetricsLint(t *testing.T) {
	e := exportedMetrics(t)
	for kind, reg := range e.regs {
		problems, err := testutil.GatherAndLint(reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s metric %s: %s", kind, p.Metric, p.Text)
		}
	}
}
