package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
)

// Running redis-benchmark (from redis-tools) and reading what it prints
// with --csv, for bench-compare's runs of it against elcache's Redis port
// and against Redis.

// RedisBenchmark is one run of redis-benchmark.
type RedisBenchmark struct {
	// Addr is the server's host:port.
	Addr string
	// Tests are redis-benchmark's tests (-t), e.g. "set", "get"; it runs
	// them in an order of its own.
	Tests []string
	// Requests (-n) each test sends, Clients (-c) the connections, Pipeline
	// (-P) the requests each client sends before it reads the replies.
	Requests, Clients, Pipeline int
	// Keyspace (-r) spreads the keys over key:000000000000 up to
	// Keyspace-1; 0 uses one key.
	Keyspace int
	// ValueSize (-d) is the bytes of each SET's value.
	ValueSize int
}

// Args returns redis-benchmark's command line for b, for --csv output.
func (b RedisBenchmark) Args() ([]string, error) {
	host, port, err := net.SplitHostPort(b.Addr)
	if err != nil {
		return nil, fmt.Errorf("bench: redis-benchmark address %q: %w", b.Addr, err)
	}
	if len(b.Tests) == 0 || b.Requests <= 0 || b.Clients <= 0 || b.Pipeline <= 0 || b.Keyspace < 0 || b.ValueSize <= 0 {
		return nil, fmt.Errorf("bench: redis-benchmark run %+v: want tests, and requests, clients, pipeline and value size above 0", b)
	}
	args := []string{"-h", host, "-p", port, "-t", strings.Join(b.Tests, ","),
		"-n", strconv.Itoa(b.Requests), "-c", strconv.Itoa(b.Clients), "-P", strconv.Itoa(b.Pipeline),
		"-d", strconv.Itoa(b.ValueSize), "--csv"}
	if b.Keyspace > 0 {
		args = append(args, "-r", strconv.Itoa(b.Keyspace))
	}
	return args, nil
}

// Run runs redis-benchmark (from PATH) until it ends or ctx is done, and
// returns its results. It fails if redis-benchmark does: it stops at the
// first error reply, and the error then holds the end of what it said. It
// keeps trying a server it cannot reach: give ctx a deadline.
func (b RedisBenchmark) Run(ctx context.Context) ([]RedisBenchmarkRow, error) {
	args, err := b.Args()
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "redis-benchmark", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("bench: redis-benchmark %s: %w: %s", strings.Join(args, " "), err, lastLines(stderr.String(), 3))
	}
	return ParseRedisBenchmarkCSV(&stdout)
}

// lastLines returns the last n lines of s that are not empty, joined by
// " / "; redis-benchmark rewrites its progress line with carriage returns.
func lastLines(s string, n int) string {
	var out []string
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			out = append([]string{l}, out...)
		}
	}
	if len(out) == 0 {
		return "(no output)"
	}
	return strings.Join(out, " / ")
}

// RedisBenchmarkRow is one test of a redis-benchmark run: its throughput
// and latencies in milliseconds. A redis-benchmark older than 7 prints only
// the throughput; the latencies are then zero.
type RedisBenchmarkRow struct {
	// Test is the test's name as redis-benchmark prints it: "GET", "SET".
	Test string `json:"test"`
	// RPS is the requests answered per second.
	RPS float64 `json:"rps"`
	// AvgMs to MaxMs are the latency's mean, least, quantiles and most.
	AvgMs float64 `json:"avg_ms,omitempty"`
	MinMs float64 `json:"min_ms,omitempty"`
	P50Ms float64 `json:"p50_ms,omitempty"`
	P95Ms float64 `json:"p95_ms,omitempty"`
	P99Ms float64 `json:"p99_ms,omitempty"`
	MaxMs float64 `json:"max_ms,omitempty"`
}

// redisBenchmarkColumns maps the columns of redis-benchmark 7's --csv
// header to the row's fields; "test" names the row and "rps" is required.
var redisBenchmarkColumns = map[string]func(r *RedisBenchmarkRow) *float64{
	"rps":            func(r *RedisBenchmarkRow) *float64 { return &r.RPS },
	"avg_latency_ms": func(r *RedisBenchmarkRow) *float64 { return &r.AvgMs },
	"min_latency_ms": func(r *RedisBenchmarkRow) *float64 { return &r.MinMs },
	"p50_latency_ms": func(r *RedisBenchmarkRow) *float64 { return &r.P50Ms },
	"p95_latency_ms": func(r *RedisBenchmarkRow) *float64 { return &r.P95Ms },
	"p99_latency_ms": func(r *RedisBenchmarkRow) *float64 { return &r.P99Ms },
	"max_latency_ms": func(r *RedisBenchmarkRow) *float64 { return &r.MaxMs },
}

// ParseRedisBenchmarkCSV reads the output of redis-benchmark --csv: from
// redis-benchmark 7 on, a header line ("test","rps","avg_latency_ms",...)
// and a line per test; before it, a line per test of its name and
// throughput only. Columns it does not know are skipped. It fails when a
// test line is malformed or when there is no test line at all, which is
// what redis-benchmark 7 prints when the server answers an error.
func ParseRedisBenchmarkCSV(r io.Reader) ([]RedisBenchmarkRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	// Column i of a test line fills columns[i]; nil skips it. Without a
	// header: the test, then its throughput.
	columns := []func(*RedisBenchmarkRow) *float64{nil, redisBenchmarkColumns["rps"]}
	var rows []RedisBenchmarkRow
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bench: redis-benchmark output: %w", err)
		}
		if line == 1 && len(rec) > 0 && rec[0] == "test" {
			columns, err = redisBenchmarkHeader(rec)
			if err != nil {
				return nil, err
			}
			continue
		}
		if len(rec) != len(columns) || rec[0] == "" {
			return nil, fmt.Errorf("bench: redis-benchmark output line %d: %d fields %q, want %d starting with a test name", line, len(rec), rec, len(columns))
		}
		row := RedisBenchmarkRow{Test: rec[0]}
		for i, field := range columns {
			if field == nil {
				continue
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(rec[i]), 64)
			if err != nil {
				return nil, fmt.Errorf("bench: redis-benchmark output line %d, %s: %w", line, row.Test, err)
			}
			*field(&row) = v
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, errors.New("bench: redis-benchmark printed no result (it stops at the first error reply)")
	}
	return rows, nil
}

// redisBenchmarkHeader returns the fields a header's columns fill.
func redisBenchmarkHeader(header []string) ([]func(*RedisBenchmarkRow) *float64, error) {
	columns := make([]func(*RedisBenchmarkRow) *float64, len(header))
	hasRPS := false
	for i, name := range header[1:] {
		columns[i+1] = redisBenchmarkColumns[name]
		hasRPS = hasRPS || name == "rps"
	}
	if !hasRPS {
		return nil, fmt.Errorf("bench: redis-benchmark output header %q has no rps column", header)
	}
	return columns, nil
}

// RedisBenchmarkTest returns the row of test (case-insensitive) among rows.
func RedisBenchmarkTest(rows []RedisBenchmarkRow, test string) (RedisBenchmarkRow, bool) {
	for _, r := range rows {
		if strings.EqualFold(r.Test, test) {
			return r, true
		}
	}
	return RedisBenchmarkRow{}, false
}
