package bench

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// The HTML report: one self-contained page (inline CSS and SVG, no
// scripts, nothing fetched) that opens offline and can be attached to an
// issue. It holds the machine, a table of every result, the throughput of
// each target per workload, and the read and update latencies (p50 and
// p99, log scale).

// palette colours the targets, in the order they first appear; it is
// readable on white and in grey scale.
var palette = []string{
	"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
	"#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
}

// machineKeys are shown first, in this order; other keys follow sorted.
var machineKeys = []string{"cpu", "cores", "go", "os", "date", "commit"}

// WriteHTMLReport writes the report of results to path.
func WriteHTMLReport(path string, machine map[string]string, results []Result) error {
	var b bytes.Buffer
	renderReport(&b, machine, results)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// renderReport writes the page to w; the buffer it is given cannot fail.
func renderReport(w *bytes.Buffer, machine map[string]string, results []Result) {
	colors := targetColors(results)
	fmt.Fprint(w, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>elcache benchmark</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}dd{margin:0}
svg{font-size:12px;display:block;margin:.5em 0}
.note{color:#666;font-size:.85em}
</style></head><body>
<h1>elcache benchmark</h1>
`)
	writeMachine(w, machine)
	if len(results) == 0 {
		fmt.Fprint(w, "<p>No results.</p>\n</body></html>\n")
		return
	}
	fmt.Fprint(w, "<h2>Throughput</h2>\n<p class=\"note\">Successful operations per second in the measured phase; one group per workload, one bar per target.</p>\n")
	writeThroughputChart(w, results, colors)
	for _, op := range []string{"read", "update"} {
		fmt.Fprintf(w, "<h2>Latency: %ss</h2>\n", op)
		fmt.Fprint(w, "<p class=\"note\">p50 (filled dot) to p99 (ring), log scale. Closed loop: latency is service time under the run's concurrency.</p>\n")
		writeLatencyChart(w, results, op, colors)
	}
	fmt.Fprint(w, "<h2>All results</h2>\n")
	writeTable(w, results)
	fmt.Fprint(w, "</body></html>\n")
}

func writeMachine(w io.Writer, machine map[string]string) {
	if len(machine) == 0 {
		return
	}
	var keys []string
	for _, k := range machineKeys {
		if _, ok := machine[k]; ok {
			keys = append(keys, k)
		}
	}
	var rest []string
	for k := range machine {
		if !slices.Contains(machineKeys, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	fmt.Fprint(w, "<dl>\n")
	for _, k := range append(keys, rest...) {
		fmt.Fprintf(w, "<dt>%s</dt><dd>%s</dd>\n", esc(k), esc(machine[k]))
	}
	fmt.Fprint(w, "</dl>\n")
}

// targetColors gives each target name a colour, in order of appearance.
func targetColors(results []Result) map[string]string {
	colors := map[string]string{}
	for _, r := range results {
		if _, ok := colors[r.Target]; !ok {
			colors[r.Target] = palette[len(colors)%len(palette)]
		}
	}
	return colors
}

// workloads returns the workloads of results in order of appearance.
func workloads(results []Result) []string {
	var out []string
	for _, r := range results {
		if !slices.Contains(out, r.Workload) {
			out = append(out, r.Workload)
		}
	}
	return out
}

// workloadLabel describes a YCSB workload letter.
func workloadLabel(w string) string {
	switch w {
	case "A":
		return "A: 50% reads, 50% updates"
	case "B":
		return "B: 95% reads, 5% updates"
	case "C":
		return "C: reads only"
	case "W":
		return "W: 95% updates, 5% reads"
	}
	return w
}

// Chart geometry, in SVG user units (pixels).
const (
	chartWidth  = 960
	labelWidth  = 260 // left column with the target names
	valueWidth  = 110 // right margin for values
	barHeight   = 18
	barGap      = 4
	groupHeader = 24
)

// writeThroughputChart draws horizontal bars, grouped by workload, each
// group on its own linear scale from zero.
func writeThroughputChart(w io.Writer, results []Result, colors map[string]string) {
	wls := workloads(results)
	height := 0
	for _, wl := range wls {
		height += groupHeader + countWorkload(results, wl)*(barHeight+barGap) + 10
	}
	plot := float64(chartWidth - labelWidth - valueWidth)
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="throughput per target">`+"\n",
		chartWidth, height, chartWidth, height)
	y := 0
	for _, wl := range wls {
		fmt.Fprintf(w, `<text x="0" y="%d" font-weight="bold">%s</text>`+"\n", y+16, esc(workloadLabel(wl)))
		y += groupHeader
		top := 0.0
		for _, r := range results {
			if r.Workload == wl {
				top = max(top, r.Throughput)
			}
		}
		for _, r := range results {
			if r.Workload != wl {
				continue
			}
			bw := 0.0
			if top > 0 {
				bw = plot * r.Throughput / top
			}
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelWidth-8, y+barHeight-5, esc(r.Target))
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s: %s ops/s</title></rect>`,
				labelWidth, y, bw, barHeight, colors[r.Target], esc(r.Target), esc(wl), FormatOps(r.Throughput))
			fmt.Fprintf(w, `<text x="%.1f" y="%d">%s ops/s</text>`+"\n", float64(labelWidth)+bw+6, y+barHeight-5, FormatOps(r.Throughput))
			y += barHeight + barGap
		}
		y += 10
	}
	fmt.Fprint(w, "</svg>\n")
}

func countWorkload(results []Result, wl string) int {
	n := 0
	for _, r := range results {
		if r.Workload == wl {
			n++
		}
	}
	return n
}

// writeLatencyChart draws, for each result with operations of kind op, a
// line from p50 to p99 on a shared log axis in microseconds.
func writeLatencyChart(w io.Writer, results []Result, op string, colors map[string]string) {
	var rows []Result
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range results {
		s, ok := r.Ops[op]
		if !ok || s.Count == 0 {
			continue
		}
		rows = append(rows, r)
		for _, v := range []float64{s.P50, s.P99} {
			if v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if len(rows) == 0 || math.IsInf(lo, 0) {
		fmt.Fprintf(w, "<p>No %s operations.</p>\n", esc(op))
		return
	}
	// The axis spans whole decades around the data.
	dLo, dHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dHi <= dLo {
		dHi = dLo + 1
	}
	plot := float64(chartWidth - labelWidth - valueWidth)
	x := func(us float64) float64 {
		if us <= 0 {
			us = math.Pow(10, dLo)
		}
		return float64(labelWidth) + plot*(math.Log10(us)-dLo)/(dHi-dLo)
	}
	axis := 20
	height := axis + len(rows)*(barHeight+barGap) + 10
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s latency">`+"\n",
		chartWidth, height, chartWidth, height, esc(op))
	// Decade grid lines with their labels, plus 2x and 5x minor lines.
	for d := dLo; d <= dHi; d++ {
		v := math.Pow(10, d)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#bbb"/>`, x(v), axis-4, x(v), height)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", x(v), axis-8, FormatMicros(v))
		if d < dHi {
			for _, m := range []float64{2, 5} {
				fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`, x(m*v), axis, x(m*v), height)
			}
		}
	}
	y := axis + 2
	for _, r := range rows {
		s := r.Ops[op]
		c := colors[r.Target]
		cy := y + barHeight/2
		label := r.Target + " (" + r.Workload + ")"
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelWidth-8, y+barHeight-5, esc(label))
		fmt.Fprintf(w, `<g><title>%s: p50 %s, p99 %s, p99.9 %s</title>`, esc(label), FormatMicros(s.P50), FormatMicros(s.P99), FormatMicros(s.P999))
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="3"/>`, x(s.P50), cy, x(s.P99), cy, c)
		fmt.Fprintf(w, `<circle cx="%.1f" cy="%d" r="5" fill="%s"/>`, x(s.P50), cy, c)
		fmt.Fprintf(w, `<circle cx="%.1f" cy="%d" r="5" fill="white" stroke="%s" stroke-width="2"/></g>`, x(s.P99), cy, c)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" fill="#555">%s / %s</text>`+"\n", x(s.P99)+9, y+barHeight-5, FormatMicros(s.P50), FormatMicros(s.P99))
		y += barHeight + barGap
	}
	fmt.Fprint(w, "</svg>\n")
}

// writeTable lists every result: throughput and each operation's
// quantiles and errors.
func writeTable(w io.Writer, results []Result) {
	fmt.Fprint(w, `<table><tr><th class="l">target</th><th>workload</th><th>dist</th><th>clients</th><th>ops/s</th>`+
		`<th>read p50</th><th>read p99</th><th>read p99.9</th><th>update p50</th><th>update p99</th><th>update p99.9</th><th>errors</th></tr>`+"\n")
	for _, r := range results {
		rd, up := r.Ops["read"], r.Ops["update"]
		fmt.Fprintf(w, `<tr><td class="l">%s</td><td>%s</td><td>%s</td><td>%d</td><td>%s</td>`,
			esc(r.Target), esc(r.Workload), esc(r.Distribution), r.Clients, FormatOps(r.Throughput))
		for _, s := range []OpStats{rd, up} {
			for _, v := range []float64{s.P50, s.P99, s.P999} {
				if s.Count == 0 {
					fmt.Fprint(w, "<td>-</td>")
				} else {
					fmt.Fprintf(w, "<td>%s</td>", FormatMicros(v))
				}
			}
		}
		fmt.Fprintf(w, "<td>%d</td></tr>\n", rd.Errors+up.Errors)
	}
	fmt.Fprint(w, "</table>\n")
}

// WriteMarkdownTable writes results as a Markdown table, for an issue
// or a commit message.
func WriteMarkdownTable(w io.Writer, results []Result) error {
	var b bytes.Buffer
	b.WriteString("| target | workload | clients | ops/s | read p50 | read p99 | update p50 | update p99 | errors |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range results {
		rd, up := r.Ops["read"], r.Ops["update"]
		q := func(s OpStats, v float64) string {
			if s.Count == 0 {
				return "-"
			}
			return FormatMicros(v)
		}
		fmt.Fprintf(&b, "| %s | %s %s | %d | %s | %s | %s | %s | %s | %d |\n",
			r.Target, r.Workload, r.Distribution, r.Clients, FormatOps(r.Throughput),
			q(rd, rd.P50), q(rd, rd.P99), q(up, up.P50), q(up, up.P99), rd.Errors+up.Errors)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// FormatOps formats a throughput with a thousands separator.
func FormatOps(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// FormatMicros formats a latency given in microseconds, to three
// significant digits: 0.5µs, 270µs, 1.55ms, 12.2ms, 2s.
func FormatMicros(us float64) string {
	switch {
	case us >= 999.5e3:
		return sig(us/1e6) + "s"
	case us >= 999.5:
		return sig(us/1e3) + "ms"
	default:
		return sig(us) + "µs"
	}
}

// sig formats v >= 0 to three significant digits, without trailing zeros.
func sig(v float64) string {
	var s string
	switch {
	case v >= 99.95:
		s = fmt.Sprintf("%.0f", v)
	case v >= 9.995:
		s = fmt.Sprintf("%.1f", v)
	default:
		s = fmt.Sprintf("%.2f", v)
	}
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func esc(s string) string { return html.EscapeString(s) }
