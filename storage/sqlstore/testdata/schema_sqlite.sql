-- elcache's table in the backing database (sqlite): one row per key.
-- Rows only move to higher versions; deleted rows are tombstones.
CREATE TABLE IF NOT EXISTS "elcache_entries" (
    "key"             BLOB NOT NULL PRIMARY KEY,
    "value"           BLOB NOT NULL,
    "version"         INTEGER NOT NULL CHECK ("version" > 0),
    "deleted"         INTEGER NOT NULL DEFAULT 0 CHECK ("deleted" IN (0, 1)),
    "idempotency_key" TEXT NOT NULL DEFAULT '',
    "updated_at"      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) WITHOUT ROWID;
