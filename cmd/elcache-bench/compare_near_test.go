//go:build benchcompare

package main

// The near cache's rows of the comparison (issue 21): GETs that the Go
// client's near cache serves from its memory, at EVENTUAL and at
// BOUNDED(100ms), against Redis's GET of the same run, and YCSB A at
// BOUNDED(100ms) without and with the near cache, every read checked
// against the run's own writes (bench.RunConfig.Check): the near cache
// must not make reads stale or writes slower. nearGoals states the goals
// and whether the run met them.

import (
	"fmt"
	"strings"

	"github.com/elcache/elcache/internal/bench"
)

// nearGoalSpecs are the near cache's goals: a run's throughput of op
// over another's, at least min; and, for the mix, no read of either run
// that broke its level's promise.
var nearGoalSpecs = []struct {
	name, run, versus, op string
	min                   float64
}{
	{"near-cache EVENTUAL GET / Redis GET", "get-elcache-near-eventual", "get-redis", "read", 10},
	{"near-cache BOUNDED(100ms) GET / Redis GET", "get-elcache-near-bounded", "get-redis", "read", 5},
	{"YCSB A at BOUNDED(100ms), writes with / without the near cache", "mix-elcache-near", "mix-elcache", "update", 0.9},
}

// nearResult is what the near cache's rows measured, for results.json.
type nearResult struct {
	Goals []nearGoal `json:"goals"`
	// rows are the runs the goals compare, for the section's table.
	rows []nearRow
}

// nearGoal is one goal and how the run did.
type nearGoal struct {
	Name   string  `json:"name"`
	Run    string  `json:"run"`
	Versus string  `json:"versus"`
	Op     string  `json:"op"`
	Ratio  float64 `json:"ratio"`
	Min    float64 `json:"min"`
	// Violations are the reads of either run that broke their level's
	// promise; any fails the goal.
	Violations int64 `json:"violations"`
	Met        bool  `json:"met"`
	line       string
}

// nearRow is one run of the section's table.
type nearRow struct {
	id  string
	res bench.Result
}

// nearGoals compares the near cache's runs that ran; false if none did.
func nearGoals(byID map[string]bench.Result) (compareExtra, bool) {
	var r nearResult
	for _, id := range []string{"get-redis", "get-elcache-eventual", "get-elcache-near-eventual", "get-elcache-near-bounded", "mix-elcache", "mix-elcache-near"} {
		if res, ok := byID[id]; ok {
			r.rows = append(r.rows, nearRow{id, res})
		}
	}
	for _, g := range nearGoalSpecs {
		a, okA := byID[g.run]
		b, okB := byID[g.versus]
		if !okA || !okB {
			continue
		}
		ng := nearGoal{Name: g.name, Run: g.run, Versus: g.versus, Op: g.op, Min: g.min,
			Ratio: div(opRate(a, g.op), opRate(b, g.op)), Violations: a.Check.Violations() + b.Check.Violations()}
		ng.Met = ng.Ratio >= g.min && ng.Violations == 0
		ng.line = nearGoalLine(ng, a, b)
		r.Goals = append(r.Goals, ng)
	}
	if len(r.Goals) == 0 {
		return compareExtra{}, false
	}
	return compareExtra{name: "near-cache", lines: r.summary(), data: r, markdown: r.markdown()}, true
}

// nearGoalLine states g with its figures: throughput, latency, the near
// cache's hit ratio and memory, the read check.
func nearGoalLine(g nearGoal, a, b bench.Result) string {
	met := "met"
	if !g.Met {
		met = "MISSED"
	}
	la, lb := a.Ops[g.Op], b.Ops[g.Op]
	var extra []string
	if n := a.Near; n != nil {
		extra = append(extra, fmt.Sprintf("hit ratio %.2f%%, near cache %s entries in %s, live heap %s (%s in %s)",
			100*n.HitRatio, bench.FormatOps(float64(n.Entries)), bench.FormatMiB(n.Bytes), bench.FormatMiB(a.HeapBytes), bench.FormatMiB(b.HeapBytes), g.Versus))
	}
	for _, r := range []bench.Result{a, b} {
		if c := r.Check; c != nil {
			extra = append(extra, fmt.Sprintf("%s: %s reads checked at bound %s, %d stale, %d wrong", r.Target, bench.FormatOps(float64(c.Reads)), c.Bound, c.Stale, c.Wrong))
		}
	}
	return fmt.Sprintf("%s: %.2fx throughput (%s vs %s %s/s; goal >= %gx%s, %s), p50 %s vs %s, p99 %s vs %s; %s",
		g.Name, g.Ratio, bench.FormatOps(opRate(a, g.Op)), bench.FormatOps(opRate(b, g.Op)), g.Op, g.Min, checkClause(g), met,
		bench.FormatMicros(la.P50), bench.FormatMicros(lb.P50), bench.FormatMicros(la.P99), bench.FormatMicros(lb.P99),
		strings.Join(extra, "; "))
}

// checkClause is what g asks of the read check, if anything.
func checkClause(g nearGoal) string {
	if g.Op != "update" {
		return ""
	}
	if g.Violations > 0 {
		return fmt.Sprintf(" and no read stale or wrong: %d were", g.Violations)
	}
	return " and no read stale or wrong"
}

// summary returns a line per goal for the log and results.md.
func (r nearResult) summary() []string {
	var lines []string
	for _, g := range r.Goals {
		lines = append(lines, g.line)
	}
	return lines
}

// markdown returns the section's table for results.md; the goals follow
// with the other ratios.
func (r nearResult) markdown() string {
	var b strings.Builder
	b.WriteString("## Near cache\n\n")
	b.WriteString("The Go client's near cache (its defaults: 64 MiB, progress marks every 20ms), a new client per run, filled by the run's 3s of warm-up; YCSB A's reads checked against the run's writes (a version older than one acknowledged more than 100ms before the read began is stale).\n\n")
	b.WriteString("| run | target | ops/s | read ops/s | read p50 / p99 | update ops/s | update p50 / p99 | hit ratio | near entries / bytes | live heap | reads checked / stale / wrong |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, row := range r.rows {
		res := row.res
		hit, held := "-", "-"
		if n := res.Near; n != nil {
			hit = fmt.Sprintf("%.2f%%", 100*n.HitRatio)
			held = bench.FormatOps(float64(n.Entries)) + " / " + bench.FormatMiB(n.Bytes)
		}
		checked := "-"
		if c := res.Check; c != nil {
			checked = fmt.Sprintf("%s / %d / %d", bench.FormatOps(float64(c.Reads)), c.Stale, c.Wrong)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s / %s | %s | %s / %s | %s | %s | %s | %s |\n",
			row.id, res.Target, bench.FormatOps(res.Throughput),
			bench.FormatOps(opRate(res, "read")), quantile(res, "read", 50), quantile(res, "read", 99),
			bench.FormatOps(opRate(res, "update")), quantile(res, "update", 50), quantile(res, "update", 99),
			hit, held, bench.FormatMiB(res.HeapBytes), checked)
	}
	return b.String()
}
