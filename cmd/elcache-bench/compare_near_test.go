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
	"slices"
	"strings"

	"github.com/elcache/elcache/internal/bench"
)

// nearGoalSpecs are the near cache's goals: the throughput of op of some
// runs over that of others, at least min; and, for the mix, no read of
// any of them that broke its level's promise. The mix runs in the order
// without, with, with, without (each for half the duration), so that a
// drift over the four (compactions, other work on the machine) weighs on
// both sides alike.
var nearGoalSpecs = []struct {
	name         string
	runs, versus []string
	op           string
	min          float64
}{
	{"near-cache EVENTUAL GET / Redis GET", []string{"get-elcache-near-eventual"}, []string{"get-redis"}, "read", 10},
	{"near-cache BOUNDED(100ms) GET / Redis GET", []string{"get-elcache-near-bounded"}, []string{"get-redis"}, "read", 5},
	{"YCSB A at BOUNDED(100ms), writes with / without the near cache",
		[]string{"mix-elcache-near", "mix-elcache-near-2"}, []string{"mix-elcache", "mix-elcache-2"}, "update", 0.9},
}

// nearRowIDs are the runs of the section's table, in its order.
var nearRowIDs = []string{"get-redis", "get-elcache-eventual", "get-elcache-near-eventual", "get-elcache-near-bounded",
	"mix-elcache", "mix-elcache-near", "mix-elcache-near-2", "mix-elcache-2"}

// nearResult is what the near cache's rows measured, for results.json.
type nearResult struct {
	Goals []nearGoal `json:"goals"`
	// rows are the runs the goals compare, for the section's table.
	rows []nearRow
}

// nearGoal is one goal and how the run did.
type nearGoal struct {
	Name   string   `json:"name"`
	Runs   []string `json:"runs"`
	Versus []string `json:"versus"`
	Op     string   `json:"op"`
	Ratio  float64  `json:"ratio"`
	Min    float64  `json:"min"`
	// Violations are the reads of any of the runs that broke their
	// level's promise; any fails the goal.
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
	for _, id := range nearRowIDs {
		if res, ok := byID[id]; ok {
			r.rows = append(r.rows, nearRow{id, res})
		}
	}
	for _, g := range nearGoalSpecs {
		runs, okA := lookupRuns(byID, g.runs)
		versus, okB := lookupRuns(byID, g.versus)
		if !okA || !okB {
			continue
		}
		ng := nearGoal{Name: g.name, Runs: g.runs, Versus: g.versus, Op: g.op, Min: g.min,
			Ratio: div(combinedRate(runs, g.op), combinedRate(versus, g.op))}
		for _, res := range append(slices.Clone(runs), versus...) {
			ng.Violations += res.Check.Violations()
		}
		ng.Met = ng.Ratio >= g.min && ng.Violations == 0
		ng.line = nearGoalLine(ng, runs, versus)
		r.Goals = append(r.Goals, ng)
	}
	if len(r.Goals) == 0 {
		return compareExtra{}, false
	}
	return compareExtra{name: "near-cache", lines: r.summary(), data: r, markdown: r.markdown()}, true
}

// lookupRuns returns the results of ids, and false unless all ran.
func lookupRuns(byID map[string]bench.Result, ids []string) ([]bench.Result, bool) {
	var out []bench.Result
	for _, id := range ids {
		res, ok := byID[id]
		if !ok {
			return nil, false
		}
		out = append(out, res)
	}
	return out, true
}

// combinedRate is the successful operations of kind op per second over
// all of runs.
func combinedRate(runs []bench.Result, op string) float64 {
	var n int64
	var secs float64
	for _, r := range runs {
		n += r.Ops[op].Count
		secs += r.Duration
	}
	return div(float64(n), secs)
}

// nearGoalLine states g with its figures: throughput, latency (of each
// run), the near cache's hit ratio and memory, the read check.
func nearGoalLine(g nearGoal, runs, versus []bench.Result) string {
	met := "met"
	if !g.Met {
		met = "MISSED"
	}
	quantiles := func(rs []bench.Result, q int) string {
		var qs []string
		for _, r := range rs {
			qs = append(qs, quantile(r, g.Op, q))
		}
		return strings.Join(qs, ", ")
	}
	var extra []string
	for _, r := range runs {
		if n := r.Near; n != nil {
			extra = append(extra, fmt.Sprintf("hit ratio %.2f%%, near cache %s entries in %s, live heap %s",
				100*n.HitRatio, bench.FormatOps(float64(n.Entries)), bench.FormatMiB(n.Bytes), bench.FormatMiB(r.HeapBytes)))
		}
	}
	var heaps []string
	for i, r := range versus {
		heaps = append(heaps, fmt.Sprintf("%s in %s", bench.FormatMiB(r.HeapBytes), g.Versus[i]))
	}
	extra = append(extra, "live heap "+strings.Join(heaps, ", "))
	var checked, stale, wrong int64
	for _, r := range append(slices.Clone(runs), versus...) {
		if c := r.Check; c != nil {
			checked, stale, wrong = checked+c.Reads, stale+c.Stale, wrong+c.Wrong
		}
	}
	if checked > 0 {
		extra = append(extra, fmt.Sprintf("%s reads checked, %d stale, %d wrong", bench.FormatOps(float64(checked)), stale, wrong))
	}
	return fmt.Sprintf("%s: %.2fx throughput (%s vs %s %s/s; goal >= %gx%s, %s), p50 %s vs %s, p99 %s vs %s; %s",
		g.Name, g.Ratio, bench.FormatOps(combinedRate(runs, g.Op)), bench.FormatOps(combinedRate(versus, g.Op)), g.Op, g.Min, checkClause(g), met,
		quantiles(runs, 50), quantiles(versus, 50), quantiles(runs, 99), quantiles(versus, 99),
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
	b.WriteString("The Go client's near cache (its defaults: 64 MiB, progress marks every 20ms), a new client per run, filled by the run's warm-up. " +
		"YCSB A runs without, with, with and without the near cache, each measured for half the duration, every read checked against the run's writes " +
		"(a version older than one acknowledged more than 100ms before the read began is stale).\n\n")
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
