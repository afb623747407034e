// Package storage is an elcache node's local engine: one Pebble database per
// node holding every partition's entries (under a per-partition key prefix),
// the partitions' Raft logs and stable state, and their snapshot metadata.
//
// The package knows nothing of the node, of Raft group placement or of the
// network. It offers:
//
//   - DB: the Pebble database and its key layout (keys.go).
//   - Entry: a stored value with version, expiry and flags (entry.go).
//   - Partition: the per-partition state machine storage: apply batches that
//     carry the applied Raft index, reads that never return expired entries,
//     scans, expiry and eviction sampling (partition.go), the dirty keys of
//     write-back (dirty.go), recency (recency.go), and IdemSet, the hint of
//     which idempotency keys have a record (idemset.go).
//   - LogStore: a raft.LogStore and raft.StableStore for one Raft group on
//     the same database (logstore.go). Its log lives in the node's Raft log
//     engine: raftlog.go (layout, index, reads), raftlog_replay.go (open),
//     raftlog_write.go, raftlog_sync.go (group commit) and
//     raftlog_collect.go (segment deletion).
//   - SnapshotStore: a raft.SnapshotStore that does not copy the partition's
//     data for local snapshots (snapshot.go).
package storage
