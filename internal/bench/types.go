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
	Seed int64
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
}
