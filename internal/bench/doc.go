// Package bench is elcache's benchmark: YCSB's core workloads (A, B, C and
// the write-heavy W) over uniform or zipfian keys, in closed or open loop,
// against an elcache cluster at a read level and write mode of choice, or
// against Redis or etcd under the same load, reported as a table of
// throughput and latency quantiles and, for the record, as JSON.
//
// Two commands share it, with the same flags: elcache-bench (the
// comparison tool the Makefile and the docs call) and "elcachectl bench"
// (what a user of the CLI guesses). ParseFlags reads their command line
// into Options and Options.Execute runs it. Run is the engine both use,
// and the comparison of cmd/elcache-bench's benchcompare tests with it:
//
//   - runner.go: Run, workers in closed or open loop, warm-up and load;
//   - workload.go: the key space, uniform and scrambled zipfian keys, the
//     read/update mix;
//   - hist.go: the latency histogram;
//   - target*.go: the systems measured (Target), elcache through the Go
//     client, Redis and etcd through theirs;
//   - check.go: the read check (-check): values that name their write,
//     and each read held to its level's staleness bound;
//   - near.go: what an elcache client's near cache (-near-cache) did in
//     the measured phase, and the benchmark's live heap;
//   - command.go: the flags and Execute;
//   - output.go, progress.go, report.go: the table, the progress bar, the
//     JSON file, and bench-compare's HTML and Markdown report.
//   - redisbenchmark.go: redis-benchmark's runs and its --csv output, for
//     bench-compare's runs over the Redis protocol (RESP), against
//     elcache's Redis port and against Redis.
package bench
