package main

import (
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/elcache/elcache/internal/bench"
	"github.com/elcache/elcache/node/nodetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // in the error; none: no error
	}{
		{"defaults", nil, nil},
		{"elcache", []string{"-consistency", "bounded:2s", "-mode", "write_back", "-unary", "-rate", "1000"}, nil},
		{"elcache replicated", []string{"-workload", "A", "-mode", "cache_only", "-durability", "replicated"}, nil},
		{"elcache sync", []string{"-durability", "sync"}, nil},
		{"unknown durability", []string{"-durability", "fsync"}, []string{`unknown durability "fsync"`}},
		{"durability on redis", []string{"-target", "redis", "-durability", "replicated"}, []string{"-durability"}},
		{"near cache", []string{"-consistency", "bounded:100ms", "-near-cache", "-near-max-bytes", "1048576", "-check"}, nil},
		{"near bytes without near cache", []string{"-near-max-bytes", "1048576"}, []string{"-near-max-bytes needs -near-cache"}},
		{"negative near bytes", []string{"-near-cache", "-near-max-bytes", "-1"}, []string{"negative"}},
		{"near cache on redis", []string{"-target", "redis", "-near-cache"}, []string{"-near-cache"}},
		{"check on etcd", []string{"-target", "etcd", "-check"}, []string{"-check is for elcache"}},
		{"check with small values", []string{"-check", "-value-size", "8"}, []string{"at least 16 bytes"}},
		{"etcd", []string{"-target", "etcd", "-serializable"}, nil},
		{"redis", []string{"-target", "redis", "-mode", "appendfsync-always"}, nil},
		{"every problem", []string{"-workload", "Q", "-dist", "pareto", "-keys", "0", "-clients", "-1", "-duration", "-1s", "-warmup", "-1s", "-value-size", "-5", "-rate", "-1", "-consistency", "strong", "-mode", "x"},
			[]string{"workload", "distribution", "keys", "clients", "duration", "warm-up", "value size", "rate", "consistency", "write mode"}},
		{"unknown target", []string{"-target", "memcached"}, []string{"unknown target"}},
		{"elcache flag on etcd", []string{"-target", "etcd", "-consistency", "eventual", "-mode", "write_back"}, []string{"-consistency", "-mode"}},
		{"etcd flag on elcache", []string{"-serializable"}, []string{"-serializable"}},
		{"stray argument", []string{"extra"}, []string{"unexpected"}},
		{"bad number", []string{"-keys", "many"}, []string{"invalid value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			_, err := parseFlags(tc.args, &stderr)
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error() + stderr.String()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not mention %q: %s", w, msg)
				}
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	var out, errs strings.Builder
	if code := run([]string{"-workload", "Q"}, &out, &errs); code != 2 || !strings.Contains(errs.String(), "workload") {
		t.Errorf("bad flags: exit %d, stderr %q; want 2 and the problem", code, errs.String())
	}
	errs.Reset()
	// The client rejects a seed without a port before dialling.
	if code := run([]string{"-addr", "localhost", "-quiet"}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "HOST:PORT") {
		t.Errorf("bad address: exit %d, stderr %q; want 1 and the problem", code, errs.String())
	}
	if out.Len() > 0 {
		t.Errorf("failed runs wrote %q to stdout", out.String())
	}
}

// TestRunMain runs the command against a real node and reads its JSON.
func TestRunMain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	t.Parallel()
	n := nodetest.Start(t)
	path := filepath.Join(t.TempDir(), "out.json")
	var out, errs strings.Builder
	code := run([]string{"-addr", n.Addr(), "-consistency", "eventual", "-keys", "100", "-clients", "2",
		"-warmup", "0s", "-duration", "200ms", "-workload", "B", "-dist", "uniform", "-json", path}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "elcache/eventual") || !strings.Contains(errs.String(), "measure") {
		t.Errorf("stdout %q, stderr %q: want the table and the progress", out.String(), errs.String())
	}
	rf, err := bench.ReadResultsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rf.Results) != 1 || rf.Machine["go"] == "" {
		t.Fatalf("file %+v, want one result and the machine", rf)
	}
	r := rf.Results[0]
	if r.Target != "elcache/eventual" || r.Workload != "B" || r.Distribution != "uniform" || r.Ops["all"].Count == 0 {
		t.Errorf("result %+v", r)
	}

	// With the near cache and the read check, the table is followed by
	// their figures, which the JSON has too.
	out.Reset()
	errs.Reset()
	code = run([]string{"-addr", n.Addr(), "-consistency", "bounded:100ms", "-near-cache", "-check", "-keys", "100", "-clients", "2",
		"-warmup", "100ms", "-duration", "300ms", "-quiet", "-json", path}, &out, &errs)
	if code != 0 {
		t.Fatalf("near cache: exit %d: %s", code, errs.String())
	}
	for _, want := range []string{"elcache/bounded:100ms/near", "near cache hit ratio", "read check (bound 100ms)", "0 stale, 0 wrong"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("near cache: stdout %q does not mention %q", out.String(), want)
		}
	}
	if rf, err = bench.ReadResultsFile(path); err != nil {
		t.Fatal(err)
	}
	if r := rf.Results[0]; r.Near == nil || r.Check == nil || r.HeapBytes == 0 {
		t.Errorf("near cache: result %+v, want the near cache, the check and the heap", r)
	}
}
