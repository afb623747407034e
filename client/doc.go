// Package client is the Go client for an elcache cluster. It speaks the
// public gRPC API (package cachev1) to one node, which routes each request to
// the partition that owns the key.
//
// A Client is safe for concurrent use. Create one with New and release it
// with Close:
//
//	c, err := client.New(ctx, client.DefaultConfig())
//	if err != nil { ... }
//	defer c.Close()
//	if _, err := c.Put(ctx, []byte("k"), []byte("v"), client.WithTTL(time.Minute)); err != nil { ... }
//	e, err := c.Get(ctx, []byte("k"), client.WithConsistency(cachev1.Consistency_CONSISTENCY_LINEARIZABLE))
//
// Reads take ReadOptions (consistency level, staleness bound, session
// tokens); writes take WriteOptions (TTL, write mode, idempotency key). Every
// write carries an idempotency key, a fresh UUIDv7 unless the caller gives
// one, so the server applies a retried request once.
//
// Errors from the server are mapped to the exported sentinel errors
// (ErrNotFound, ErrInvalidArgument, ErrUnavailable, ErrDeadlineExceeded) and
// keep the server's message; test them with errors.Is. A missing key is
// ErrNotFound for Get, and a per-key Found flag for MultiGet. A
// compare-and-set whose expectation does not hold is not an error: it
// reports swapped == false and the current version.
package client
