// Package client is the Go client for an elcache cluster.
//
// A Client learns the partition map from its seeds and keeps it current,
// computes each key's partition itself, and sends every request straight
// to a node that can serve it: writes and LINEARIZABLE or LEASE reads to the
// partition's leader, BOUNDED, SESSION and EVENTUAL reads to the nearest
// replica. It retries what a retry can fix (a leader change, a lost
// connection, a full write-back backlog) with exponential backoff and full
// jitter until the call's context ends, avoids failing nodes with a circuit
// breaker per node, races a slow BOUNDED or EVENTUAL read against a second
// replica, and keeps session tokens per partition so that SESSION reads
// give read-your-writes across the keyspace. Requests to a node share one
// pipelined stream.
//
// A Client is safe for concurrent use. Create one with New and release it
// with Close:
//
//	c, err := client.New(ctx, client.Config{Seeds: []string{"10.0.0.1:7400"}})
//	if err != nil { ... }
//	defer c.Close()
//	if _, err := c.Put(ctx, []byte("k"), []byte("v"), client.WithTTL(time.Minute)); err != nil { ... }
//	e, err := c.Get(ctx, []byte("k"), client.WithConsistency(cachev1.Consistency_CONSISTENCY_LINEARIZABLE))
//
// Reads take ReadOptions (consistency level, staleness bound, session
// tokens); writes take WriteOptions (TTL, write mode, durability,
// idempotency key). Every write carries an idempotency key, a fresh UUIDv7 unless the caller gives
// one, so the cluster applies a retried request once; give requests a
// deadline, since retries go on until the context ends or MaxAttempts.
//
// Errors from the server are mapped to the exported sentinel errors
// (ErrNotFound, ErrInvalidArgument, ErrUnavailable, ErrDeadlineExceeded) and
// keep the server's message; test them with errors.Is. A missing key is
// ErrNotFound for Get, and a per-key Found flag for MultiGet. A
// compare-and-set whose expectation does not hold is not an error: it
// reports swapped == false and the current version.
package client
