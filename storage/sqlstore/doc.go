// Package sqlstore keeps elcache's entries in the user's database, SQLite or
// PostgreSQL, for the write modes (write-through, write-back, write-around)
// and for refilling cache misses.
//
// The database holds one versioned table, one row per key:
//
//	key              bytea/BLOB primary key
//	value            bytea/BLOB (empty for a tombstone)
//	version          bigint > 0: the elcache version (Raft index) of the write
//	deleted          boolean: the row is a tombstone
//	idempotency_key  text: the UUIDv7 of the write that produced the row
//	updated_at       timestamp: when the database last changed the row
//
// Rows only move forward. Every write is a version-guarded upsert: a row is
// inserted, or replaces the stored one only if the stored version is lower.
// An equal or older version is a no-op, so a flusher may replay a batch
// after a crash or a timeout, and batches may arrive out of order, without
// moving a key backwards. A delete is a tombstone upsert under the same
// guard, so a late put can never resurrect a deleted key; tombstones are
// never removed by this package.
//
// A Store is opened from a URL:
//
//	sqlite:///absolute/path.db     SQLite file (WAL, synchronous=FULL)
//	sqlite://relative/path.db      SQLite file relative to the working directory
//	postgres://user@host:5432/db   PostgreSQL through a pgx connection pool
//	postgresql://...               the same
//
// Errors are wrapped driver errors; IsTransient tells whether retrying the
// operation could succeed (the database is unreachable, restarting, busy or
// reported a serialization failure or deadlock) or not (bad SQL, missing
// table, permissions, invalid rows).
//
// The SQL the package runs carries the markers LoadMarker and WriteMarker as
// comments, so tests can count statements in pg_stat_statements (see the
// pgtest package).
package sqlstore
