package jepsen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// Summary is results.json: the run's verdict and figures.
type Summary struct {
	Seed     int64   `json:"seed"`
	Profile  string  `json:"profile"` // "quick", "full", ...
	Nodes    int     `json:"nodes"`
	Duration float64 `json:"duration_s"` // workload phase, seconds
	// Broken lists the self-test switches that were on (bugs planted on
	// purpose, which the checkers must catch).
	Broken []string `json:"broken,omitempty"`
	Valid  bool     `json:"valid"`
	// Ops counts operations by outcome ("ok", "fail", "unknown", always
	// present) plus "total".
	Ops           map[string]int `json:"ops"`
	OpsByWorkload map[string]int `json:"ops_by_workload"`
	// WritesByDurability counts the writes that asked for a durability,
	// by durability ("sync", "replicated").
	WritesByDurability map[string]int `json:"writes_by_durability,omitempty"`
	// NearHits counts the reads a client's near cache served (a
	// near-cache run's; the near-cache checker has them by workload).
	NearHits int `json:"near_hits,omitempty"`
	// Faults counts injected faults by kind.
	Faults map[string]int `json:"faults"`
	// Anomalies counts anomalies by kind, over all checkers.
	Anomalies map[string]int `json:"anomalies"`
	Checkers  []Result       `json:"checkers"`
	// Reproduce is the command line that reruns this run.
	Reproduce string `json:"reproduce"`
}

// Report files, written into the run's directory.
const (
	ResultsFile         = "results.json"
	IndexFile           = "index.html"
	LinearizabilityFile = "linearizability.html"
	historyFile         = "history.jsonl" // linked from the page if present
)

const (
	// unlistedAnomalyKind counts anomalies a checker did not list, when
	// those it listed are of several kinds.
	unlistedAnomalyKind = "unlisted"
	// maxLatencyPoints caps the points of the latency plot.
	maxLatencyPoints = 20000
	// anomalyDetailsByKind is how many anomalies of a kind the page details.
	anomalyDetailsByKind = 3
)

// Summarize fills Ops, OpsByWorkload, WritesByDurability, NearHits,
// Faults, Anomalies, Valid and Checkers from the history and the checkers' results; the caller sets the
// rest. Valid means at least one checker ran and every checker found the
// run valid.
//
// Anomalies counts the anomalies the checkers listed, by kind. A checker
// lists at most maxAnomalies and counts the whole in its
// Figures["anomalies_total"]; the ones it left out are counted under the
// kind of those it listed when they are all of one kind, else under
// "unlisted".
func Summarize(s *Summary, ops []Op, faults []Fault, results []Result) {
	s.Ops = map[string]int{string(OK): 0, string(Fail): 0, string(Unknown): 0}
	s.OpsByWorkload = make(map[string]int)
	s.WritesByDurability = nil
	s.NearHits = 0
	for _, op := range ops {
		s.Ops[string(op.Outcome)]++
		if nearServed(&op) {
			s.NearHits++
		}
		s.OpsByWorkload[op.Workload]++
		if op.Durability != "" {
			if s.WritesByDurability == nil {
				s.WritesByDurability = make(map[string]int)
			}
			s.WritesByDurability[op.Durability]++
		}
	}
	s.Ops["total"] = len(ops)

	s.Faults = make(map[string]int)
	for _, f := range faults {
		s.Faults[f.Kind]++
	}

	s.Anomalies = make(map[string]int)
	s.Valid = len(results) > 0
	for _, r := range results {
		s.Valid = s.Valid && r.Valid
		kinds := make(map[string]bool)
		for _, a := range r.Anomalies {
			s.Anomalies[a.Kind]++
			kinds[a.Kind] = true
		}
		if extra := anomalyCount(r) - len(r.Anomalies); extra > 0 {
			kind := unlistedAnomalyKind
			if len(kinds) == 1 {
				kind = r.Anomalies[0].Kind
			}
			s.Anomalies[kind] += extra
		}
	}
	s.Checkers = results
}

// anomalyCount is how many anomalies a checker found, listed or not.
func anomalyCount(r Result) int {
	if t, ok := r.Figures["anomalies_total"]; ok && int(t) > len(r.Anomalies) {
		return int(t)
	}
	return len(r.Anomalies)
}

// WriteReport writes results.json, index.html and, if lin holds a partial
// linearization, linearizability.html into dir (created if missing). model
// describes the operations in lin, as the linearizability checker used it.
//
// results.json leaves out checker figures that are not finite numbers
// (JSON has no NaN); index.html shows them.
func WriteReport(dir string, s Summary, ops []Op, faults []Fault, lin porcupine.LinearizationInfo, model porcupine.Model) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("jepsen: report: %w", err)
	}
	if err := writeResults(filepath.Join(dir, ResultsFile), s); err != nil {
		return err
	}
	// A failed linearizability.html still leaves index.html written.
	var linErr error
	linWritten := false
	if hasLinearizations(&lin) {
		linErr = writeLinearizability(filepath.Join(dir, LinearizabilityFile), lin, model, ops, faults)
		linWritten = linErr == nil
	}
	_, statErr := os.Stat(filepath.Join(dir, historyFile))
	p := buildPage(s, ops, faults)
	p.LinLink = linWritten
	p.HistoryLink = statErr == nil
	return errors.Join(linErr, writeIndex(filepath.Join(dir, IndexFile), p))
}

func writeResults(path string, s Summary) error {
	checkers := make([]Result, len(s.Checkers))
	for i, r := range s.Checkers {
		var figs map[string]float64
		for k, v := range r.Figures {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			if figs == nil {
				figs = make(map[string]float64)
			}
			figs[k] = v
		}
		r.Figures = figs
		checkers[i] = r
	}
	s.Checkers = checkers
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // details quote values like <nil>; keep them legible
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("jepsen: results: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("jepsen: results: %w", err)
	}
	return nil
}

// hasLinearizations reports whether the checker found any partial
// linearization; without one there is nothing worth drawing (no
// linearizable operations were checked).
func hasLinearizations(lin *porcupine.LinearizationInfo) bool {
	for _, partition := range lin.PartialLinearizations() {
		if len(partition) > 0 {
			return true
		}
	}
	return false
}

// writeLinearizability draws porcupine's visualization of lin, with the
// faults as annotations on "nemesis" rows (one row per lane of
// overlapping faults).
// porcupine panics when model does not replay lin; that comes back as an
// error, with no file left behind.
func writeLinearizability(path string, lin porcupine.LinearizationInfo, model porcupine.Model, ops []Op, faults []Fault) (err error) {
	lin.AddAnnotations(faultAnnotations(ops, faults))
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("jepsen: linearizability: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			f.Close()
			os.Remove(path)
			err = fmt.Errorf("jepsen: linearizability: visualize: %v", p)
		}
	}()
	err = porcupine.Visualize(model, lin, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("jepsen: linearizability: %w", err)
	}
	return nil
}

// faultAnnotations turns faults into porcupine annotations, on the ops'
// clock. A fault never healed ends at the last operation's end.
func faultAnnotations(ops []Op, faults []Fault) []porcupine.Annotation {
	var last int64
	for _, op := range ops {
		last = max(last, op.End)
	}
	colors := kindColors(faults)
	lanes := faultLanes(faults, last)
	anns := make([]porcupine.Annotation, 0, len(faults))
	for i, f := range faults {
		end := f.End
		if end == 0 {
			end = max(last, f.Start)
		}
		tag := "nemesis"
		if lanes[i] > 0 {
			tag = fmt.Sprintf("nemesis %d", lanes[i]+1)
		}
		details := f.Detail
		if len(f.Targets) > 0 {
			details = strings.TrimSpace(details + " (targets: " + strings.Join(f.Targets, ", ") + ")")
		}
		anns = append(anns, porcupine.Annotation{
			Tag:             tag,
			Start:           f.Start,
			End:             end,
			Description:     f.Kind,
			Details:         details,
			BackgroundColor: tint(colors[f.Kind], 0.65),
		})
	}
	return anns
}

// faultLanes assigns each fault a lane so that faults sharing a lane do
// not overlap in time; unhealed faults run until end.
func faultLanes(faults []Fault, end int64) []int {
	order := make([]int, len(faults))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return faults[order[a]].Start < faults[order[b]].Start })
	lanes := make([]int, len(faults))
	var busyUntil []int64
	for _, i := range order {
		f := faults[i]
		stop := f.End
		if stop == 0 {
			stop = max(end, f.Start)
		}
		lane := 0
		for lane < len(busyUntil) && busyUntil[lane] > f.Start {
			lane++
		}
		if lane == len(busyUntil) {
			busyUntil = append(busyUntil, 0)
		}
		busyUntil[lane] = stop
		lanes[i] = lane
	}
	return lanes
}

// kindColors gives each fault kind a colour, by sorted kind.
func kindColors(faults []Fault) map[string]string {
	var kinds []string
	seen := make(map[string]bool)
	for _, f := range faults {
		if !seen[f.Kind] {
			seen[f.Kind] = true
			kinds = append(kinds, f.Kind)
		}
	}
	sort.Strings(kinds)
	// The palette avoids the outcome colours.
	palette := []string{
		"#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf",
		"#bcbd22", "#7f7f7f", "#393b79", "#637939", "#843c39",
	}
	colors := make(map[string]string, len(kinds))
	for i, k := range kinds {
		colors[k] = palette[i%len(palette)]
	}
	return colors
}

// tint mixes a "#rrggbb" colour with white; w is the share of white.
func tint(hex string, w float64) string {
	var r, g, b int
	if _, err := fmt.Sscanf(hex, "#%02x%02x%02x", &r, &g, &b); err != nil {
		return hex
	}
	mix := func(c int) int { return int(math.Round(float64(c)*(1-w) + 255*w)) }
	return fmt.Sprintf("#%02x%02x%02x", mix(r), mix(g), mix(b))
}

// page is what index.html shows.
type page struct {
	S           Summary
	LinLink     bool
	HistoryLink bool
	Checkers    []checkerRow
	Anomalies   []anomalyRow
	Workloads   []workloadRow // outcomes by workload, then of all
	Durability  []workloadRow // writes' outcomes by durability, then of all
	FaultKinds  []faultKindRow
	Faults      []faultRow
	Latency     template.HTML
	Throughput  template.HTML
	Legend      legend
	Sampled     string // how many ops the latency plot shows
}

type checkerRow struct {
	Name      string
	Valid     bool
	Ops       int
	Anomalies int
	Figures   string
	Note      string
}

type anomalyRow struct {
	Kind     string
	Count    int
	Checkers string
	Details  []string
}

type workloadRow struct {
	Workload                 string
	Total, OK, Fail, Unknown int
}

type faultKindRow struct {
	Kind, Color string
	Count       int
	Seconds     string // total time in the fault
}

type faultRow struct {
	Kind, Color, Targets, Detail string
	Start, End                   string
}

type legend struct {
	Outcomes []legendItem
	Shapes   []legendItem // F
	Kinds    []legendItem // fault kinds
}

type legendItem struct {
	Label, Color string
	Swatch       template.HTML
}

func buildPage(s Summary, ops []Op, faults []Fault) page {
	p := page{S: s}
	for _, r := range s.Checkers {
		p.Checkers = append(p.Checkers, checkerRow{
			Name:      r.Checker,
			Valid:     r.Valid,
			Ops:       r.Ops,
			Anomalies: anomalyCount(r),
			Figures:   formatFigures(r.Figures),
			Note:      r.Note,
		})
	}
	p.Anomalies = anomalyRows(s)
	p.Workloads = outcomeRows(ops, func(op Op) string { return op.Workload })
	p.Durability = outcomeRows(ops, func(op Op) string { return op.Durability })
	if len(p.Durability) == 1 {
		p.Durability = nil // no write asked for a durability
	}

	colors := kindColors(faults)
	tl := newTimeline(ops, faults)
	kindNS := make(map[string]int64)
	for _, f := range faults {
		kindNS[f.Kind] += tl.faultEnd(f) - f.Start
	}
	for _, k := range sortedKeys(s.Faults) {
		p.FaultKinds = append(p.FaultKinds, faultKindRow{
			Kind: k, Color: colors[k], Count: s.Faults[k], Seconds: seconds(kindNS[k]),
		})
		p.Legend.Kinds = append(p.Legend.Kinds, legendItem{Label: k, Color: colors[k]})
	}
	sorted := append([]Fault(nil), faults...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Start < sorted[j].Start })
	for _, f := range sorted {
		end := "not healed"
		if f.End != 0 {
			end = seconds(f.End)
		}
		p.Faults = append(p.Faults, faultRow{
			Kind: f.Kind, Color: colors[f.Kind], Targets: strings.Join(f.Targets, ", "),
			Detail: f.Detail, Start: seconds(f.Start), End: end,
		})
	}

	for _, o := range outcomes() {
		p.Legend.Outcomes = append(p.Legend.Outcomes, legendItem{Label: string(o), Color: outcomeColor(o)})
	}
	for _, fn := range functionsIn(ops) {
		p.Legend.Shapes = append(p.Legend.Shapes, legendItem{Label: fn, Swatch: template.HTML(
			`<svg width="14" height="14" viewBox="-4.5 -4.5 9 9">` + markerSVG(fn) + `</svg>`)})
	}

	lat, shown := latencyPlot(tl, s.Checkers, ops, faults, colors)
	p.Latency = template.HTML(lat)
	p.Throughput = template.HTML(throughputPlot(tl, ops, faults, colors))
	if shown < len(ops) {
		p.Sampled = fmt.Sprintf("%d of %d operations shown: every fail and unknown first, ok sampled evenly.", shown, len(ops))
	} else {
		p.Sampled = fmt.Sprintf("All %d operations shown.", len(ops))
	}
	return p
}

func formatFigures(figs map[string]float64) string {
	parts := make([]string, 0, len(figs))
	for _, k := range sortedKeys(figs) {
		parts = append(parts, fmt.Sprintf("%s=%.4g", k, figs[k]))
	}
	return strings.Join(parts, "  ")
}

// anomalyRows lists anomaly kinds by count, with the first few details of
// each, in the checkers' order.
func anomalyRows(s Summary) []anomalyRow {
	byKind := make(map[string]*anomalyRow)
	checkers := make(map[string]map[string]bool)
	for _, r := range s.Checkers {
		for _, a := range r.Anomalies {
			row := byKind[a.Kind]
			if row == nil {
				row = &anomalyRow{Kind: a.Kind}
				byKind[a.Kind] = row
				checkers[a.Kind] = make(map[string]bool)
			}
			if !checkers[a.Kind][r.Checker] {
				checkers[a.Kind][r.Checker] = true
				row.Checkers = strings.TrimPrefix(row.Checkers+", "+r.Checker, ", ")
			}
			if len(row.Details) < anomalyDetailsByKind {
				d := a.Detail
				if a.At != 0 {
					d = "at " + seconds(a.At) + " s: " + d
				}
				if a.Key != "" {
					d = "key " + a.Key + ", " + d
				}
				row.Details = append(row.Details, d)
			}
		}
	}
	rows := make([]anomalyRow, 0, len(s.Anomalies))
	for kind, n := range s.Anomalies {
		row := anomalyRow{Kind: kind}
		if r := byKind[kind]; r != nil {
			row = *r
		}
		row.Count = n
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Count != rows[j].Count {
			return rows[i].Count > rows[j].Count
		}
		return rows[i].Kind < rows[j].Kind
	})
	return rows
}

// outcomeRows counts the outcomes of ops by group, then of all; ops whose
// group is "" are left out.
func outcomeRows(ops []Op, group func(Op) string) []workloadRow {
	by := make(map[string]*workloadRow)
	total := workloadRow{Workload: "all"}
	for _, op := range ops {
		g := group(op)
		if g == "" {
			continue
		}
		r := by[g]
		if r == nil {
			r = &workloadRow{Workload: g}
			by[g] = r
		}
		for _, w := range []*workloadRow{r, &total} {
			w.Total++
			switch op.Outcome {
			case OK:
				w.OK++
			case Fail:
				w.Fail++
			case Unknown:
				w.Unknown++
			}
		}
	}
	rows := make([]workloadRow, 0, len(by)+1)
	for _, k := range sortedKeys(by) {
		rows = append(rows, *by[k])
	}
	return append(rows, total)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// seconds formats a time on the run's clock.
func seconds(ns int64) string { return fmt.Sprintf("%.3f", float64(ns)/1e9) }

func writeIndex(path string, p page) error {
	tmpl, err := template.New("index").Parse(indexHTML)
	if err != nil {
		return fmt.Errorf("jepsen: index: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("jepsen: index: %w", err)
	}
	err = tmpl.Execute(f, p)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("jepsen: index: %w", err)
	}
	return nil
}

const indexHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{if .S.Valid}}VALID{{else}}INVALID{{end}} · elcache jepsen · seed {{.S.Seed}}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0 auto; max-width: 1120px; padding: 16px 24px 48px; }
h1 { font-size: 56px; margin: 8px 0 4px; letter-spacing: 2px; }
h1.valid { color: #1a7f37; } h1.invalid { color: #c62828; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta span { margin-right: 18px; } .meta b { color: #555; font-weight: 600; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 8px 10px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
table { border-collapse: collapse; margin: 4px 0 8px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.ok { color: #1a7f37; font-weight: 600; white-space: nowrap; } td.bad, .bad { color: #c62828; font-weight: 600; white-space: nowrap; }
.fig { font-family: ui-monospace, monospace; font-size: 12px; }
.details { margin: 0; padding-left: 18px; font-size: 13px; }
.sw { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
.legend { font-size: 13px; margin: 4px 0; } .legend > span { margin-right: 14px; white-space: nowrap; }
.legend svg { vertical-align: -1px; margin-right: 4px; }
.banner { padding: 8px 12px; border-radius: 4px; background: #fff4e5; border: 1px solid #f0b35b; margin: 8px 0; }
.banner.missed { background: #fdecea; border-color: #e57373; }
.links a { margin-right: 16px; }
.muted { color: #777; font-size: 13px; }
svg.plot { display: block; background: #fff; }
svg.plot text { fill: #444; }
</style>
</head>
<body>
<h1 class="{{if .S.Valid}}valid{{else}}invalid{{end}}">{{if .S.Valid}}VALID{{else}}INVALID{{end}}</h1>
<div class="meta">
<span><b>seed</b> {{.S.Seed}}</span>
<span><b>profile</b> {{.S.Profile}}</span>
<span><b>nodes</b> {{.S.Nodes}}</span>
<span><b>duration</b> {{printf "%.1f" .S.Duration}} s</span>
<span><b>ops</b> {{index .S.Ops "total"}}</span>
{{if .S.NearHits}}<span><b>near-cache hits</b> {{.S.NearHits}}</span>{{end}}
<span><b>faults</b> {{len .Faults}}</span>
</div>
{{if .S.Broken}}<div class="banner{{if .S.Valid}} missed{{end}}">Self-test: broken on purpose: <b>{{range $i, $b := .S.Broken}}{{if $i}}, {{end}}{{$b}}{{end}}</b>.
{{if .S.Valid}}The checkers should have found this run INVALID and did not: they missed the planted bug.{{else}}The checkers are expected to find this run INVALID, and did.{{end}}</div>{{end}}
<div>Reproduce:</div>
<pre>{{.S.Reproduce}}</pre>
<div class="links">
{{if .LinLink}}<a href="linearizability.html">linearizability.html</a> (porcupine's view of the linearizability check, faults on the nemesis rows){{end}}
<a href="results.json">results.json</a>
{{if .HistoryLink}}<a href="history.jsonl">history.jsonl</a>{{end}}
</div>

<h2>Checkers</h2>
{{if .Checkers}}<table>
<tr><th>checker</th><th>valid</th><th>ops</th><th>anomalies</th><th>figures</th><th>note</th></tr>
{{range .Checkers}}<tr><td>{{.Name}}</td>{{if .Valid}}<td class="ok">✓ valid</td>{{else}}<td class="bad">✗ invalid</td>{{end}}<td class="num">{{.Ops}}</td><td class="num">{{.Anomalies}}</td><td class="fig">{{.Figures}}</td><td>{{.Note}}</td></tr>
{{end}}</table>{{else}}<p class="bad">No checker ran: the run cannot be called valid.</p>{{end}}

<h2>Anomalies</h2>
{{if .Anomalies}}<table>
<tr><th>kind</th><th>count</th><th>found by</th><th>first ones</th></tr>
{{range .Anomalies}}<tr><td>{{.Kind}}</td><td class="num">{{.Count}}</td><td>{{.Checkers}}</td><td>{{if .Details}}<ul class="details">{{range .Details}}<li>{{.}}</li>{{end}}</ul>{{else}}<span class="muted">not listed</span>{{end}}</td></tr>
{{end}}</table>{{else}}<p class="muted">None.</p>{{end}}

<h2>Operations</h2>
<table>
<tr><th>workload</th><th>total</th><th>ok</th><th>fail</th><th>unknown</th></tr>
{{range .Workloads}}<tr><td>{{.Workload}}</td><td class="num">{{.Total}}</td><td class="num">{{.OK}}</td><td class="num">{{.Fail}}</td><td class="num">{{.Unknown}}</td></tr>
{{end}}</table>
{{if .Durability}}<table>
<tr><th>writes at durability</th><th>total</th><th>ok</th><th>fail</th><th>unknown</th></tr>
{{range .Durability}}<tr><td>{{.Workload}}</td><td class="num">{{.Total}}</td><td class="num">{{.OK}}</td><td class="num">{{.Fail}}</td><td class="num">{{.Unknown}}</td></tr>
{{end}}</table>{{end}}

<h2>Latency</h2>
<div class="legend">
{{range .Legend.Outcomes}}<span><i class="sw" style="background: {{.Color}}"></i>{{.Label}}</span>{{end}}
{{range .Legend.Shapes}}<span>{{.Swatch}}{{.Label}}</span>{{end}}
{{range .Legend.Kinds}}<span><i class="sw" style="background: {{.Color}}; opacity: .4"></i>{{.Label}}</span>{{end}}
</div>
{{.Latency}}
<p class="muted">Each operation at its start time (s), height its latency (ms, log scale). {{.Sampled}} Shaded bands are faults; red marks above the plot are anomalies (hover for details).</p>

<h2>Throughput</h2>
<div class="legend">
{{range .Legend.Outcomes}}<span><i class="sw" style="background: {{.Color}}"></i>{{.Label}}</span>{{end}}
<span><i class="sw" style="background: #bbb"></i>total</span>
{{range .Legend.Kinds}}<span><i class="sw" style="background: {{.Color}}; opacity: .4"></i>{{.Label}}</span>{{end}}
</div>
{{.Throughput}}
<p class="muted">Operations completed per second, by outcome.</p>

<h2>Faults</h2>
{{if .Faults}}<table>
<tr><th>kind</th><th>count</th><th>time in fault (s)</th></tr>
{{range .FaultKinds}}<tr><td><i class="sw" style="background: {{.Color}}"></i>{{.Kind}}</td><td class="num">{{.Count}}</td><td class="num">{{.Seconds}}</td></tr>
{{end}}</table>
<table>
<tr><th>kind</th><th>targets</th><th>detail</th><th>start (s)</th><th>end (s)</th></tr>
{{range .Faults}}<tr><td><i class="sw" style="background: {{.Color}}"></i>{{.Kind}}</td><td>{{.Targets}}</td><td>{{.Detail}}</td><td class="num">{{.Start}}</td><td class="num">{{.End}}</td></tr>
{{end}}</table>{{else}}<p class="muted">No faults injected.</p>{{end}}
</body>
</html>
`
