//go:build benchcompare

package main

// The Redis-protocol section of the comparison: redis-benchmark's SET and
// GET, one request a round trip (-P 1) and pipelines of 16 (-P 16), against
// node 1's Redis port (--resp-addr) of the comparison's elcache cluster and
// against its in-memory Redis, alternately, on the same keys and values
// (respRuns), every key loaded first on both (preloadRESP).
// redis-benchmark sends plain Redis commands and cannot pick a read level
// (ELCACHE.CONSISTENCY): elcache reads at the level of a new Redis
// connection, which startElcache sets to EVENTUAL (--resp-consistency), and
// writes at the nodes' default write mode (cache_only) and durability
// (SYNC: a quorum has fsynced each write).

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elcache/elcache/internal/bench"
)

var compareRedisBenchmark = flag.Int("redis-benchmark-requests", 100_000,
	"GETs redis-benchmark sends at -P 1 (twice as many at -P 16; SETs a quarter as many as GETs) to elcache's Redis port and to Redis; 0 skips them")

const (
	// respKeyspace is redis-benchmark's -r: keys key:000000000000 to
	// key:000000099999.
	respKeyspace = 100_000
	// respRunTimeout bounds one redis-benchmark run (it keeps trying a
	// server it cannot reach).
	respRunTimeout = 3 * time.Minute
)

// respRuns are the section's runs, in the order they run (each SET before
// the GETs at its depth, so that they find keys): a test at a pipeline
// depth, its requests as a multiple of -redis-benchmark-requests, and the
// elcache/Redis throughput it aims for (0: none). SETs send fewer
// requests: elcache's, fsynced on a quorum, are an order of magnitude
// slower than its GETs, and the section stays under a minute.
var respRuns = []struct {
	test     string
	pipeline int
	scale    float64
	goal     float64
}{
	{"SET", 1, 0.25, 0},
	{"GET", 1, 1, 0.8},
	{"SET", 16, 0.5, 0},
	{"GET", 16, 2, 0.5},
}

// respResult is what the section measured, for results.json.
type respResult struct {
	Clients   int       `json:"clients"`
	Keyspace  int       `json:"keyspace"`
	ValueSize int       `json:"value_size"`
	Rows      []respRow `json:"rows"` // GETs first
}

// respRow is one test at one pipeline depth, on both systems.
type respRow struct {
	Name     string                  `json:"name"` // "redis-benchmark GET -P 1"
	Pipeline int                     `json:"pipeline"`
	Requests int                     `json:"requests"`
	Elcache  bench.RedisBenchmarkRow `json:"elcache"`
	Redis    bench.RedisBenchmarkRow `json:"redis"`
	// Ratio is elcache's throughput over Redis's; Goal the ratio aimed
	// at, 0 for none.
	Ratio float64 `json:"ratio"`
	Goal  float64 `json:"goal,omitempty"`
}

// measureRESP runs the section against elcacheAddr (a node's Redis port)
// and redisAddr, alternately, in a subtest.
func measureRESP(t *testing.T, elcacheAddr, redisAddr string, requests int) compareExtra {
	return measureExtra(t, "redis-benchmark", "redis-benchmark", func(t *testing.T) respResult {
		r := respResult{Clients: *compareClients, Keyspace: respKeyspace, ValueSize: *compareValueSize}
		for _, addr := range []string{elcacheAddr, redisAddr} {
			if err := preloadRESP(t.Context(), addr, r.Keyspace, r.ValueSize); err != nil {
				t.Fatalf("loading the keyspace into %s: %v", addr, err)
			}
		}
		for _, run := range respRuns {
			row := respRow{Name: fmt.Sprintf("redis-benchmark %s -P %d", run.test, run.pipeline), Pipeline: run.pipeline,
				Requests: max(1, int(run.scale*float64(requests))), Goal: run.goal}
			for _, sys := range []struct {
				name, addr string
				into       *bench.RedisBenchmarkRow
			}{{"elcache", elcacheAddr, &row.Elcache}, {"Redis", redisAddr, &row.Redis}} {
				b := bench.RedisBenchmark{Addr: sys.addr, Tests: []string{run.test}, Requests: row.Requests,
					Clients: r.Clients, Pipeline: run.pipeline, Keyspace: r.Keyspace, ValueSize: r.ValueSize}
				ctx, cancel := context.WithTimeout(t.Context(), respRunTimeout)
				start := time.Now()
				rows, err := b.Run(ctx)
				cancel()
				if err != nil {
					t.Fatalf("%s against %s: %v", row.Name, sys.name, err)
				}
				res, ok := bench.RedisBenchmarkTest(rows, run.test)
				if !ok {
					t.Fatalf("%s against %s: no %s in %+v", row.Name, sys.name, run.test, rows)
				}
				*sys.into = res
				t.Logf("%s against %s (%s): %s requests/s, p50 %s, p99 %s, in %v", row.Name, sys.name, sys.addr,
					bench.FormatOps(res.RPS), respMillis(res.P50Ms), respMillis(res.P99Ms), time.Since(start).Round(time.Millisecond))
			}
			row.Ratio = div(row.Elcache.RPS, row.Redis.RPS)
			r.Rows = append(r.Rows, row)
		}
		slices.SortStableFunc(r.Rows, func(a, b respRow) int { return strings.Compare(a.Elcache.Test, b.Elcache.Test) })
		return r
	})
}

// preloadRESP stores every key of redis-benchmark's keyspace (-r: keys
// key:000000000000 on) on addr, with values of size bytes, so that every
// GET finds its key on both systems: a miss costs Redis nothing, while
// elcache, in front of a database, loads the key from it.
func preloadRESP(ctx context.Context, addr string, keys, size int) error {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	defer c.Close()
	value := strings.Repeat("x", size)
	const batch = 1000
	for start := 0; start < keys; start += batch {
		args := make([]any, 0, 2*batch)
		for k := start; k < min(start+batch, keys); k++ {
			args = append(args, fmt.Sprintf("key:%012d", k), value)
		}
		if err := c.MSet(ctx, args...).Err(); err != nil {
			return err
		}
	}
	return nil
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
	fmt.Fprintf(&b, "redis-benchmark -c %d -r %d -d %d against node 1's Redis port (reads at EVENTUAL, writes SYNC) and against Redis without persistence; each depth's SETs run before its GETs.\n\n",
		r.Clients, r.Keyspace, r.ValueSize)
	b.WriteString("| run | requests | elcache requests/s | Redis requests/s | elcache / Redis | goal | elcache p50 / p99 | Redis p50 / p99 |\n")
	b.WriteString("|---|--:|--:|--:|--:|---|--:|--:|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2fx | %s | %s / %s | %s / %s |\n",
			row.Name, bench.FormatOps(float64(row.Requests)), bench.FormatOps(row.Elcache.RPS), bench.FormatOps(row.Redis.RPS), row.Ratio, row.goal(),
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
