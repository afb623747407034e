//go:build jepsen

package jepsen

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/storage/sqlstore/pgtest"
)

// The runs themselves need root (network namespaces), PostgreSQL and a
// few minutes, so they build only with -tags jepsen: `make jepsen`,
// `make jepsen-quick`, `make jepsen-selftest`.

var (
	profileFlag  = flag.String("profile", "quick", "profiles to run, one after the other, comma-separated: quick, quick-near, full, ... (TestJepsen)")
	seedFlag     = flag.Int64("seed", 0, "seed of the fault schedule and the workload; 0 picks one from the clock")
	outFlag      = flag.String("out", "", "folder for the runs' results (default: jepsen-results/ in the repository)")
	durationFlag = flag.Duration("duration", 0, "workload duration, replacing the profile's")
	nearFlag     = flag.Bool("near-cache", false, "the set, session and bounded workloads read through near caches, whatever the profile says (Profile.NearCache)")
)

func seed() int64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	return time.Now().UnixNano() % 1_000_000
}

func outDir(t *testing.T, name string, seed int64) string {
	base := *outFlag
	if base == "" {
		base = filepath.Join("..", "jepsen-results")
	}
	dir, err := filepath.Abs(filepath.Join(base, fmt.Sprintf("%s-%s-seed%d", time.Now().Format("20060102-150405"), name, seed)))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// buildServer builds the elcache binary into dir, with the self-test
// switches compiled in when broken is set.
func buildServer(t *testing.T, dir string, broken bool) string {
	t.Helper()
	bin := filepath.Join(dir, "elcache")
	args := []string{"build", "-o", bin}
	if broken {
		args = append(args, "-tags", "elcache_break")
	}
	out, err := exec.Command("go", append(args, "../cmd/elcache")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the jepsen suite needs root: it creates network namespaces, a bridge and iptables rules")
	}
}

func runProfile(t *testing.T, pr Profile, s int64) Summary {
	t.Helper()
	dir := outDir(t, pr.Name, s)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := buildServer(t, t.TempDir(), len(pr.Break) > 0)
	pg := pgtest.Start(t)
	reproduce := fmt.Sprintf("make jepsen-run PROFILE=%s SEED=%d DURATION=%v", pr.Name, s, pr.Duration)
	if pr.NearCache && !Profiles[pr.Name].NearCache {
		reproduce += " NEAR_CACHE=1"
	}
	cfg := Config{Bin: bin, Out: dir, Database: pg.URL(), Profile: pr, Seed: s, Logf: t.Logf, Reproduce: reproduce}
	ctx, cancel := context.WithTimeout(context.Background(), pr.Duration+10*time.Minute)
	defer cancel()
	start := time.Now()
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run %s (seed %d): %v", pr.Name, s, err)
	}
	t.Logf("%s seed %d: valid=%v in %v; ops %v; writes by durability %v; near-cache hits %d; faults %v; anomalies %v; report %s",
		pr.Name, s, sum.Valid, time.Since(start).Round(time.Second), sum.Ops, sum.WritesByDurability, sum.NearHits, sum.Faults, sum.Anomalies,
		filepath.Join(dir, "index.html"))
	for _, r := range sum.Checkers {
		line := fmt.Sprintf("  %-34s valid=%-5v ops=%-6d anomalies=%d", r.Checker, r.Valid, r.Ops, len(r.Anomalies))
		if r.Note != "" {
			line += " (" + r.Note + ")"
		}
		t.Log(line)
		for _, a := range r.Anomalies[:min(3, len(r.Anomalies))] {
			t.Logf("    %s %s: %s", a.Kind, a.Key, a.Detail)
		}
	}
	return sum
}

// runAndJudge runs the named profile and fails the test unless it came out
// as it must: a self-test profile (one with broken switches) invalid with
// one of its expected anomaly kinds, any other profile valid.
func runAndJudge(t *testing.T, name string) {
	t.Helper()
	pr, err := LookupProfile(name, *durationFlag)
	if err != nil {
		t.Fatal(err)
	}
	pr.NearCache = pr.NearCache || *nearFlag
	sum := runProfile(t, pr, seed())
	if len(pr.Break) > 0 {
		if !pr.Caught(sum) {
			t.Errorf("broken switch %s not caught: anomalies %v, want one of %v", strings.Join(pr.Break, ","), sum.Anomalies, pr.Expect)
		}
		return
	}
	if !sum.Valid {
		t.Errorf("%s: anomalies %v (reproduce: %s)", pr.Name, sum.Anomalies, sum.Reproduce)
	}
}

// TestJepsen runs the profiles -profile names, one after the other: each
// valid, or, for a self-test profile, caught.
func TestJepsen(t *testing.T) {
	needRoot(t)
	for _, name := range strings.Split(*profileFlag, ",") {
		t.Run(name, func(t *testing.T) { runAndJudge(t, name) })
	}
}

// TestSelfTest runs every self-test profile: each breaks one promise in
// the nodes, and the suite must catch it.
func TestSelfTest(t *testing.T) {
	needRoot(t)
	for _, name := range SelfTests() {
		t.Run(name, func(t *testing.T) { runAndJudge(t, name) })
	}
}

// TestRegressions runs the scenarios that once exposed a bug; each must
// come out valid.
func TestRegressions(t *testing.T) {
	needRoot(t)
	for _, name := range Regressions() {
		t.Run(name, func(t *testing.T) { runAndJudge(t, name) })
	}
}
