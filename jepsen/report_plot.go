package jepsen

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"
)

// The plots of index.html: inline SVG over the run's time axis, drawn by
// hand so that the page works offline.

// Plot geometry, in SVG user units.
const (
	plotWidth    = 1060
	plotLeft     = 64
	plotRight    = 14
	plotTop      = 18 // room above the frame for the anomaly marks
	plotBottom   = 32
	latencyH     = 340
	throughputH  = 240
	pointOpacity = ".55"
)

// timeline is the run's time axis, from 0 to end nanoseconds.
type timeline struct{ end int64 }

// newTimeline spans the history: operations and faults.
func newTimeline(ops []Op, faults []Fault) timeline {
	var end int64
	for _, op := range ops {
		end = max(end, op.Start, op.End)
	}
	for _, f := range faults {
		end = max(end, f.Start, f.End)
	}
	if end <= 0 {
		end = 1e9
	}
	return timeline{end: end}
}

// faultEnd is when a fault ended; an unhealed one lasts to the end.
func (t timeline) faultEnd(f Fault) int64 {
	if f.End == 0 {
		return max(t.end, f.Start)
	}
	return f.End
}

// frame maps the time axis and a value axis onto a plot of height h.
type frame struct {
	t timeline
	h float64
}

func (f frame) x(ns int64) float64 {
	return plotLeft + float64(ns)/float64(f.t.end)*(plotWidth-plotLeft-plotRight)
}
func (f frame) top() float64    { return plotTop }
func (f frame) bottom() float64 { return f.h - plotBottom }

// header opens the SVG and draws the time grid and axis.
func (f frame) header(b *strings.Builder, label string) {
	fmt.Fprintf(b, `<svg class="plot" width="100%%" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="%s" font-family="system-ui, sans-serif" font-size="11">`,
		plotWidth, int(f.h), template.HTMLEscapeString(label))
	endS := float64(f.t.end) / 1e9
	step := niceStep(endS / 10)
	for s := 0.0; s <= endS+step/1e6; s += step {
		x := f.x(int64(s * 1e9))
		fmt.Fprintf(b, `<line stroke="#e3e3e3" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x, f.top(), x, f.bottom())
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x, f.bottom()+14, trimFloat(s))
	}
	fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">time (s)</text>`, plotWidth-plotRight, f.h-3)
}

// axes draws the frame's border and the value axis label, last, so that
// they sit on top.
func (f frame) axes(b *strings.Builder, ylabel string) {
	fmt.Fprintf(b, `<rect stroke="#888" fill="none" x="%d" y="%.1f" width="%d" height="%.1f"/>`,
		plotLeft, f.top(), plotWidth-plotLeft-plotRight, f.bottom()-f.top())
	fmt.Fprintf(b, `<text transform="translate(12 %.1f) rotate(-90)" text-anchor="middle">%s</text>`,
		(f.top()+f.bottom())/2, template.HTMLEscapeString(ylabel))
	b.WriteString(`</svg>`)
}

// bands shades every fault window, labelled with its kind; labels that
// would collide go on separate lines.
func (f frame) bands(b *strings.Builder, faults []Fault, colors map[string]string) {
	rows := f.labelRows(faults)
	for i, ft := range faults {
		x0, x1 := f.x(ft.Start), f.x(f.t.faultEnd(ft))
		c := colors[ft.Kind]
		title := fmt.Sprintf("%s %s–%s s %s %s", ft.Kind, seconds(ft.Start), seconds(f.t.faultEnd(ft)),
			strings.Join(ft.Targets, ","), ft.Detail)
		fmt.Fprintf(b, `<g><title>%s</title><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity=".15"/>`,
			template.HTMLEscapeString(title), x0, f.top(), max(x1-x0, 1), f.bottom()-f.top(), c)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" style="fill: %s; font-weight: 600">%s</text></g>`,
			x0+3, f.top()+11+12*float64(rows[i]), c, template.HTMLEscapeString(ft.Kind))
	}
}

// labelRows puts each fault's label on the first line where it clears the
// labels before it.
func (f frame) labelRows(faults []Fault) []int {
	const charWidth = 7 // bold 11px text, roughly
	order := make([]int, len(faults))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return faults[order[a]].Start < faults[order[b]].Start })
	rows := make([]int, len(faults))
	var rowEnd []float64 // where the last label on each line ends
	for _, i := range order {
		x := f.x(faults[i].Start) + 3
		row := 0
		for row < len(rowEnd) && rowEnd[row]+6 > x {
			row++
		}
		if row == len(rowEnd) {
			rowEnd = append(rowEnd, 0)
		}
		rowEnd[row] = x + charWidth*float64(len(faults[i].Kind))
		rows[i] = row
	}
	return rows
}

func outcomes() []Outcome { return []Outcome{OK, Fail, Unknown} }

// outcomeIndex is o's place in outcomes(); anything else counts as
// unknown.
func outcomeIndex(o Outcome) int {
	switch o {
	case OK:
		return 0
	case Fail:
		return 1
	}
	return 2
}

func outcomeColor(o Outcome) string {
	switch o {
	case OK:
		return "#2e9e44"
	case Fail:
		return "#d62728"
	case Unknown:
		return "#ff8c00"
	}
	return "#555"
}

// Marker shapes, one per function.
const (
	shapeCircle = iota
	shapeSquare
	shapeTriangle
	shapeDiamond
	shapePlus
	numShapes
)

func shapeOf(fn string) int {
	switch fn {
	case FGet:
		return shapeCircle
	case FPut:
		return shapeSquare
	case FCAS:
		return shapeTriangle
	case FAdd:
		return shapeDiamond
	}
	return shapePlus
}

// marker appends one point of the given shape at (x, y) to a path.
func marker(b *strings.Builder, shape int, x, y float64) {
	switch shape {
	case shapeCircle: // a zero-length stroke with round caps
		fmt.Fprintf(b, "M%.1f %.1fh0", x, y)
	case shapeSquare:
		fmt.Fprintf(b, "M%.1f %.1fh4v4h-4z", x-2, y-2)
	case shapeTriangle:
		fmt.Fprintf(b, "M%.1f %.1fl2.6 4.5h-5.2z", x, y-3)
	case shapeDiamond:
		fmt.Fprintf(b, "M%.1f %.1fl3 3-3 3-3-3z", x, y-3)
	default:
		fmt.Fprintf(b, "M%.1f %.1fh6m-3-3v6", x-3, y)
	}
}

// markerStyle is the paint of a path of markers of one shape.
func markerStyle(shape int, color, opacity string) string {
	switch shape {
	case shapeCircle:
		return fmt.Sprintf(`fill="none" stroke="%s" stroke-opacity="%s" stroke-width="4.5" stroke-linecap="round"`, color, opacity)
	case shapePlus:
		return fmt.Sprintf(`fill="none" stroke="%s" stroke-opacity="%s" stroke-width="1.4"`, color, opacity)
	}
	return fmt.Sprintf(`fill="%s" fill-opacity="%s"`, color, opacity)
}

// markerSVG is a legend swatch for function fn, centred on 0,0.
func markerSVG(fn string) string {
	var d strings.Builder
	shape := shapeOf(fn)
	marker(&d, shape, 0, 0)
	return fmt.Sprintf(`<path d="%s" %s/>`, d.String(), markerStyle(shape, "#555", "1"))
}

// functionsIn lists the functions of the ops, get, put, cas, add first.
func functionsIn(ops []Op) []string {
	seen := make(map[string]bool)
	for _, op := range ops {
		seen[op.F] = true
	}
	var fns []string
	for _, fn := range []string{FGet, FPut, FCAS, FAdd} {
		if seen[fn] {
			fns = append(fns, fn)
			delete(seen, fn)
		}
	}
	return append(fns, sortedKeys(seen)...)
}

// samplePoints picks at most limit ops to draw, as indices into ops: every
// fail and unknown first (evenly sampled if there are more than half the
// limit), then the ok ones evenly sampled.
func samplePoints(ops []Op, limit int) []int {
	var ok, other []int
	for i, op := range ops {
		if op.Outcome == OK {
			ok = append(ok, i)
		} else {
			other = append(other, i)
		}
	}
	if len(ops) <= limit {
		return append(ok, other...)
	}
	nOther := min(len(other), limit/2)
	nOK := min(len(ok), limit-nOther)
	nOther = min(len(other), limit-nOK)
	return append(evenly(ok, nOK), evenly(other, nOther)...)
}

// evenly picks n elements of xs spread evenly.
func evenly(xs []int, n int) []int {
	if n >= len(xs) {
		return xs
	}
	out := make([]int, n)
	for i := range out {
		out[i] = xs[i*len(xs)/n]
	}
	return out
}

// latencyPlot draws each op at (Start, End-Start) with latency in ms on a
// log scale, and returns the SVG and how many ops it shows.
func latencyPlot(t timeline, results []Result, ops []Op, faults []Fault, colors map[string]string) (string, int) {
	f := frame{t: t, h: latencyH}
	idx := samplePoints(ops, maxLatencyPoints)
	const floorMs = 1e-3 // 1µs: the log scale needs a floor
	lat := func(op Op) float64 { return max(float64(op.End-op.Start)/1e6, floorMs) }
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, i := range idx {
		l := lat(ops[i])
		lo, hi = min(lo, l), max(hi, l)
	}
	if len(idx) == 0 {
		lo, hi = 1, 1000
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	const pad = 6 // keep points off the frame
	y := func(ms float64) float64 {
		frac := (math.Log10(ms) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
		return f.bottom() - pad - frac*(f.bottom()-f.top()-2*pad)
	}

	var b strings.Builder
	f.header(&b, "latency of each operation over time")
	for d := lo; d <= hi*1.0001; d *= 10 {
		for _, m := range []float64{2, 5} {
			if v := d * m; v < hi {
				fmt.Fprintf(&b, `<line stroke="#e3e3e3" stroke-dasharray="2 3" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`,
					plotLeft, y(v), plotWidth-plotRight, y(v))
			}
		}
		fmt.Fprintf(&b, `<line stroke="#e3e3e3" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, plotLeft, y(d), plotWidth-plotRight, y(d))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, plotLeft-5, y(d)+4, formatMs(d))
	}
	f.bands(&b, faults, colors)

	// One path per (outcome, shape); ok first so that fail and unknown
	// are drawn on top.
	var paths [3][numShapes]strings.Builder
	for _, i := range idx {
		op := ops[i]
		o := outcomeIndex(op.Outcome)
		shape := shapeOf(op.F)
		marker(&paths[o][shape], shape, f.x(op.Start), y(lat(op)))
	}
	for o, outcome := range outcomes() {
		for shape := range numShapes {
			if d := paths[o][shape].String(); d != "" {
				fmt.Fprintf(&b, `<path d="%s" %s/>`, d, markerStyle(shape, outcomeColor(outcome), pointOpacity))
			}
		}
	}

	// Anomalies as marks above the frame.
	for _, r := range results {
		for _, a := range r.Anomalies {
			if a.At <= 0 || a.At > t.end {
				continue
			}
			x := f.x(a.At)
			fmt.Fprintf(&b, `<g><title>%s</title><path d="M%.1f %.1fl-5 -9h10z" fill="#c62828"/></g>`,
				template.HTMLEscapeString(a.Kind+" at "+seconds(a.At)+" s: "+a.Detail), x, f.top()-2)
		}
	}
	f.axes(&b, "latency (ms, log)")
	return b.String(), len(idx)
}

// throughputPlot draws operations completed per second, one line per
// outcome and one for the total.
func throughputPlot(t timeline, ops []Op, faults []Fault, colors map[string]string) string {
	f := frame{t: t, h: throughputH}
	endS := float64(t.end) / 1e9
	width := 1.0 // bin, seconds
	if endS/width < 20 {
		width = niceStep(endS / 20)
	} else if endS/width > 1000 {
		width = niceStep(endS / 1000)
	}
	bins := int(math.Ceil(endS / width))
	binNS := int64(width * 1e9)
	counts := make([][]int, len(outcomes())+1) // by outcome, then total
	for i := range counts {
		counts[i] = make([]int, bins)
	}
	for _, op := range ops {
		bin := min(max(int(op.End/binNS), 0), bins-1)
		o := outcomeIndex(op.Outcome)
		counts[o][bin]++
		counts[3][bin]++
	}
	peak := 1.0
	for _, c := range counts[3] {
		peak = max(peak, float64(c)/width)
	}
	step := niceStep(peak / 5)
	top := math.Ceil(peak/step) * step
	y := func(rate float64) float64 { return f.bottom() - rate/top*(f.bottom()-f.top()) }

	var b strings.Builder
	f.header(&b, "operations completed per second")
	for v := 0.0; v <= top+step/1e6; v += step {
		fmt.Fprintf(&b, `<line stroke="#e3e3e3" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, plotLeft, y(v), plotWidth-plotRight, y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, plotLeft-5, y(v)+4, trimFloat(v))
	}
	f.bands(&b, faults, colors)
	line := func(c []int, color, w string) {
		var pts strings.Builder
		for i, n := range c {
			mid := int64((float64(i) + 0.5) * width * 1e9)
			fmt.Fprintf(&pts, "%.1f,%.1f ", f.x(min(mid, t.end)), y(float64(n)/width))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%s" stroke-linejoin="round" points="%s"/>`,
			color, w, strings.TrimSpace(pts.String()))
	}
	line(counts[3], "#bbb", "2.5")
	for o, outcome := range outcomes() {
		line(counts[o], outcomeColor(outcome), "1.6")
	}
	f.axes(&b, fmt.Sprintf("ops/s (%s s bins)", trimFloat(width)))
	return b.String()
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	exp := math.Pow(10, math.Floor(math.Log10(raw)))
	switch m := raw / exp; {
	case m <= 1:
		return exp
	case m <= 2:
		return 2 * exp
	case m <= 5:
		return 5 * exp
	}
	return 10 * exp
}

// trimFloat formats a tick value without trailing zeros.
func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// formatMs labels a latency decade.
func formatMs(ms float64) string {
	if ms >= 1000 {
		return trimFloat(ms/1000) + " s"
	}
	if ms < 1 {
		return trimFloat(ms*1000) + " µs"
	}
	return trimFloat(ms) + " ms"
}
