package drill

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 960, 220
	padL, padR     = 60, 20
	padT, padB     = 20, 30
)

type series struct {
	Name, Color string
	Y           []float64 // one per sample
}

var markerColor = map[string]string{"fault": "#d62728", "heal": "#2ca02c", "failover": "#1f77b4", "repoint": "#9467bd", "step": "#7f7f7f"}

// svgChart renders series over the sample times with the events as
// vertical markers. Everything is inline: no script, no external file.
func svgChart(title string, t []float64, ss []series, events []Event) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="%s">`,
		chartW, chartH, template.HTMLEscapeString(title))
	maxT := 1.0
	if len(t) > 0 {
		maxT = max(maxT, t[len(t)-1])
	}
	for _, e := range events {
		maxT = max(maxT, e.T)
	}
	maxY := 1.0
	for _, s := range ss {
		for _, y := range s.Y {
			if !math.IsNaN(y) {
				maxY = max(maxY, y)
			}
		}
	}
	maxY = niceCeil(maxY)
	x := func(v float64) float64 { return padL + v/maxT*float64(chartW-padL-padR) }
	y := func(v float64) float64 { return float64(chartH-padB) - v/maxY*float64(chartH-padT-padB) }
	// Axes and grid.
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#fafafa" stroke="#ccc"/>`, padL, padT, chartW-padL-padR, chartH-padT-padB)
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/><text x="%d" y="%.1f" font-size="10" text-anchor="end">%s</text>`,
			padL, chartW-padR, y(v), y(v), padL-4, y(v)+3, fmtNum(v))
	}
	step := niceCeil(maxT / 10)
	for v := 0.0; v <= maxT+1e-9; v += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%ss</text>`, x(v), chartH-padB+14, fmtNum(v))
	}
	// Markers.
	for _, e := range events {
		c := markerColor[e.Kind]
		if c == "" {
			c = "#7f7f7f"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s" stroke-dasharray="4 3"><title>%s at %.1fs</title></line>`,
			x(e.T), x(e.T), padT, chartH-padB, c, template.HTMLEscapeString(e.Label), e.T)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="9" fill="%s" transform="rotate(90 %.1f %d)">%s</text>`,
			x(e.T)+2, padT+2, c, x(e.T)+2, padT+2, template.HTMLEscapeString(truncate(e.Label, 40)))
	}
	// Lines.
	for _, s := range ss {
		var pts []string
		for i, v := range s.Y {
			if i < len(t) && !math.IsNaN(v) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(t[i]), y(v)))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, s.Color, strings.Join(pts, " "))
	}
	// Legend.
	lx := padL + 8
	for _, s := range ss {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="3" fill="%s"/><text x="%d" y="%d" font-size="11">%s</text>`,
			lx, padT+8, s.Color, lx+14, padT+12, template.HTMLEscapeString(s.Name))
		lx += 20 + 7*len(s.Name)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// rates turns cumulative counts into per-second rates between samples.
func rates(t []float64, c []int64) []float64 {
	out := make([]float64, len(c))
	for i := range c {
		if i == 0 || t[i] <= t[i-1] {
			out[i] = 0
			continue
		}
		out[i] = float64(c[i]-c[i-1]) / (t[i] - t[i-1])
	}
	return out
}

type htmlData struct {
	R                       *Report
	Throughput, Lag, Errors template.HTML
	Verdict                 string
	Duration                string
	LostShown, DupShown     []RecordRef
	LostMore, DupMore       int
}

// maxRows bounds each record table of the HTML report (report.json has
// them all).
const maxRows = 500

// WriteHTML writes the report as one self-contained HTML page.
func WriteHTML(w io.Writer, rep *Report) error {
	n := len(rep.Timeline)
	t := make([]float64, n)
	var prod, acked, cons, errs []int64
	lag := make([]float64, n)
	for i, s := range rep.Timeline {
		t[i] = s.T
		prod, acked, cons, errs = append(prod, s.Produced), append(acked, s.Acked), append(cons, s.Consumed), append(errs, s.Errors)
		lag[i] = float64(s.Lag)
		if s.Lag < 0 {
			lag[i] = math.NaN()
		}
	}
	d := htmlData{R: rep, Verdict: "PASSED", Duration: rep.FinishedAt.Sub(rep.StartedAt).Round(time.Second).String()}
	if !rep.Passed {
		d.Verdict = "FAILED"
	}
	d.Throughput = svgChart("throughput", t, []series{
		{"produced/s", "#1f77b4", rates(t, prod)}, {"acked/s", "#2ca02c", rates(t, acked)}, {"consumed/s", "#ff7f0e", rates(t, cons)}}, rep.Events)
	d.Lag = svgChart("mirror lag", t, []series{{"mirror lag (records)", "#9467bd", lag}}, rep.Events)
	d.Errors = svgChart("errors", t, []series{{"errors/s", "#d62728", rates(t, errs)}}, rep.Events)
	d.LostShown, d.DupShown = rep.LostRecords, rep.DuplicatedRecords
	if len(d.LostShown) > maxRows {
		d.LostShown, d.LostMore = d.LostShown[:maxRows], len(rep.LostRecords)-maxRows
	}
	if len(d.DupShown) > maxRows {
		d.DupShown, d.DupMore = d.DupShown[:maxRows], len(rep.DuplicatedRecords)-maxRows
	}
	return page.Execute(w, d)
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"secs": func(f float64) string { return fmt.Sprintf("%.2f s", f) },
	"ts":   func(t time.Time) string { return t.Format("15:04:05.000") },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kdr drill {{.R.Scenario}}: {{.Verdict}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}
h1 span.PASSED{color:#2ca02c} h1 span.FAILED{color:#d62728}
table{border-collapse:collapse;margin:.5em 0 1.5em} td,th{border:1px solid #ddd;padding:3px 8px;font-size:13px;text-align:left}
th{background:#f3f3f3} .num{text-align:right} .bad{color:#d62728} .ok{color:#2ca02c} code{font-size:12px}
</style></head><body>
<h1>kdr drill {{.R.Scenario}}: <span class="{{.Verdict}}">{{.Verdict}}</span></h1>
<p>{{.R.Description}}</p>
<p>Topology <b>{{.R.Topology}}</b>, started {{.R.StartedAt.Format "2006-01-02 15:04:05"}}, took {{.Duration}}, active cluster at the end <b>{{.R.ActiveAtEnd}}</b>. State dir <code>{{.R.StateDir}}</code>.</p>
{{if .R.Failures}}<ul class="bad">{{range .R.Failures}}<li>{{.}}</li>{{end}}</ul>{{end}}
<table>
<tr><th>produced</th><th>acked</th><th>failed</th><th>consumed</th><th>lost</th><th>duplicated</th><th>reordered</th><th>undelivered</th><th>producer RTO</th><th>consumer RTO</th><th>RPO</th></tr>
<tr><td class="num">{{.R.Produced}}</td><td class="num">{{.R.Acked}}</td><td class="num">{{.R.Failed}}</td><td class="num">{{.R.Consumed}}</td>
<td class="num">{{.R.Lost}}</td><td class="num">{{.R.Duplicated}}</td><td class="num">{{.R.Reordered}}</td><td class="num">{{.R.Undelivered}}</td>
<td class="num">{{secs .R.ProducerRTOSeconds}}</td><td class="num">{{secs .R.ConsumerRTOSeconds}}</td><td class="num">{{.R.RPORecords}} records, {{secs .R.RPOSeconds}}</td></tr>
</table>
{{if .R.UnreplicatedRead}}<p>Unreplicated suffix of the promoted-away cluster (acknowledged beyond last_received): <b>{{.R.Unreplicated}}</b> records.</p>{{end}}
<h2>Throughput</h2>{{.Throughput}}
<h2>Mirror lag</h2>{{.Lag}}
<h2>Errors</h2>{{.Errors}}
<p>Markers: <span style="color:#d62728">fault</span>, <span style="color:#2ca02c">heal</span>, <span style="color:#1f77b4">failover</span>, <span style="color:#9467bd">client repoint</span>.</p>
<h2>Steps</h2>
<table><tr><th>#</th><th>step</th><th>started</th><th>seconds</th><th>ok</th><th>message</th></tr>
{{range .R.Steps}}<tr><td>{{.Index}}</td><td>{{.Description}}</td><td>{{ts .Started}}</td><td class="num">{{printf "%.1f" .Seconds}}</td><td class="{{if .OK}}ok{{else}}bad{{end}}">{{if .OK}}ok{{else}}failed{{end}}</td><td>{{.Message}}</td></tr>
{{end}}</table>
{{if .R.Failovers}}<h2>Failovers</h2>
<table><tr><th>kind</th><th>from</th><th>to</th><th>epoch</th><th>seconds</th><th>diverged</th><th>error</th></tr>
{{range .R.Failovers}}<tr><td>{{.Kind}}</td><td>{{.From}}</td><td>{{.To}}</td><td class="num">{{.Epoch}}</td><td class="num">{{printf "%.1f" .Seconds}}</td><td class="num">{{.Diverged}}</td><td class="bad">{{.Error}}</td></tr>
{{end}}</table>{{end}}
{{if .R.Repoints}}<h2>Client repoints</h2>
<table><tr><th>client</th><th>from</th><th>to</th><th>at</th><th>took</th><th>offsets timed out</th></tr>
{{range .R.Repoints}}<tr><td>{{.Role}}</td><td>{{.From}}</td><td>{{.To}}</td><td class="num">{{printf "%.1f" .At}} s</td><td class="num">{{secs .Seconds}}</td><td>{{.OffsetsTimedOut}}</td></tr>
{{end}}</table>{{end}}
<h2>Lost records ({{len .R.LostRecords}})</h2>
{{if .LostShown}}<table><tr><th>id</th><th>key</th><th>seq</th><th>produced to</th><th>sent</th><th>delivered</th></tr>
{{range .LostShown}}<tr><td><code>{{.ID}}</code></td><td>{{.Key}}</td><td class="num">{{.Seq}}</td><td>{{.Cluster}}</td><td>{{ts .Sent}}</td><td class="num">{{.Delivered}}</td></tr>
{{end}}</table>{{if .LostMore}}<p>… and {{.LostMore}} more in report.json.</p>{{end}}{{else}}<p>None.</p>{{end}}
<h2>Duplicated records ({{len .R.DuplicatedRecords}})</h2>
{{if .DupShown}}<table><tr><th>id</th><th>key</th><th>seq</th><th>produced to</th><th>sent</th><th>delivered</th></tr>
{{range .DupShown}}<tr><td><code>{{.ID}}</code></td><td>{{.Key}}</td><td class="num">{{.Seq}}</td><td>{{.Cluster}}</td><td>{{ts .Sent}}</td><td class="num">{{.Delivered}}</td></tr>
{{end}}</table>{{if .DupMore}}<p>… and {{.DupMore}} more in report.json.</p>{{end}}{{else}}<p>None.</p>{{end}}
{{if .R.ReorderExamples}}<h2>Reordered (examples)</h2><ul>{{range .R.ReorderExamples}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .R.ProducerErrors}}<h2>Producer errors (first {{len .R.ProducerErrors}})</h2><ul>{{range .R.ProducerErrors}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
</body></html>
`))
