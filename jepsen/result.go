package jepsen

// Anomaly is one broken promise a checker found.
type Anomaly struct {
	// Kind names the broken promise, e.g. "nonlinearizable",
	// "bounded-stale-read", "session-read-your-writes",
	// "session-monotonic-reads", "lost-element", "db-missing-write",
	// "db-version-order", "db-final-version", "divergent-replicas".
	Kind string `json:"kind"`
	Key  string `json:"key,omitempty"`
	// Detail says what was seen against what was promised, naming the
	// operations (process, times, values, versions).
	Detail string `json:"detail"`
	// At is when it happened on the run's clock (0 if not one moment).
	At int64 `json:"at,omitempty"`
}

// Result is one checker's verdict.
type Result struct {
	Checker string `json:"checker"`
	Valid   bool   `json:"valid"`
	// Ops is how many operations the checker examined.
	Ops       int       `json:"ops"`
	Anomalies []Anomaly `json:"anomalies,omitempty"`
	// Figures are checker-specific numbers, e.g. visibility latency
	// quantiles in milliseconds ("visibility_p50_ms").
	Figures map[string]float64 `json:"figures,omitempty"`
	// Note explains a verdict that is not about anomalies (e.g. the
	// linearizability search timed out, which counts as invalid).
	Note string `json:"note,omitempty"`
}

// maxAnomalies bounds the anomalies a checker lists; the rest are
// counted in the Figures as "anomalies_total".
const maxAnomalies = 50
