package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/elcache/elcache/internal/bench"
	"github.com/elcache/elcache/node/nodetest"
)

func TestBenchHelp(t *testing.T) {
	for _, args := range [][]string{{"bench", "--help"}, {"bench", "-h"}, {"bench", "-workload", "B", "-help"}} {
		code, stdout, stderr := runArgs(args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "Usage: elcachectl [--addr HOST:PORT] bench") {
			t.Errorf("%q: exit %d, stdout %.50q, stderr %q; want 0 and the bench usage on stdout", args, code, stdout, stderr)
		}
		for _, flag := range []string{"-target", "-addr", "-workload", "-clients", "-duration", "-warmup", "-keys", "-consistency", "-mode", "-durability", "-rate", "-json"} {
			if !strings.Contains(stdout, "\n  "+flag+" ") && !strings.Contains(stdout, "\n  "+flag+"\n") {
				t.Errorf("%q: the usage does not list %s", args, flag)
			}
		}
	}
}

func TestBenchUsageErrors(t *testing.T) {
	dead := deadAddr(t)
	for _, tt := range []struct {
		args []string
		msgs []string
	}{
		{[]string{"bench", "-workload", "Q", "-dist", "pareto"}, []string{`elcachectl: bench: unknown workload "Q"`, "distribution"}},
		{[]string{"bench", "-bogus"}, []string{"elcachectl: bench: flag provided but not defined: -bogus"}},
		{[]string{"bench", "extra"}, []string{"elcachectl: bench: unexpected arguments"}},
		{[]string{"bench", "-consistency", "strong"}, []string{"unknown consistency"}},
	} {
		code, stdout, stderr := runArgs(append([]string{"--addr", dead}, tt.args...)...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "Usage: elcachectl") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", tt.args, code, stdout, stderr)
		}
		for _, msg := range tt.msgs {
			if !strings.Contains(stderr, msg) {
				t.Errorf("%q: stderr %q does not say %s", tt.args, stderr, msg)
			}
		}
	}
}

// TestBench runs a short benchmark against a real node: with no -addr it
// measures the node at elcachectl's --addr, and the global --timeout
// (shorter than the run) does not cut it short.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	addr := nodetest.Start(t).Addr()
	path := filepath.Join(t.TempDir(), "out.json")
	stdout, stderr := cli(t, addr, 0, "--timeout", "500ms", "bench", "-duration", "1s", "-warmup", "0", "-keys", "100", "-clients", "2", "-json", path)
	if !strings.Contains(stdout, "elcache/default") || !strings.Contains(stderr, "measure") {
		t.Errorf("stdout %q, stderr %q: want the table and the progress", stdout, stderr)
	}
	rf, err := bench.ReadResultsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rf.Results) != 1 {
		t.Fatalf("results %+v, want one", rf.Results)
	}
	r := rf.Results[0]
	if r.Target != "elcache/default" || r.Workload != "A" || r.Ops["all"].Count == 0 || r.Throughput <= 0 {
		t.Errorf("result %+v: want workload A with operations", r)
	}
	for op, s := range r.Ops {
		if s.Errors != 0 {
			t.Errorf("%s: %d errors", op, s.Errors)
		}
	}
}
