// Package metrics holds an elcache node's Prometheus metrics
// (docs/operations.md "Metrics") and serves them at /metrics; it also
// serves the Go profiler on the operator's admin address (http.go).
//
// Request metrics are counted as requests finish: the Cache service's
// RPCs by a unary interceptor, pipelined calls one by one (ObserveCall),
// streams the guard refused as errors of their method (RefusedStream).
// The RESP (Redis protocol) listener counts its connections and commands
// itself through Metrics.RESP (resp.go), under a fixed set of command
// names so that what clients send cannot grow the label values.
// Everything else is read from the node's state when Prometheus scrapes,
// so an idle node costs nothing; Go runtime and process metrics come
// along.
//
// The package knows nothing of the node: the node passes in a func that
// returns a Snapshot of plain values (its partitions' raft roles, indexes,
// keys and bytes; its counters; its database's backlog and breaker; its
// members by state), called on each scrape. Metric names, help texts and
// labels are what deploy/'s Grafana dashboard queries
// (deploy/dashboard_test.go checks them against a running node): renaming
// one changes the dashboard too.
package metrics
