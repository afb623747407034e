package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The testdata files are what redis-benchmark 7.0.15 printed with --csv
// against a redis-server: -t get,set -c 50 -r 100000 -d 100 at -P 1 and
// -P 16, and a command the server refuses.
func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseRedisBenchmarkCSV(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input string
		want  []RedisBenchmarkRow
	}{
		{"7.0 at -P 1", readTestdata(t, "redis-benchmark-7.0-p1.csv"), []RedisBenchmarkRow{
			{Test: "SET", RPS: 60975.61, AvgMs: 0.450, MinMs: 0.120, P50Ms: 0.375, P95Ms: 0.815, P99Ms: 1.415, MaxMs: 2.287},
			{Test: "GET", RPS: 67796.61, AvgMs: 0.386, MinMs: 0.112, P50Ms: 0.367, P95Ms: 0.543, P99Ms: 0.671, MaxMs: 1.223},
		}},
		{"7.0 at -P 16", readTestdata(t, "redis-benchmark-7.0-p16.csv"), []RedisBenchmarkRow{
			{Test: "SET", RPS: 129032.26, AvgMs: 5.464, MinMs: 0.568, P50Ms: 4.503, P95Ms: 11.223, P99Ms: 27.695, MaxMs: 28.975},
			{Test: "GET", RPS: 224719.09, AvgMs: 3.123, MinMs: 0.608, P50Ms: 2.303, P95Ms: 5.567, P99Ms: 21.247, MaxMs: 21.535},
		}},
		{"before 7: no header, throughput only", "\"PING_INLINE\",\"98039.22\"\n\"SET\",\"90909.09\"\n\"GET\",\"95238.10\"\n", []RedisBenchmarkRow{
			{Test: "PING_INLINE", RPS: 98039.22}, {Test: "SET", RPS: 90909.09}, {Test: "GET", RPS: 95238.10},
		}},
		{"columns in another order, one unknown", "\"test\",\"p99_latency_ms\",\"jitter\",\"rps\"\n\"GET\",\"0.5\",\"x\",\"1000\"\n", []RedisBenchmarkRow{
			{Test: "GET", RPS: 1000, P99Ms: 0.5},
		}},
		{"a test name with spaces and a comma", "\"test\",\"rps\"\n\"MSET (10 keys, 1 call)\",\"42.5\"\n", []RedisBenchmarkRow{
			{Test: "MSET (10 keys, 1 call)", RPS: 42.5},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRedisBenchmarkCSV(strings.NewReader(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseRedisBenchmarkCSVErrors(t *testing.T) {
	for _, tc := range []struct{ name, input, want string }{
		{"the server answered an error", readTestdata(t, "redis-benchmark-7.0-error.csv"), "no result"},
		{"nothing", "", "no result"},
		{"header without rps", "\"test\",\"p50_latency_ms\"\n\"GET\",\"0.3\"\n", "no rps column"},
		{"rps not a number", "\"test\",\"rps\"\n\"GET\",\"fast\"\n", "GET"},
		{"too few fields", "\"test\",\"rps\",\"p50_latency_ms\"\n\"GET\",\"1000\"\n", "line 2"},
		{"no test name", "\"\",\"1000\"\n", "line 1"},
		{"progress text", "GET: rps=1000.0 (overall: 1000.0) avg_msec=0.5\n", "line 1"},
		{"bad quoting", "\"GET,\"1000\"\n", "redis-benchmark output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := ParseRedisBenchmarkCSV(strings.NewReader(tc.input))
			if err == nil || !strings.HasPrefix(err.Error(), "bench: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %+v, %v; want a bench: error containing %q", rows, err, tc.want)
			}
		})
	}
}

func TestRedisBenchmarkTest(t *testing.T) {
	rows := []RedisBenchmarkRow{{Test: "SET", RPS: 1}, {Test: "GET", RPS: 2}}
	if r, ok := RedisBenchmarkTest(rows, "get"); !ok || r.RPS != 2 {
		t.Errorf("get: %+v, %v", r, ok)
	}
	if r, ok := RedisBenchmarkTest(rows, "INCR"); ok {
		t.Errorf("INCR found: %+v", r)
	}
}

func TestRedisBenchmarkArgs(t *testing.T) {
	b := RedisBenchmark{Addr: "127.0.0.1:6379", Tests: []string{"set", "get"}, Requests: 100000, Clients: 50, Pipeline: 16, Keyspace: 100000, ValueSize: 100}
	got, err := b.Args()
	want := []string{"-h", "127.0.0.1", "-p", "6379", "-t", "set,get", "-n", "100000", "-c", "50", "-P", "16", "-d", "100", "--csv", "-r", "100000"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Args() = %q, %v; want %q", got, err, want)
	}
	b.Keyspace = 0
	if got, err := b.Args(); err != nil || slices.Contains(got, "-r") {
		t.Errorf("Args() without a keyspace = %q, %v; want no -r", got, err)
	}
	for name, spoil := range map[string]func(b *RedisBenchmark){
		"no port":     func(b *RedisBenchmark) { b.Addr = "127.0.0.1" },
		"no tests":    func(b *RedisBenchmark) { b.Tests = nil },
		"no requests": func(b *RedisBenchmark) { b.Requests = 0 },
		"no clients":  func(b *RedisBenchmark) { b.Clients = 0 },
		"no pipeline": func(b *RedisBenchmark) { b.Pipeline = 0 },
		"no value":    func(b *RedisBenchmark) { b.ValueSize = 0 },
	} {
		bad := b
		spoil(&bad)
		if _, err := bad.Args(); err == nil || !strings.HasPrefix(err.Error(), "bench: ") {
			t.Errorf("%s: Args() error %v, want a bench: error", name, err)
		}
	}
}

// TestRedisBenchmarkRun runs redis-benchmark against a throwaway
// redis-server: the results come back parsed, the keys stay in the
// keyspace with values of the size asked; and once the server refuses SET,
// Run fails with the server's error.
func TestRedisBenchmarkRun(t *testing.T) {
	if _, err := exec.LookPath("redis-benchmark"); err != nil {
		t.Fatalf("redis-benchmark is not in PATH (%v): run `make deps` to install redis-tools", err)
	}
	addr := startRedisServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	b := RedisBenchmark{Addr: addr, Tests: []string{"set", "get"}, Requests: 3000, Clients: 5, Pipeline: 4, Keyspace: 500, ValueSize: 77}
	rows, err := b.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, test := range []string{"SET", "GET"} {
		r, ok := RedisBenchmarkTest(rows, test)
		if !ok || r.RPS <= 0 || r.P50Ms <= 0 || r.P99Ms < r.P50Ms {
			t.Errorf("%s: %+v (found %v), want a throughput and latencies", test, r, ok)
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n == 0 || n > int64(b.Keyspace) {
		t.Errorf("DBSIZE %d (%v), want 1 to %d keys", n, err, b.Keyspace)
	}
	key, err := rdb.RandomKey(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.StrLen(ctx, key).Result(); err != nil || n != 77 {
		t.Errorf("STRLEN %s = %d (%v), want 77", key, n, err)
	}

	if err := rdb.Do(ctx, "ACL", "SETUSER", "default", "-set").Err(); err != nil {
		t.Fatal(err)
	}
	if rows, err := b.Run(ctx); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("Run against a server refusing SET: %+v, %v; want an error with NOPERM", rows, err)
	}
}

// startRedisServer starts a redis-server on a free loopback port, keeping
// nothing on disk, and returns its address once it accepts connections;
// it stops when the test ends.
func startRedisServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--daemonize", "no", "--logfile", "")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server (make deps installs it): %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// It says so once it listens; the pipe closes if it exits first.
	var said strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		said.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "Ready to accept connections") {
			go io.Copy(io.Discard, out) // keep it from blocking on a full pipe
			return addr
		}
	}
	t.Fatalf("redis-server on %s exited before it was ready:\n%s", addr, said.String())
	return ""
}
