package bench

import "time"

// RunConfig is one benchmark run against one target.
type RunConfig struct {
	// Workload is "A" (50% reads, 50% updates), "B" (95/5), "C" (reads
	// only) or "W" (5% reads, 95% updates: write-heavy).
	Workload string
	// Distribution of the keys: "uniform" or "zipfian" (YCSB's scrambled
	// zipfian, theta 0.99).
	Distribution string
	Keys         int           // key count; keys are "user" + zero-padded index
	ValueSize    int           // bytes per value
	Clients      int           // concurrent workers
	Duration     time.Duration // measured phase
	Warmup       time.Duration // run before measuring, results discarded
	// Rate, if positive, runs open loop: operations are scheduled at this
	// many per second in all, and latency counts from the scheduled time,
	// so queueing is not hidden. Zero runs closed loop.
	Rate float64
	// Load writes every key once before the run (so reads hit).
	Load bool
	// Check checks every read against the run's own writes (check.go):
	// values carry their write's id, so ValueSize must be at least 16.
	// It needs a target that reports versions (elcache).
	Check bool
	Seed  int64
}

// OpStats is what one kind of operation measured.
type OpStats struct {
	Count  int64 `json:"count"`
	Errors int64 `json:"errors"`
	// Latency quantiles in microseconds.
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
	Mean float64 `json:"mean_us"`
}

// Result is one run's outcome.
type Result struct {
	Target       string  `json:"target"`
	Workload     string  `json:"workload"`
	Distribution string  `json:"distribution"`
	Clients      int     `json:"clients"`
	Rate         float64 `json:"rate,omitempty"` // open loop target rate, ops/s
	Duration     float64 `json:"duration_s"`
	// Throughput is successful operations per second in the measured
	// phase.
	Throughput float64            `json:"throughput"`
	Ops        map[string]OpStats `json:"ops"` // "read", "update", "all"
	// Timeline is successful operations per second, second by second.
	Timeline []float64 `json:"timeline,omitempty"`
	// Near is what the elcache client's near cache did, if it had one.
	Near *NearStats `json:"near,omitempty"`
	// HeapBytes is the benchmark process's live Go heap after the run,
	// before the target closed (a near cache's entries included).
	HeapBytes uint64 `json:"heap_bytes,omitempty"`
	// Check is what checking the reads found (RunConfig.Check).
	Check *CheckStats `json:"check,omitempty"`
}

// NearStats describe an elcache client's near cache in a run: the reads
// it was asked to serve in the measured phase, and what it held at the
// end.
type NearStats struct {
	Hits   uint64 `json:"hits"`
	Misses uint64 `json:"misses"`
	// HitRatio is Hits / (Hits + Misses), 0 for no reads.
	HitRatio float64 `json:"hit_ratio"`
	// Invalidations counts the entries changes from the cluster dropped;
	// Reconnects the change streams opened again.
	Invalidations uint64 `json:"invalidations"`
	Reconnects    uint64 `json:"reconnects"`
	// Entries and Bytes are what the near cache held at the end (Bytes
	// as the cache weighs them: key, value and client.EntryOverhead).
	Entries int    `json:"entries"`
	Bytes   uint64 `json:"bytes"`
}

// CheckStats is what checking a run's reads found, warm-up included.
type CheckStats struct {
	// Bound is the staleness the target's reads promise ("" for none:
	// only wrong values are counted).
	Bound string `json:"bound,omitempty"`
	// Reads is the reads checked.
	Reads int64 `json:"reads"`
	// Stale reads returned a version older than one acknowledged more
	// than Bound before they began, or no value when one was.
	Stale int64 `json:"stale"`
	// Wrong reads returned a value the run wrote to another key, or at
	// another version than they reported.
	Wrong int64 `json:"wrong"`
	// First describes the first stale or wrong read, if any.
	First string `json:"first,omitempty"`
}

// Violations is the reads that broke the target's promise.
func (c *CheckStats) Violations() int64 {
	if c == nil {
		return 0
	}
	return c.Stale + c.Wrong
}
