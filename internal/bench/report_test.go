package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// syntheticResults is a small matrix: reads on three targets, writes on
// two, one target with no updates at all.
func syntheticResults() []Result {
	res := func(target, workload string, tput float64, ops map[string]OpStats) Result {
		return Result{Target: target, Workload: workload, Distribution: "zipfian", Clients: 50,
			Duration: 10, Throughput: tput, Ops: ops}
	}
	read := func(p50, p99 float64) OpStats {
		return OpStats{Count: 1000, P50: p50, P90: p50 * 2, P99: p99, P999: p99 * 2, Max: p99 * 4, Mean: p50 * 1.2}
	}
	return []Result{
		res("elcache/eventual", "C", 120000, map[string]OpStats{"read": read(300, 1500)}),
		res("redis/no-persistence", "C", 90000, map[string]OpStats{"read": read(450, 900)}),
		res("etcd/linearizable", "C", 15000, map[string]OpStats{"read": read(2800, 12000)}),
		res("elcache/cache_only", "W", 20000, map[string]OpStats{"read": read(300, 900), "update": read(2000, 9000)}),
		res("etcd<put>", "W", 4000, map[string]OpStats{"update": {Count: 10, Errors: 3, P50: 9000, P99: 40000}}),
	}
}

func TestReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.html")
	machine := map[string]string{"cpu": "Test CPU @ 3GHz", "cores": "2", "go": "go1.26", "date": "2026-01-02", "extra": "x"}
	if err := WriteHTMLReport(path, machine, syntheticResults()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{
		"<svg", "</svg>", "</html>",
		"elcache/eventual", "redis/no-persistence", "etcd/linearizable", "elcache/cache_only",
		"etcd&lt;put&gt;", // escaped
		"Test CPU @ 3GHz", "go1.26",
		"120,000", "300µs", "1.5ms", "12ms",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(page, "etcd<put>") {
		t.Error("report has a target name unescaped")
	}
	// Offline: nothing fetched, no scripts.
	for _, bad := range []string{"<script", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("report contains %q", bad)
		}
	}
	// One chart of throughput and one of latency per operation kind.
	if n := strings.Count(page, "<svg"); n != 3 {
		t.Errorf("report has %d charts, want 3", n)
	}
}

func TestReportEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.html")
	if err := WriteHTMLReport(path, nil, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "No results") {
		t.Errorf("empty report: %s", b)
	}
}

func TestReportMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdownTable(&b, syntheticResults()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2+len(syntheticResults()) {
		t.Fatalf("got %d lines:\n%s", len(lines), b.String())
	}
	if want := "| etcd/linearizable | C zipfian | 50 | 15,000 | 2.8ms | 12ms | - | - | 0 |"; lines[4] != want {
		t.Errorf("row:\n got %s\nwant %s", lines[4], want)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		us   float64
		want string
	}{{0.5, "0.5µs"}, {12, "12µs"}, {426.1, "426µs"}, {999.96, "1ms"}, {1500, "1.5ms"}, {12190, "12.2ms"}, {2e6, "2s"}, {1.234e7, "12.3s"}} {
		if got := FormatMicros(c.us); got != c.want {
			t.Errorf("FormatMicros(%v) = %q, want %q", c.us, got, c.want)
		}
	}
	for _, c := range []struct {
		v    float64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567.4, "1,234,567"}} {
		if got := FormatOps(c.v); got != c.want {
			t.Errorf("FormatOps(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}
