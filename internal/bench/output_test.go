package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleResult() Result {
	return Result{
		Target: "elcache/eventual", Workload: "B", Distribution: "zipfian", Clients: 50,
		Duration: 30, Throughput: 123456,
		Ops: map[string]OpStats{
			"read":   {Count: 100, P50: 250, P99: 1234.5, Max: 5000},
			"update": {Count: 5, Errors: 2, P50: 1500, P99: 98765},
			"all":    {Count: 105, Errors: 2},
		},
		Timeline: []float64{1, 2, 3},
	}
}

func TestResultsFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	in := ResultsFile{Machine: CurrentMachine(), Results: []Result{sampleResult()}}
	if err := WriteResultsFile(path, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadResultsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("read back %+v, want %+v", out, in)
	}
	for _, k := range []string{"cores", "go", "os", "date"} {
		if out.Machine[k] == "" {
			t.Errorf("machine has no %q: %v", k, out.Machine)
		}
	}
	if _, err := ReadResultsFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("reading a missing file: no error")
	}
}

func TestCPUModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpuinfo")
	if err := os.WriteFile(path, []byte("processor\t: 0\nmodel name\t: Test CPU @ 3.00GHz\nflags\t: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := cpuModel(path); got != "Test CPU @ 3.00GHz" {
		t.Errorf("cpuModel = %q", got)
	}
}

func TestPrintTable(t *testing.T) {
	var b bytes.Buffer
	r2 := sampleResult()
	r2.Target, r2.Rate, r2.Ops = "redis", 20000, map[string]OpStats{"read": {Count: 1, P50: 80, P99: 95}}
	if err := printTable(&b, []Result{sampleResult(), r2}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), b.String())
	}
	for _, want := range []string{"elcache/eventual", "123k", "0.250", "1.23", "1.50", "98.8", "closed"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	if !strings.Contains(lines[2], "20.0k") || !strings.Contains(lines[2], "-") {
		t.Errorf("row %q: want the rate and - for no updates", lines[2])
	}
	if len(lines[0]) != len(lines[1]) {
		t.Errorf("columns not aligned:\n%s", b.String())
	}
}

func TestSig3(t *testing.T) {
	for v, want := range map[float64]string{0: "0.0000", 0.01234: "0.0123", 0.5: "0.500", 1.234: "1.23", 12.34: "12.3", 1234.5: "1234"} {
		if got := sig3(v); got != want {
			t.Errorf("sig3(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestProgressBarPlain(t *testing.T) {
	// A file is not a terminal: plain lines, one per phase change or
	// second, and one at the end.
	f, err := os.Create(filepath.Join(t.TempDir(), "progress"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Fatal("a file taken for a terminal")
	}
	cfg := smallConfig()
	cfg.Warmup, cfg.Duration = time.Second, 2*time.Second
	p := newProgressBar(f, false, "mem", cfg)
	p.Update(0, 0, 250)
	p.Update(100*time.Millisecond, 0, 500)
	p.Update(500*time.Millisecond, 3*time.Second, 10)
	p.Update(1500*time.Millisecond, 3*time.Second, 20)
	p.Update(3*time.Second, 3*time.Second, 30)
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if strings.Contains(out, "\r") {
		t.Errorf("plain output has \\r: %q", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 5 (load, its end, warm-up, measure, end):\n%s", len(lines), out)
	}
	for i, want := range []string{"load", "500/500 keys", "warm-up", "measure", "100.0%"} {
		if !strings.Contains(lines[i], want) || !strings.HasPrefix(lines[i], "mem") {
			t.Errorf("line %d %q lacks %q", i, lines[i], want)
		}
	}
}

func TestProgressBarTerminal(t *testing.T) {
	var b bytes.Buffer
	cfg := smallConfig()
	cfg.Warmup = time.Second
	p := newProgressBar(&b, true, "mem", cfg)
	p.Update(time.Second/2, 2*time.Second, 100)
	p.Update(2*time.Second, 2*time.Second, 200)
	out := b.String()
	if strings.Count(out, "\r") != 2 || !strings.HasSuffix(out, "\n") {
		t.Errorf("terminal output %q: want two redraws and a final newline", out)
	}
}
