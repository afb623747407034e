// Package backend is an elcache node's client of its backing database (the
// user's SQLite or PostgreSQL table, storage/sqlstore): it loads one key
// and writes batches of version-guarded rows, with retries, a circuit
// breaker and counters around every call (DESIGN.md "Database
// trouble").
//
// What it promises:
//
//   - Retries. A call that fails with an error the transient function
//     passed to New accepts (the node passes sqlstore.IsTransient: a lost
//     connection, a serialization failure, a lock wait that timed out) is
//     tried again, up to Config.Attempts tries in all. Before try n+1 it
//     waits a random time in [0, min(RetryMax, RetryBase*2^(n-1))] (full
//     jitter), and it does not start a wait that would end past the
//     caller's deadline: it returns the last error instead. Any other
//     error, and a caller that gave up, end the call at once.
//   - The breaker. Config.BreakerFailures consecutive failed tries open
//     it (every retry is a try). While open, for Config.BreakerCooldown,
//     every call fails at once without reaching the database; then 3
//     tries probe it (half-open): 3 successes in a row close it, a failure
//     opens it again, and other calls meanwhile fail at once. A try its
//     caller cancelled (context.Canceled) counts neither way, one that ran
//     out of time is a failure, and rows the database refuses for their
//     contents count as a success: the database is up, and one bad row
//     must not cut off every write.
//   - What callers see. Every failure wraps ErrUnavailable (the database
//     failed, or the breaker is open: the message then says "circuit
//     breaker open") or ErrRefused (the database, otherwise healthy,
//     refused the rows for what they hold; sending them again fails the
//     same way), with what was called and the underlying error as text. A
//     call that ends because the caller's context ended while waiting to
//     retry wraps ErrUnavailable too.
//
// Config also holds the node's settings for its write modes (negative
// caching, the write-back flusher and its backlog bound, the refill load
// timeout), so that one struct tunes the node's use of its database; the
// client only keeps them. The package knows nothing of the node.
package backend
