package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ResultsFile is the JSON file of -json: the machine that ran the
// benchmark, then the results.
type ResultsFile struct {
	// Machine has the keys of CurrentMachine.
	Machine map[string]string `json:"machine"`
	Results []Result          `json:"results"`
	// Measured holds figures that are not runs, by name: bench-compare's
	// "failover" and "memory".
	Measured map[string]any `json:"measured,omitempty"`
}

// CurrentMachine describes this machine and build, now: "cpu" (model
// from /proc/cpuinfo, if known), "cores", "go", "os" (GOOS/GOARCH),
// "date" (RFC 3339) and "commit" (the VCS revision the binary was built
// from, if known).
func CurrentMachine() map[string]string {
	m := map[string]string{
		"cores": strconv.Itoa(runtime.NumCPU()),
		"go":    runtime.Version(),
		"os":    runtime.GOOS + "/" + runtime.GOARCH,
		"date":  time.Now().Format(time.RFC3339),
	}
	if cpu := cpuModel("/proc/cpuinfo"); cpu != "" {
		m["cpu"] = cpu
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				m["commit"] = s.Value
			}
		}
	}
	return m
}

// cpuModel returns the first "model name" in a /proc/cpuinfo file, or ""
// if there is none (another OS, or an ARM kernel that does not name it).
func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// WriteResultsFile writes rf to path as indented JSON.
func WriteResultsFile(path string, rf ResultsFile) error {
	b, err := json.MarshalIndent(rf, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: write results: %w", err)
	}
	return nil
}

// ReadResultsFile reads a file written by WriteResultsFile.
func ReadResultsFile(path string) (ResultsFile, error) {
	var rf ResultsFile
	b, err := os.ReadFile(path)
	if err != nil {
		return rf, fmt.Errorf("bench: read results: %w", err)
	}
	if err := json.Unmarshal(b, &rf); err != nil {
		return rf, fmt.Errorf("bench: read results %s: %w", path, err)
	}
	return rf, nil
}

// printTable writes rs as an aligned table, latencies in milliseconds.
func printTable(w io.Writer, rs []Result) error {
	// Numbers align right; the target names, padded here, left.
	width := len("target")
	for _, r := range rs {
		width = max(width, len(r.Target))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\t", width, "target")
	fmt.Fprintln(tw, "workload\tdist\tclients\trate\tops/s\tread p50 ms\tread p99 ms\tupdate p50 ms\tupdate p99 ms\terrors\t")
	for _, r := range rs {
		rate := "closed"
		if r.Rate > 0 {
			rate = fmtRate(r.Rate)
		}
		var errs int64
		for k, s := range r.Ops {
			if k != "all" {
				errs += s.Errors
			}
		}
		rd, up := r.Ops["read"], r.Ops["update"]
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n",
			width, r.Target, r.Workload, r.Distribution, r.Clients, rate, fmtRate(r.Throughput),
			ms(rd, rd.P50), ms(rd, rd.P99), ms(up, up.P50), ms(up, up.P99), errs)
	}
	return tw.Flush()
}

// ms formats us microseconds as milliseconds, or "-" if s counted nothing.
func ms(s OpStats, us float64) string {
	if s.Count == 0 {
		return "-"
	}
	return sig3(us / 1000)
}

// sig3 formats v (>= 0) with 3 significant digits, without exponent.
func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	case v >= 0.1:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.4f", v)
}

// printExtras writes, after the table, what r measured beyond it: the
// near cache, the heap, the read check.
func printExtras(w io.Writer, r Result) error {
	var b strings.Builder
	for _, l := range ExtraLines(r) {
		fmt.Fprintf(&b, "%s: %s\n", r.Target, l)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ExtraLines describes what r measured beyond throughput and latency, a
// line each: its near cache, the benchmark's heap, the read check.
func ExtraLines(r Result) []string {
	var lines []string
	if n := r.Near; n != nil {
		lines = append(lines, fmt.Sprintf("near cache hit ratio %.2f%% (%s hits, %s misses in the measured phase), %s entries in %s, %s invalidations, %d reconnects",
			100*n.HitRatio, FormatOps(float64(n.Hits)), FormatOps(float64(n.Misses)), FormatOps(float64(n.Entries)), FormatMiB(n.Bytes),
			FormatOps(float64(n.Invalidations)), n.Reconnects))
	}
	if r.HeapBytes > 0 {
		lines = append(lines, fmt.Sprintf("live Go heap of the benchmark after the run %s", FormatMiB(r.HeapBytes)))
	}
	if c := r.Check; c != nil {
		bound := "no staleness bound (wrong values only)"
		if c.Bound != "" {
			bound = "bound " + c.Bound
		}
		line := fmt.Sprintf("read check (%s): %s reads, %d stale, %d wrong", bound, FormatOps(float64(c.Reads)), c.Stale, c.Wrong)
		if c.First != "" {
			line += "; the first: " + c.First
		}
		lines = append(lines, line)
	}
	return lines
}

// FormatMiB formats a size in bytes as mebibytes.
func FormatMiB(b uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
