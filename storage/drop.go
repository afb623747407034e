package storage

import (
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
)

// DropReplica deletes everything a node holds for one partition replica:
// the partition's entries and metadata, the Raft log and the snapshot
// records of its group: the log first, then the rest in one synced batch.
// The group's stable store (term
// and vote) stays: a replica that is placed here again later must not vote
// twice in a term it already voted in, and a non-zero term keeps Raft from
// treating the group as new (so it is never bootstrapped again; it waits
// for its leader to send a snapshot). Partition and LogStore handles opened
// before the drop must not be used after it.
func (d *DB) DropReplica(partition uint32, group uint64) error {
	// The log goes first, synced: a crash before the batch below leaves
	// the replica's state and snapshot record with no log after them,
	// which is a replica whose log was compacted, not one whose log
	// starts after its missing state.
	if err := d.logs.deleteRange(group, 0, math.MaxUint64); err != nil {
		return fmt.Errorf("storage: drop partition %d: %w", partition, err)
	}
	if err := d.logs.sync(); err != nil {
		return fmt.Errorf("storage: drop partition %d: %w", partition, err)
	}
	b := d.pdb.NewBatch()
	defer b.Close()
	ranges := [][]byte{
		dataPrefix(partition),
		metaKey(partition, ""),
		groupPrefix(spaceSnapshot, group),
	}
	for _, p := range ranges {
		if err := b.DeleteRange(p, prefixEnd(p), nil); err != nil {
			return fmt.Errorf("storage: drop partition %d: %w", partition, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("storage: drop partition %d: %w", partition, err)
	}
	if d.rows != nil {
		d.rows.clear()
	}
	return nil
}

// HasSnapshot reports whether Raft group group has a snapshot record.
func (d *DB) HasSnapshot(group uint64) (bool, error) {
	pfx := groupPrefix(spaceSnapshot, group)
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: pfx, UpperBound: prefixEnd(pfx)})
	if err != nil {
		return false, err
	}
	found := it.First()
	return found, errors.Join(it.Error(), it.Close())
}
