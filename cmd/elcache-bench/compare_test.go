//go:build benchcompare

package main

// TestCompare is `make bench-compare`: it starts every system it compares
// on loopback, runs a fixed matrix of YCSB-style runs through Run, and
// writes results.json, report.html and results.md to -out. It needs the
// elcache source (it builds the server), PostgreSQL, redis-server and
// etcd (Debian's etcd-server) installed; the Makefile target installs the
// last three.
//
//	go test -tags benchcompare -run TestCompare -v -timeout 30m ./cmd/elcache-bench -args -out bench-results
//
// With the defaults the matrix takes about 5.5 minutes on two cores, plus
// start-up. -duration, -warmup and -only shorten it.
//
// The near cache's rows (compare_near_test.go) are GETs the Go client's
// near cache serves, compared with Redis's GET, and YCSB A at
// BOUNDED(100ms) without and with it, every read checked; only them and
// the Redis GET they are compared with:
//
//	-only 'elcache-near|^mix-|^get-redis' -herds 0 -failovers 0 -memory-keys 0 -redis-benchmark-requests 0
//
// ("near" alone would match the linearizable runs too.)
//
// Before the matrix, two measurements run on clusters of their own, each
// in a subtest that stops its processes when it ends: leader failover
// under writes (compare_failover_test.go; -failovers 0 skips it) and
// memory per key against Redis (compare_memory_test.go; -memory-keys 0
// skips it). An -only that matches no run id skips the matrix, so
//
//	-only none -herds 0 -failovers 2 -memory-keys 100000
//
// runs just those two.
//
// After the thundering herds and before the matrix, redis-benchmark runs
// GET and SET against node 1's Redis port and against the in-memory Redis
// (compare_resp_test.go; -redis-benchmark-requests 0 skips it), so
//
//	-only none -herds 0 -failovers 0 -memory-keys 0
//
// runs just that.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elcache/elcache/client"
	"github.com/elcache/elcache/internal/bench"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/storage/sqlstore"
	"github.com/elcache/elcache/storage/sqlstore/pgtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

var (
	compareOut        = flag.String("out", "bench-results", "folder for results.json, report.html, results.md and the servers' logs")
	compareDuration   = flag.Duration("duration", 12*time.Second, "measured phase of each run")
	compareWarmup     = flag.Duration("warmup", 3*time.Second, "warm-up of each run")
	compareClients    = flag.Int("clients", 50, "concurrent clients of each run")
	compareKeys       = flag.Int("keys", 10_000, "keys of each run")
	compareValueSize  = flag.Int("value-size", 100, "bytes per value")
	compareOnly       = flag.String("only", "", "run only the runs whose id matches this regexp (ids: get-elcache-eventual, set-etcd, wm-write-back, ...); one that matches none skips the matrix")
	comparePartitions = flag.Int("partitions", 16, "partitions of the elcache cluster")
	compareHerds      = flag.Int("herds", 20, "thundering-herd rounds (1,000 concurrent misses of one key each) against the elcache cluster; 0 skips them")
	compareFailovers  = flag.Int("failovers", 3, "leaders SIGKILLed in turn, under -clients writers, by the failover measurement; 0 skips it")
	compareMemoryKeys = flag.Int("memory-keys", 1_000_000, "keys (of -value-size bytes) loaded into elcache and into Redis by the memory-per-key measurement; 0 skips it")
)

// compareExtra is a measurement beyond the matrix: its summary lines, for
// the test log and results.md, its figures, for results.json, and a
// section of results.md of its own, if it has one.
type compareExtra struct {
	name     string
	lines    []string
	data     any
	markdown string
}

// measureExtra runs run in a subtest called name and returns what it
// measured with its summary, which it also logs; if the subtest fails,
// the summary says so instead (label: failed, see the test log).
func measureExtra[R interface{ summary() []string }](t *testing.T, name, label string, run func(t *testing.T) R) compareExtra {
	e := compareExtra{name: name}
	ok := t.Run(name, func(t *testing.T) {
		r := run(t)
		e.data, e.lines = r, r.summary()
		if md, ok := any(r).(interface{ markdown() string }); ok {
			e.markdown = md.markdown()
		}
		for _, l := range e.lines {
			t.Log(l)
		}
	})
	if !ok {
		e.lines = []string{label + ": failed, see the test log"}
	}
	return e
}

// compareRun is one cell of the matrix.
type compareRun struct {
	id         string // stable key for the ratios, e.g. "get-redis"
	system     string // "elcache", "redis-memory", "redis-aof", "etcd"
	level      string // elcache read level, or etcd "serializable"
	mode       string // elcache write mode
	durability string // elcache write durability ("": the nodes' default, sync)
	workload   string
	near       bool // elcache: the client has a near cache (its default size)
	check      bool // every read checked against the run's writes (bench.RunConfig.Check)
	half       bool // measured for half of -duration (one of a pair of runs)
}

// compareMatrix is the fixed matrix: pure GETs at each read level and
// their rivals, replicated SETs, YCSB A and B, then the write modes
// against PostgreSQL last, so that write-back's flushing cannot slow
// another run.
var compareMatrix = []compareRun{
	// GET: workload C over zipfian keys.
	{id: "get-elcache-eventual", system: "elcache", level: "eventual", workload: "C"},
	{id: "get-elcache-lease", system: "elcache", level: "lease", workload: "C"},
	{id: "get-elcache-linearizable", system: "elcache", level: "linearizable", workload: "C"},
	{id: "get-redis", system: "redis-memory", workload: "C"},
	{id: "get-etcd-linearizable", system: "etcd", workload: "C"},
	{id: "get-etcd-serializable", system: "etcd", level: "serializable", workload: "C"},
	// GET from the client's near cache (compare_near_test.go).
	{id: "get-elcache-near-eventual", system: "elcache", level: "eventual", workload: "C", near: true},
	{id: "get-elcache-near-bounded", system: "elcache", level: "bounded:100ms", workload: "C", near: true},
	// SET: workload W (95% updates), every write durable on a quorum (or
	// on Redis's disk) before it is acknowledged.
	{id: "set-elcache", system: "elcache", level: "eventual", mode: "cache_only", workload: "W"},
	// The same, acknowledged once a quorum has the writes in the OS, before
	// they are fsynced (DURABILITY_REPLICATED).
	{id: "set-elcache-replicated", system: "elcache", level: "eventual", mode: "cache_only", durability: "replicated", workload: "W"},
	{id: "set-redis", system: "redis-aof", workload: "W"},
	{id: "set-etcd", system: "etcd", workload: "W"},
	// YCSB A and B.
	{id: "A-elcache", system: "elcache", level: "eventual", mode: "cache_only", workload: "A"},
	{id: "A-elcache-replicated", system: "elcache", level: "eventual", mode: "cache_only", durability: "replicated", workload: "A"},
	{id: "A-redis", system: "redis-memory", workload: "A"},
	{id: "B-elcache", system: "elcache", level: "eventual", mode: "cache_only", workload: "B"},
	{id: "B-redis", system: "redis-memory", workload: "B"},
	// YCSB A at BOUNDED(100ms) without and with the near cache, every
	// read checked, in the order without, with, with, without, each for
	// half the duration (compare_near_test.go).
	{id: "mix-elcache", system: "elcache", level: "bounded:100ms", mode: "cache_only", workload: "A", check: true, half: true},
	{id: "mix-elcache-near", system: "elcache", level: "bounded:100ms", mode: "cache_only", workload: "A", check: true, near: true, half: true},
	{id: "mix-elcache-near-2", system: "elcache", level: "bounded:100ms", mode: "cache_only", workload: "A", check: true, near: true, half: true},
	{id: "mix-elcache-2", system: "elcache", level: "bounded:100ms", mode: "cache_only", workload: "A", check: true, half: true},
	// Write modes against PostgreSQL.
	{id: "wm-write-through", system: "elcache", level: "eventual", mode: "write_through", workload: "W"},
	{id: "wm-write-back", system: "elcache", level: "eventual", mode: "write_back", workload: "W"},
}

func TestCompare(t *testing.T) {
	out, err := filepath.Abs(*compareOut)
	if err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(out, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var only *regexp.Regexp
	if *compareOnly != "" {
		if only, err = regexp.Compile(*compareOnly); err != nil {
			t.Fatalf("-only: %v", err)
		}
	}
	runs := slices.DeleteFunc(slices.Clone(compareMatrix), func(r compareRun) bool {
		return only != nil && !only.MatchString(r.id)
	})
	need := map[string]bool{}
	for _, r := range runs {
		need[r.system] = true
	}
	if *compareRedisBenchmark > 0 {
		need["elcache"], need["redis-memory"] = true, true
		if _, err := exec.LookPath("redis-benchmark"); err != nil {
			t.Fatal("redis-benchmark not found: `make bench-compare` installs it (apt-get install redis-tools)")
		}
	}
	for sys, tool := range map[string][2]string{
		"redis-memory": {"redis-server", "redis-server"},
		"redis-aof":    {"redis-server", "redis-server"},
		"etcd":         {"etcd", "etcd-server"},
	} {
		if _, err := exec.LookPath(tool[0]); need[sys] && err != nil {
			t.Fatalf("%s not found: `make bench-compare` installs it (apt-get install %s)", tool[0], tool[1])
		}
	}

	var extras []compareExtra
	if *compareFailovers > 0 {
		extras = append(extras, measureFailover(t, logDir, *compareFailovers))
	}
	if *compareMemoryKeys > 0 {
		extras = append(extras, measureMemory(t, logDir, *compareMemoryKeys))
	}

	ctx := t.Context()
	start := time.Now()
	factories := map[string]func(ctx context.Context, r compareRun) (bench.Target, error){}
	versions := map[string]string{}
	var herdLine string
	var seeds []string
	respAddr := "" // node 1's Redis port
	if need["elcache"] {
		c, pg := startElcache(t, logDir)
		seeds, respAddr = c.addrs(), c.nodes[0].respAddr
		if *compareHerds > 0 {
			herdLine = runHerds(t, seeds, pg, *compareHerds)
			t.Log(herdLine)
		}
		factories["elcache"] = func(ctx context.Context, r compareRun) (bench.Target, error) {
			var configure func(*client.Config)
			if r.near {
				configure = bench.WithNearCache(nil, 0)
			}
			return bench.NewElcacheTarget(ctx, seeds, r.level, r.mode, r.durability, false, configure)
		}
		versions["commit"] = gitCommit()
	}
	redisAddrs := map[string]string{}
	for _, sys := range []string{"redis-memory", "redis-aof"} {
		if !need[sys] {
			continue
		}
		addr := startRedis(t, logDir, sys == "redis-aof")
		redisAddrs[sys] = addr
		label := map[string]string{"redis-memory": "no-persistence", "redis-aof": "appendfsync-always"}[sys]
		factories[sys] = func(ctx context.Context, r compareRun) (bench.Target, error) {
			return bench.NewRedisTarget(ctx, &bench.TargetFlags{Addr: addr, Mode: label})
		}
		versions["redis"] = commandVersion("redis-server", "--version")
	}
	if need["etcd"] {
		endpoints := startEtcd(t, logDir)
		factories["etcd"] = func(ctx context.Context, r compareRun) (bench.Target, error) {
			return bench.NewEtcdTarget(ctx, &bench.TargetFlags{Addr: endpoints, Serializable: r.level == "serializable"})
		}
		versions["etcd"] = commandVersion("etcd", "--version")
	}
	t.Logf("systems up after %v", time.Since(start).Round(time.Millisecond))
	if *compareRedisBenchmark > 0 {
		extras = append(extras, measureRESP(t, respAddr, redisAddrs["redis-memory"], *compareRedisBenchmark))
	}

	cfg := bench.RunConfig{
		Distribution: bench.DistZipfian,
		Keys:         *compareKeys,
		ValueSize:    *compareValueSize,
		Clients:      *compareClients,
		Duration:     *compareDuration,
		Warmup:       *compareWarmup,
		Seed:         1,
	}
	byID := map[string]bench.Result{}
	var results []bench.Result
	loaded := map[string]bool{} // systems whose keys are written
	for _, r := range runs {
		// Each system is loaded by its first run; later runs find the
		// keys there (W, A and B overwrite values, never delete).
		cfg.Load = !loaded[r.system]
		res, err := runOne(ctx, factories[r.system], r, cfg)
		loaded[r.system] = loaded[r.system] || err == nil
		if err != nil {
			t.Errorf("%s: %v", r.id, err)
			continue
		}
		byID[r.id] = res
		results = append(results, res)
		t.Logf("%-26s %-40s %s %10s ops/s  read p50/p99 %s/%s  update p50/p99 %s/%s  errors %d",
			r.id, res.Target, res.Workload, bench.FormatOps(res.Throughput),
			quantile(res, "read", 50), quantile(res, "read", 99),
			quantile(res, "update", 50), quantile(res, "update", 99), errorCount(res))
		if r.near || r.check {
			for _, l := range bench.ExtraLines(res) {
				t.Logf("%-26s %s", r.id, l)
			}
		}
		if n := res.Check.Violations(); n > 0 {
			t.Errorf("%s: %d of %d reads checked broke their level's promise (%d stale, %d wrong); the first: %s", r.id, n, res.Check.Reads, res.Check.Stale, res.Check.Wrong, res.Check.First)
		}
	}

	lines := compareRatios(byID)
	if herdLine != "" {
		lines = append(lines, herdLine)
	}
	measured := map[string]any{}
	var sections []string
	if near, ok := nearGoals(byID); ok {
		extras = append(extras, near)
	}
	if len(extras) > 0 {
		versions["commit"] = gitCommit()
	}
	for _, e := range extras {
		lines = append(lines, e.lines...)
		if e.data != nil {
			measured[e.name] = e.data
		}
		if e.markdown != "" {
			sections = append(sections, e.markdown)
		}
	}
	for _, l := range lines {
		t.Log(l)
	}
	if err := writeCompareOutput(out, cfg, versions, results, lines, measured, sections); err != nil {
		t.Fatal(err)
	}
	t.Logf("matrix done after %v; report in %s", time.Since(start).Round(time.Second), filepath.Join(out, "report.html"))
}

// runOne connects a fresh target for r, runs it, and closes it.
func runOne(ctx context.Context, connect func(context.Context, compareRun) (bench.Target, error), r compareRun, cfg bench.RunConfig) (bench.Result, error) {
	cfg.Workload, cfg.Check = r.workload, r.check
	if r.half {
		cfg.Duration /= 2
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	tgt, err := connect(cctx, r)
	cancel()
	if err != nil {
		return bench.Result{}, err
	}
	res, err := bench.Run(ctx, tgt, cfg, nil)
	return res, errors.Join(err, tgt.Close())
}

// writeCompareOutput writes results.json, report.html and results.md.
// measured holds the figures of the measurements beyond the matrix, by
// name, for results.json; sections are their own parts of results.md,
// after the matrix's table.
func writeCompareOutput(out string, cfg bench.RunConfig, versions map[string]string, results []bench.Result, ratios []string, measured map[string]any, sections []string) error {
	machine := bench.CurrentMachine()
	maps.Copy(machine, versions)
	machine["runs"] = fmt.Sprintf("%v measured after %v warm-up, %d clients, %d keys (zipfian), %d-byte values, closed loop",
		cfg.Duration, cfg.Warmup, cfg.Clients, cfg.Keys, cfg.ValueSize)
	if err := bench.WriteResultsFile(filepath.Join(out, "results.json"), bench.ResultsFile{Machine: machine, Results: results, Measured: measured}); err != nil {
		return err
	}
	machine["ratios"] = strings.Join(ratios, "; ")
	if err := bench.WriteHTMLReport(filepath.Join(out, "report.html"), machine, results); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# elcache vs Redis vs etcd\n\n%s, %s cores, %s, %s\n\n", machine["cpu"], machine["cores"], machine["go"], machine["date"])
	for _, k := range slices.Sorted(maps.Keys(versions)) {
		fmt.Fprintf(&md, "- %s: %s\n", k, versions[k])
	}
	fmt.Fprintf(&md, "- runs: %s\n\n", machine["runs"])
	if err := bench.WriteMarkdownTable(&md, results); err != nil {
		return err
	}
	for _, s := range sections {
		fmt.Fprintf(&md, "\n%s", s)
	}
	md.WriteString("\n")
	for _, l := range ratios {
		fmt.Fprintf(&md, "- %s\n", l)
	}
	return os.WriteFile(filepath.Join(out, "results.md"), []byte(md.String()), 0o644)
}

// compareRatios states the comparisons the matrix is for, one line each,
// for those whose two runs both succeeded.
func compareRatios(byID map[string]bench.Result) []string {
	var lines []string
	ratio := func(what, a, b, op string) {
		ra, okA := byID[a]
		rb, okB := byID[b]
		if !okA || !okB {
			return
		}
		ta, tb := opRate(ra, op), opRate(rb, op)
		la, lb := ra.Ops[op], rb.Ops[op]
		lines = append(lines, fmt.Sprintf("%s: %.2fx throughput (%s vs %s %s/s), p50 %.2fx (%s vs %s), p99 %.2fx (%s vs %s)",
			what, div(ta, tb), bench.FormatOps(ta), bench.FormatOps(tb), op,
			div(la.P50, lb.P50), bench.FormatMicros(la.P50), bench.FormatMicros(lb.P50),
			div(la.P99, lb.P99), bench.FormatMicros(la.P99), bench.FormatMicros(lb.P99)))
	}
	ratio("stale GET / Redis GET", "get-elcache-eventual", "get-redis", "read")
	ratio("lease GET / Redis GET", "get-elcache-lease", "get-redis", "read")
	ratio("linearizable GET / etcd linearizable range", "get-elcache-linearizable", "get-etcd-linearizable", "read")
	ratio("replicated SET / etcd put", "set-elcache", "set-etcd", "update")
	ratio("replicated SET / Redis SET (appendfsync always)", "set-elcache", "set-redis", "update")
	ratio("SET at durability REPLICATED / SYNC", "set-elcache-replicated", "set-elcache", "update")
	ratio("YCSB A at durability REPLICATED / SYNC", "A-elcache-replicated", "A-elcache", "update")
	ratio("write-back / write-through SET", "wm-write-back", "wm-write-through", "update")
	return lines
}

// opRate is the successful operations of kind op per second.
func opRate(r bench.Result, op string) float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Ops[op].Count) / r.Duration
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func quantile(r bench.Result, op string, q int) string {
	s, ok := r.Ops[op]
	if !ok || s.Count == 0 {
		return "-"
	}
	if q == 50 {
		return bench.FormatMicros(s.P50)
	}
	return bench.FormatMicros(s.P99)
}

func errorCount(r bench.Result) int64 {
	return r.Ops["read"].Errors + r.Ops["update"].Errors
}

// commandVersion returns the first line of what name args prints.
func commandVersion(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return first
}

// gitCommit names the checked-out commit of the source under test.
func gitCommit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// freeAddr returns a free 127.0.0.1 port.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcess starts bin with args, its output appended to
// logDir/name.log, and kills it when the test ends. It fails the test if
// the process cannot start; done is closed when it exits.
func startProcess(t *testing.T, logDir, name string, env []string, bin string, args ...string) (done <-chan struct{}) {
	t.Helper()
	_, done = startProc(t, logDir, name, env, bin, args...)
	return done
}

// startProc is startProcess that also returns the process, for its pid
// or to kill it early.
func startProc(t *testing.T, logDir, name string, env []string, bin string, args ...string) (*os.Process, <-chan struct{}) {
	t.Helper()
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			t.Logf("--- last lines of %s\n%s", logPath, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	})
	return cmd.Process, exited
}

// waitFor calls ready until it returns nil, failing the test after
// timeout or if the process exits first.
func waitFor(t *testing.T, what string, exited <-chan struct{}, timeout time.Duration, ready func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it was ready: %v", what, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startElcache starts a 3-node cluster (startElcacheCluster) backed by a
// throwaway PostgreSQL. Writes are cache_only unless a run names its mode,
// so the backend is touched only by the write-through and write-back runs.
// Redis connections read at EVENTUAL (--resp-consistency): redis-benchmark
// cannot choose a level, and its GETs are compared with Redis's. It
// returns the cluster once every partition has a leader.
func startElcache(t *testing.T, logDir string) (*elcacheCluster, *pgtest.Server) {
	t.Helper()
	pg := pgtest.Start(t)
	c := startElcacheCluster(t, logDir, "elcache",
		"--backend", pg.URL(), "--backend-create-table", "true", "--default-write-mode", "cache_only",
		"--resp-consistency", "eventual")
	return c, pg
}

// elcacheCluster is a 3-node cluster of elcache processes.
type elcacheCluster struct {
	bin        string
	logDir     string
	partitions int
	nodes      []*elcacheNode
}

// elcacheNode is one node's process and what it takes to start it again.
type elcacheNode struct {
	name     string // node name, "n1"; also what WriteMeta.ServedBy reports
	addr     string // gRPC address
	respAddr string // Redis-protocol address (--resp-addr)
	dataDir  string
	args     []string
	proc     *os.Process
	exited   <-chan struct{}
}

// startElcacheCluster builds the server (without -race: it is measured)
// and starts 3 nodes with -partitions partitions, the server's default
// Raft timeouts, a Redis port each and extra flags, their logs in
// logDir/prefix-nN.log. It
// returns once every node serves and every partition has a leader and 3
// replicas.
func startElcacheCluster(t *testing.T, logDir, prefix string, extra ...string) *elcacheCluster {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "elcache")
	build := exec.Command("go", "build", "-o", bin, "github.com/elcache/elcache/cmd/elcache")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build elcache: %v\n%s", err, out)
	}
	c := &elcacheCluster{bin: bin, logDir: logDir, partitions: *comparePartitions}
	const n = 3
	var gossipAddrs []string
	for i := range n {
		c.nodes = append(c.nodes, &elcacheNode{name: fmt.Sprintf("n%d", i+1), addr: freeAddr(t), respAddr: freeAddr(t), dataDir: t.TempDir()})
		gossipAddrs = append(gossipAddrs, freeAddr(t))
	}
	for i, nd := range c.nodes {
		others := slices.Delete(slices.Clone(gossipAddrs), i, i+1)
		nd.args = append([]string{
			"--node-name", nd.name, "--data-dir", nd.dataDir,
			"--grpc-addr", nd.addr, "--gossip-addr", gossipAddrs[i], "--resp-addr", nd.respAddr,
			"--bootstrap-expect", fmt.Sprint(n), "--join", strings.Join(others, ","),
			"--partitions", fmt.Sprint(c.partitions), "--replication-factor", "3"}, extra...)
		nd.proc, nd.exited = startProc(t, logDir, prefix+"-"+nd.name, nil, bin, nd.args...)
	}
	for _, nd := range c.nodes {
		c.waitServing(t, nd)
	}
	return c
}

// addrs returns the nodes' gRPC addresses.
func (c *elcacheCluster) addrs() []string {
	var out []string
	for _, nd := range c.nodes {
		out = append(out, nd.addr)
	}
	return out
}

// restart starts nd again, after it exited, with the same flags and data,
// its output in logDir/logName.log, and waits until it serves.
func (c *elcacheCluster) restart(t *testing.T, nd *elcacheNode, logName string) {
	t.Helper()
	nd.proc, nd.exited = startProc(t, c.logDir, logName, nil, c.bin, nd.args...)
	c.waitServing(t, nd)
}

// waitServing waits until nd reports SERVING and its partition map has
// every node and, for every partition, a leader and 3 replicas.
func (c *elcacheCluster) waitServing(t *testing.T, nd *elcacheNode) {
	t.Helper()
	conn, err := grpc.NewClient(nd.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health, cache := healthpb.NewHealthClient(conn), cachev1.NewCacheClient(conn)
	waitFor(t, "elcache "+nd.name, nd.exited, 90*time.Second, func(ctx context.Context) error {
		h, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if h.Status != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health %v", h.Status)
		}
		topo, err := cache.Topology(ctx, &cachev1.TopologyRequest{})
		if err != nil {
			return err
		}
		if len(topo.Nodes) != len(c.nodes) || len(topo.Partitions) != c.partitions {
			return fmt.Errorf("topology has %d nodes, %d partitions", len(topo.Nodes), len(topo.Partitions))
		}
		for _, p := range topo.Partitions {
			if p.Leader == "" || len(p.Replicas) != len(c.nodes) {
				return fmt.Errorf("partition %d: leader %q, replicas %v", p.Partition, p.Leader, p.Replicas)
			}
		}
		return nil
	})
}

// startRedis starts a redis-server on a free port, either a pure
// in-memory cache (no snapshots, no AOF) or one that appends every write
// to its AOF and fsyncs it before answering. It returns its address.
func startRedis(t *testing.T, logDir string, aof bool) string {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	name, persist := "redis-memory", []string{"--appendonly", "no"}
	if aof {
		name, persist = "redis-aof", []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	args := append([]string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--dir", t.TempDir(),
		"--protected-mode", "no", "--daemonize", "no"}, persist...)
	exited := startProcess(t, logDir, name, nil, "redis-server", args...)
	waitFor(t, name, exited, 20*time.Second, func(ctx context.Context) error {
		tgt, err := bench.NewRedisTarget(ctx, &bench.TargetFlags{Addr: addr})
		if err != nil {
			return err
		}
		return tgt.Close()
	})
	return addr
}

// startEtcd starts a 3-member etcd cluster and returns its client
// endpoints, comma-separated, once a linearizable read succeeds.
func startEtcd(t *testing.T, logDir string) string {
	t.Helper()
	const n = 3
	var clientURLs, peerURLs, initial []string
	for i := range n {
		clientURLs = append(clientURLs, "http://"+freeAddr(t))
		peerURLs = append(peerURLs, "http://"+freeAddr(t))
		initial = append(initial, fmt.Sprintf("e%d=%s", i+1, peerURLs[i]))
	}
	var env []string
	if runtime.GOARCH != "amd64" {
		// etcd 3.4 refuses to start on other architectures without it.
		env = append(env, "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	}
	var exited []<-chan struct{}
	for i := range n {
		exited = append(exited, startProcess(t, logDir, fmt.Sprintf("etcd-e%d", i+1), env, "etcd",
			"--name", fmt.Sprintf("e%d", i+1), "--data-dir", t.TempDir(),
			"--listen-client-urls", clientURLs[i], "--advertise-client-urls", clientURLs[i],
			"--listen-peer-urls", peerURLs[i], "--initial-advertise-peer-urls", peerURLs[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "elcache-bench"))
	}
	endpoints := strings.Join(clientURLs, ",")
	for i, u := range clientURLs {
		// Each member answers a linearizable read only once the cluster
		// has a leader and it has caught up.
		waitFor(t, fmt.Sprintf("etcd e%d", i+1), exited[i], 60*time.Second, func(ctx context.Context) error {
			tgt, err := bench.NewEtcdTarget(ctx, &bench.TargetFlags{Addr: u})
			if err != nil {
				return err
			}
			return tgt.Close()
		})
	}
	return endpoints
}

// herdSize is the concurrent misses of one key in a herd round.
const herdSize = 1000

// runHerds measures the refill's single flight: for each of rounds keys
// that only PostgreSQL holds, herdSize concurrent GETs through the Go
// client (LINEARIZABLE, so that each is a miss the leader must answer
// from the database), counting the database's loads with
// pg_stat_statements. It fails the test if a read fails or finds the
// wrong value, and returns the summary line for the report.
func runHerds(t *testing.T, seeds []string, pg *pgtest.Server, rounds int) string {
	t.Helper()
	ctx := t.Context()
	store, err := sqlstore.Open(ctx, pg.URL(), sqlstore.Options{CreateTable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	tgt, err := bench.NewElcacheTarget(cctx, seeds, "linearizable", "", "", false, nil)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	cl := tgt.(*bench.ElcacheTarget).Client()
	before := pg.Calls(t, sqlstore.LoadMarker)
	var worst time.Duration
	var failed atomic.Int64
	for i := range rounds {
		key := []byte(fmt.Sprintf("herd-%d-%d", time.Now().UnixNano(), i))
		want := []byte(fmt.Sprintf("row-%d", i))
		if _, err := store.Write(ctx, []sqlstore.Row{{Key: key, Value: want, Version: 1}}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var wg sync.WaitGroup
		for range herdSize {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				got, err := cl.Get(rctx, key)
				if err != nil || !bytes.Equal(got.Value, want) {
					if failed.Add(1) == 1 {
						t.Errorf("herd %d: get %s = %q, %v; want %q", i, key, got.Value, err, want)
					}
				}
			}()
		}
		wg.Wait()
		worst = max(worst, time.Since(start))
	}
	loads := pg.Calls(t, sqlstore.LoadMarker) - before
	return fmt.Sprintf("refill herd: %d rounds of %d concurrent misses of one key cost %d database loads (%.2f per round), %d failed reads; slowest round %v",
		rounds, herdSize, loads, float64(loads)/float64(rounds), failed.Load(), worst.Round(time.Millisecond))
}
