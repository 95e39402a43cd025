package dashboards

import (
	"embed"
	"fmt"
	"strconv"
	"strings"
	"time"
)

//go:embed prometheus/alerts.yml
var files embed.FS

// AlertsFile is the alert rules' file name, next to prometheus.yml.
const AlertsFile = "alerts.yml"

// The lag expressions of alerts.yml, with the failover policy's default
// thresholds (topology.FailoverPolicy: 10000 records, 30 s). RenderAlerts
// replaces the thresholds; TestDashboardsAlertsRender keeps these in step
// with the file.
const (
	lagRecordsExpr     = "expr: max by (flow) (kdr_mirror_flow_lag_records or sum by (flow) (kdr_mirror_lag_records)) > "
	lagSecondsExpr     = "expr: max by (flow) (kdr_mirror_lag_seconds) > "
	defaultLagRecsText = "10000"
	defaultLagSecsText = "30"
)

// Alerts returns alerts.yml as committed (default thresholds).
func Alerts() []byte {
	b, err := files.ReadFile("prometheus/alerts.yml")
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}

// RenderAlerts returns alerts.yml with KdrMirrorLagHigh's thresholds set to
// the failover policy's maxLagRecords and maxLag (0 keeps the default).
func RenderAlerts(maxLagRecords int64, maxLag time.Duration) ([]byte, error) {
	s := string(Alerts())
	if maxLagRecords < 0 || maxLag < 0 {
		return nil, fmt.Errorf("dashboards: negative lag threshold (records %d, lag %s)", maxLagRecords, maxLag)
	}
	if maxLagRecords > 0 {
		var err error
		if s, err = replaceOnce(s, lagRecordsExpr+defaultLagRecsText+"\n", lagRecordsExpr+strconv.FormatInt(maxLagRecords, 10)+"\n"); err != nil {
			return nil, err
		}
	}
	if maxLag > 0 {
		var err error
		if s, err = replaceOnce(s, lagSecondsExpr+defaultLagSecsText+"\n", lagSecondsExpr+strconv.FormatFloat(maxLag.Seconds(), 'f', -1, 64)+"\n"); err != nil {
			return nil, err
		}
	}
	return []byte(s), nil
}

func replaceOnce(s, old, new string) (string, error) {
	if strings.Count(s, old) != 1 {
		return "", fmt.Errorf("dashboards: alerts.yml has %q %d times, want once", strings.TrimSpace(old), strings.Count(s, old))
	}
	return strings.Replace(s, old, new, 1), nil
}
