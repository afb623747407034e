// Package jepsen is elcache's partition and fault test suite, in the
// manner of Jepsen: it starts real elcache processes, each in a network
// namespace of its own (veth pairs on a bridge), in front of a real
// PostgreSQL reached through one relay per node; runs client processes
// that record every operation (one outstanding each, on one monotonic
// clock, with unique values, the write's durability, and an ok, fail or
// unknown outcome); injects faults on a seeded schedule (partitions,
// SIGKILL of one node or of all at once, SIGSTOP, packet loss and slow
// links, a leader's disk frozen, database link faults, membership
// changes); heals everything; and checks the history:
// linearizability of LINEARIZABLE and LEASE reads (porcupine, by key),
// stale reads by real-time order, bounded staleness and session
// guarantees from the reads' proofs, lost and stale set elements, the
// write modes' promises against the database's own audit log, and the
// convergence of all replicas. A near-cache run (Profile.NearCache,
// profile quick-near) sends the set, session and bounded workloads'
// reads through Go clients with near caches, under the same checkers,
// and fails if the near caches served none of a workload's reads.
//
// Run writes a folder per run: history.jsonl, nemesis.log, results.json,
// index.html (verdict, checkers, anomalies, latency and throughput over
// time with the fault windows), linearizability.html (porcupine's
// timeline annotated with the faults) and the nodes' logs.
//
// The runs need root and build only with -tags jepsen (jepsen_test.go):
// `make jepsen`, `make jepsen-quick`, `make jepsen-selftest`,
// `make jepsen-run PROFILE=... SEED=...`. The checkers and the report are
// plain code with unit tests in every build.
//
// The self-test profiles run nodes built with -tags elcache_break and
// ELCACHE_BREAK set, each breaking one promise (a lease read without the
// lease check, a write-back flush that marks rows clean before writing
// them, a refill without its fence, a REPLICATED write acknowledged from
// memory, a Changes stream that loses the near caches' invalidations);
// the suite must report each.
package jepsen
