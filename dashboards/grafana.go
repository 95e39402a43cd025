package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kdr-io/kdr/internal/atomicfile"
)

// SchemaVersion is the Grafana dashboard schema the JSON is written in
// (Grafana 10.4 and later read it as is).
const SchemaVersion = 39

// Template variables the queries use. Grafana replaces them; tests replace
// them with the values in TestValues.
const (
	VarDatasource   = "datasource"
	VarCluster      = "$cluster"
	VarFlow         = "$flow"
	VarRateInterval = "$__rate_interval"
)

// PanelKind is a Grafana panel type.
type PanelKind string

// Panel kinds used by the dashboards.
const (
	Stat       PanelKind = "stat"
	TimeSeries PanelKind = "timeseries"
	Heatmap    PanelKind = "heatmap"
	BarGauge   PanelKind = "bargauge"
)

// Dashboard is one Grafana dashboard: rows of panels, top to bottom.
type Dashboard struct {
	// UID is the dashboard's stable id (links and provisioning use it);
	// File is its file name under grafana/.
	UID, File   string
	Title       string
	Description string
	// Cluster and Flow add the cluster and flow variables.
	Cluster, Flow bool
	Rows          []Row
}

// Row is a titled row of panels laid out left to right, wrapping at 24
// columns.
type Row struct {
	Title  string
	Panels []Panel
}

// Panel is one panel. Zero Width and Height mean 8 and 8.
type Panel struct {
	Kind        PanelKind
	Title       string
	Description string
	// Unit is Grafana's unit id: "s", "short", "bytes", "Bps", ...
	Unit          string
	Width, Height int
	Queries       []Query
	// Red is the threshold from which a stat turns red (0: never; a
	// stat with Red set is green below it).
	Red float64
	// TextMode "name" shows a stat's series name (its legend) instead of
	// the value.
	TextMode string
	// Stacked stacks a time series' lines.
	Stacked bool
}

// Query is one PromQL query of a panel.
type Query struct {
	Expr   string
	Legend string
	// Instant evaluates at the dashboard's end time only (stats).
	Instant bool
}

// Queries returns every query of every panel, with the panel's title.
func (d *Dashboard) Queries() []PanelQuery {
	var out []PanelQuery
	for _, r := range d.Rows {
		for _, p := range r.Panels {
			for _, q := range p.Queries {
				out = append(out, PanelQuery{Dashboard: d.Title, Panel: p.Title, Query: q})
			}
		}
	}
	return out
}

// PanelQuery is a query with the panel and dashboard it belongs to.
type PanelQuery struct {
	Dashboard, Panel string
	Query
}

// VariableQueries are the PromQL metric selectors behind the cluster and
// flow variables (label_values(METRIC, LABEL)).
var VariableQueries = map[string]struct{ Metric, Label string }{
	"cluster": {"kdr_broker_partitions", "cluster"},
	"flow":    {"kdr_mirror_assigned_partitions", "flow"},
}

// JSON renders the dashboard as Grafana dashboard JSON, indented, with a
// final newline. The output is deterministic.
func (d *Dashboard) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep PromQL's < > & readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(d.model()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type obj = map[string]any

var promDS = obj{"type": "prometheus", "uid": "${" + VarDatasource + "}"}

func (d *Dashboard) model() obj {
	var panels []any
	id, y := 1, 0
	for _, r := range d.Rows {
		panels = append(panels, obj{"type": "row", "id": id, "title": r.Title, "collapsed": false,
			"gridPos": obj{"h": 1, "w": 24, "x": 0, "y": y}, "panels": []any{}})
		id++
		y++
		x, rowH := 0, 0
		for _, p := range r.Panels {
			w, h := p.Width, p.Height
			if w == 0 {
				w = 8
			}
			if h == 0 {
				h = 8
			}
			if x+w > 24 {
				x, y, rowH = 0, y+rowH, 0
			}
			panels = append(panels, p.model(id, obj{"h": h, "w": w, "x": x, "y": y}))
			id++
			x += w
			rowH = max(rowH, h)
		}
		y += rowH
	}
	vars := []any{obj{
		"name": VarDatasource, "label": "Data source", "type": "datasource", "query": "prometheus",
		"current": obj{}, "hide": 0, "refresh": 1, "regex": "", "options": []any{}, "includeAll": false, "multi": false,
	}}
	for _, v := range []struct {
		name, label string
		on          bool
	}{{"cluster", "Cluster", d.Cluster}, {"flow", "Flow", d.Flow}} {
		if !v.on {
			continue
		}
		vq := VariableQueries[v.name]
		def := "label_values(" + vq.Metric + ", " + vq.Label + ")"
		vars = append(vars, obj{
			"name": v.name, "label": v.label, "type": "query", "datasource": promDS,
			"definition": def, "query": obj{"query": def, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
			"current": obj{}, "hide": 0, "refresh": 2, "regex": "", "sort": 1, "options": []any{},
			"includeAll": true, "multi": true, "allValue": ".*",
		})
	}
	return obj{
		"uid": d.UID, "title": d.Title, "description": d.Description, "tags": []string{"kdr"},
		"id": nil, "version": 1, "schemaVersion": SchemaVersion, "editable": true, "graphTooltip": 1,
		"fiscalYearStartMonth": 0, "liveNow": false, "refresh": "10s", "timezone": "", "weekStart": "",
		"time":       obj{"from": "now-1h", "to": "now"},
		"timepicker": obj{},
		"annotations": obj{"list": []any{obj{
			"builtIn": 1, "datasource": obj{"type": "grafana", "uid": "-- Grafana --"}, "enable": true, "hide": true,
			"iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard",
		}}},
		"links": []any{obj{
			"type": "dashboards", "tags": []string{"kdr"}, "asDropdown": true, "title": "kdr dashboards",
			"includeVars": true, "keepTime": true, "icon": "external link", "targetBlank": false, "tooltip": "", "url": "",
		}},
		"templating": obj{"list": vars},
		"panels":     panels,
	}
}

func (p Panel) model(id int, grid obj) obj {
	var targets []any
	for i, q := range p.Queries {
		t := obj{"refId": string(rune('A' + i)), "datasource": promDS, "expr": q.Expr, "legendFormat": q.Legend,
			"editorMode": "code", "range": !q.Instant, "instant": q.Instant}
		if p.Kind == Heatmap {
			t["format"] = "heatmap"
		}
		targets = append(targets, t)
	}
	unit := p.Unit
	if unit == "" {
		unit = "short"
	}
	steps := []any{obj{"color": "green", "value": nil}}
	if p.Red != 0 {
		steps = append(steps, obj{"color": "red", "value": p.Red})
	}
	defaults := obj{"unit": unit, "color": obj{"mode": "palette-classic"},
		"thresholds": obj{"mode": "absolute", "steps": steps}, "mappings": []any{}}
	var options obj
	switch p.Kind {
	case Stat:
		defaults["color"] = obj{"mode": "thresholds"}
		textMode := p.TextMode
		if textMode == "" {
			textMode = "auto"
		}
		options = obj{"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"colorMode": "background", "graphMode": "none", "textMode": textMode, "orientation": "auto",
			"justifyMode": "auto", "wideLayout": true, "showPercentChange": false}
	case BarGauge:
		defaults["color"] = obj{"mode": "thresholds"}
		options = obj{"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"displayMode": "gradient", "orientation": "horizontal", "showUnfilled": true, "valueMode": "color",
			"minVizHeight": 16, "minVizWidth": 8, "namePlacement": "auto", "sizing": "auto"}
	case Heatmap:
		options = obj{"calculate": false, "cellGap": 1, "yAxis": obj{"axisPlacement": "left", "unit": unit},
			"color":     obj{"mode": "scheme", "scheme": "Oranges", "exponent": 0.5, "fill": "dark-orange", "reverse": false, "steps": 64},
			"rowsFrame": obj{"layout": "auto"}, "cellValues": obj{}, "showValue": "never",
			"legend": obj{"show": true}, "tooltip": obj{"mode": "single", "yHistogram": true, "showColorScale": false},
			"exemplars": obj{"color": "rgba(255,0,255,0.7)"}, "filterValues": obj{"le": 1e-9}}
	default: // TimeSeries
		stacking := "none"
		if p.Stacked {
			stacking = "normal"
		}
		defaults["custom"] = obj{"drawStyle": "line", "lineInterpolation": "linear", "lineWidth": 1, "fillOpacity": 10,
			"showPoints": "never", "spanNulls": false, "axisPlacement": "auto", "axisBorderShow": false,
			"stacking": obj{"mode": stacking, "group": "A"}}
		options = obj{"legend": obj{"displayMode": "table", "placement": "bottom", "showLegend": true,
			"calcs": []string{"lastNotNull", "max"}}, "tooltip": obj{"mode": "multi", "sort": "desc"}}
	}
	return obj{"id": id, "type": string(p.Kind), "title": p.Title, "description": p.Description, "gridPos": grid,
		"datasource": promDS, "targets": targets, "options": options,
		"fieldConfig": obj{"defaults": defaults, "overrides": []any{}}}
}

// WriteGrafana writes every dashboard's JSON into dir, as File.
func WriteGrafana(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("dashboards: %w", err)
	}
	for _, d := range All() {
		b, err := d.JSON()
		if err != nil {
			return fmt.Errorf("dashboards: %s: %w", d.Title, err)
		}
		if err := atomicfile.Write(filepath.Join(dir, d.File), b, 0o644); err != nil {
			return fmt.Errorf("dashboards: %w", err)
		}
	}
	return nil
}
