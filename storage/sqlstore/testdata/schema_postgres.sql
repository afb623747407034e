-- elcache's table in the backing database (postgres): one row per key.
-- Rows only move to higher versions; deleted rows are tombstones.
CREATE TABLE IF NOT EXISTS "elcache_entries" (
    "key"             bytea PRIMARY KEY,
    "value"           bytea NOT NULL,
    "version"         bigint NOT NULL CHECK ("version" > 0),
    "deleted"         boolean NOT NULL DEFAULT false,
    "idempotency_key" text NOT NULL DEFAULT '',
    "updated_at"      timestamptz NOT NULL DEFAULT now()
);
