//go:build benchcompare

package main

// The Redis-protocol section of the comparison: redis-benchmark's SET and
// GET, one request a round trip (-P 1) and pipelines of 16 (-P 16), against
// node 1's Redis port (--resp-addr) of the comparison's elcache cluster and
// against its in-memory Redis, alternately, on the same keys and values.
// redis-benchmark sends plain Redis commands and cannot pick a read level
// (ELCACHE.CONSISTENCY): elcache reads at the level of a new Redis
// connection, which startElcache sets to EVENTUAL (--resp-consistency), and
// writes at the nodes' default write mode (cache_only) and durability
// (SYNC: a quorum has fsynced each write).

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/internal/bench"
)

var compareRedisBenchmark = flag.Int("redis-benchmark-requests", 100_000,
	"requests of each redis-benchmark test (GET, SET) at -P 1, twice as many at -P 16, against elcache's Redis port and against Redis; 0 skips them")

const (
	// respKeyspace is redis-benchmark's -r: keys key:000000000000 to
	// key:000000099999.
	respKeyspace = 100_000
	// respRunTimeout bounds one redis-benchmark run (it keeps trying a
	// server it cannot reach).
	respRunTimeout = 3 * time.Minute
)

// respRuns are the section's rows: a test at a pipeline depth, and the
// elcache/Redis throughput it aims for (0: none).
var respRuns = []struct {
	test     string
	pipeline int
	goal     float64
}{
	{"GET", 1, 0.8},
	{"GET", 16, 0.5},
	{"SET", 1, 0},
	{"SET", 16, 0},
}

// respResult is what the section measured, for results.json.
type respResult struct {
	// Requests each test sent at -P 1; twice as many at -P 16.
	Requests  int       `json:"requests"`
	Clients   int       `json:"clients"`
	Keyspace  int       `json:"keyspace"`
	ValueSize int       `json:"value_size"`
	Rows      []respRow `json:"rows"`
}

// respRow is one test at one pipeline depth, on both systems.
type respRow struct {
	Name     string                  `json:"name"` // "redis-benchmark GET -P 1"
	Pipeline int                     `json:"pipeline"`
	Elcache  bench.RedisBenchmarkRow `json:"elcache"`
	Redis    bench.RedisBenchmarkRow `json:"redis"`
	// Ratio is elcache's throughput over Redis's; Goal the ratio aimed
	// at, 0 for none.
	Ratio float64 `json:"ratio"`
	Goal  float64 `json:"goal,omitempty"`
}

// measureRESP runs the section against elcacheAddr (a node's Redis port)
// and redisAddr, in a subtest.
func measureRESP(t *testing.T, elcacheAddr, redisAddr string, requests int) compareExtra {
	return measureExtra(t, "redis-benchmark", "redis-benchmark", func(t *testing.T) respResult {
		r := respResult{Requests: requests, Clients: *compareClients, Keyspace: respKeyspace, ValueSize: *compareValueSize}
		got := map[string][]bench.RedisBenchmarkRow{} // by system and depth: "elcache -P 1"
		for _, pipeline := range []int{1, 16} {
			n := requests
			if pipeline > 1 {
				n = 2 * requests // pipelines are faster: about as long a run
			}
			for _, sys := range []struct{ name, addr string }{{"elcache", elcacheAddr}, {"redis", redisAddr}} {
				b := bench.RedisBenchmark{Addr: sys.addr, Tests: []string{"set", "get"}, Requests: n,
					Clients: r.Clients, Pipeline: pipeline, Keyspace: r.Keyspace, ValueSize: r.ValueSize}
				ctx, cancel := context.WithTimeout(t.Context(), respRunTimeout)
				start := time.Now()
				rows, err := b.Run(ctx)
				cancel()
				if err != nil {
					t.Fatalf("%s: %v", sys.name, err)
				}
				t.Logf("redis-benchmark -P %d against %s (%s): %+v in %v", pipeline, sys.name, sys.addr, rows, time.Since(start).Round(time.Millisecond))
				got[fmt.Sprintf("%s -P %d", sys.name, pipeline)] = rows
			}
		}
		for _, run := range respRuns {
			row := respRow{Name: fmt.Sprintf("redis-benchmark %s -P %d", run.test, run.pipeline), Pipeline: run.pipeline, Goal: run.goal}
			var okE, okR bool
			row.Elcache, okE = bench.RedisBenchmarkTest(got[fmt.Sprintf("elcache -P %d", run.pipeline)], run.test)
			row.Redis, okR = bench.RedisBenchmarkTest(got[fmt.Sprintf("redis -P %d", run.pipeline)], run.test)
			if !okE || !okR {
				t.Fatalf("%s: no %s result (elcache %v, Redis %v)", row.Name, run.test, okE, okR)
			}
			row.Ratio = div(row.Elcache.RPS, row.Redis.RPS)
			r.Rows = append(r.Rows, row)
		}
		return r
	})
}

// goal states row's goal and whether the run met it.
func (row respRow) goal() string {
	if row.Goal == 0 {
		return "no goal"
	}
	met := "met"
	if row.Ratio < row.Goal {
		met = "missed"
	}
	return fmt.Sprintf("goal >= %.1fx, %s", row.Goal, met)
}

// summary returns a line per row for the log and results.md.
func (r respResult) summary() []string {
	var lines []string
	for _, row := range r.Rows {
		lines = append(lines, fmt.Sprintf("%s: elcache / Redis %.2fx throughput (%s vs %s requests/s; %s), p50 %s vs %s, p99 %s vs %s",
			row.Name, row.Ratio, bench.FormatOps(row.Elcache.RPS), bench.FormatOps(row.Redis.RPS), row.goal(),
			respMillis(row.Elcache.P50Ms), respMillis(row.Redis.P50Ms), respMillis(row.Elcache.P99Ms), respMillis(row.Redis.P99Ms)))
	}
	return lines
}

// markdown returns the section's table for results.md.
func (r respResult) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Redis protocol (redis-benchmark)\n\n")
	fmt.Fprintf(&b, "redis-benchmark -t set,get -c %d -r %d -d %d, %s requests a test at -P 1 and %s at -P 16, against node 1's Redis port (reads at EVENTUAL, writes SYNC) and against Redis without persistence.\n\n",
		r.Clients, r.Keyspace, r.ValueSize, bench.FormatOps(float64(r.Requests)), bench.FormatOps(float64(2*r.Requests)))
	b.WriteString("| run | elcache requests/s | Redis requests/s | elcache / Redis | goal | elcache p50 / p99 | Redis p50 / p99 |\n")
	b.WriteString("|---|--:|--:|--:|---|--:|--:|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %.2fx | %s | %s / %s | %s / %s |\n",
			row.Name, bench.FormatOps(row.Elcache.RPS), bench.FormatOps(row.Redis.RPS), row.Ratio, row.goal(),
			respMillis(row.Elcache.P50Ms), respMillis(row.Elcache.P99Ms), respMillis(row.Redis.P50Ms), respMillis(row.Redis.P99Ms))
	}
	return b.String()
}

// respMillis formats a redis-benchmark latency, in milliseconds, as the
// rest of the report does; "-" when redis-benchmark gave none.
func respMillis(ms float64) string {
	if ms == 0 {
		return "-"
	}
	return bench.FormatMicros(ms * 1000)
}
