package storage

import (
	"cmp"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// dirtySet is a partition's index of dirty entries (write-back values and
// deletes not yet in the backing database), in memory: it is rebuilt from
// the entries when the partition opens or restores a snapshot, and kept up
// by every batch commit. Its size is bounded by the write-back backlog.
type dirtySet struct {
	mu   sync.Mutex
	keys map[string]uint64 // key -> version of its dirty entry
}

// DirtyKey is a key with a dirty entry and that entry's version.
type DirtyKey struct {
	Key     []byte
	Version uint64
}

// Dirty returns up to limit keys with dirty entries, oldest version first,
// as last committed.
func (p *Partition) Dirty(limit int) []DirtyKey {
	p.dirty.mu.Lock()
	out := make([]DirtyKey, 0, len(p.dirty.keys))
	for k, v := range p.dirty.keys {
		out = append(out, DirtyKey{Key: []byte(k), Version: v})
	}
	p.dirty.mu.Unlock()
	slices.SortFunc(out, func(a, b DirtyKey) int { return cmp.Compare(a.Version, b.Version) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// rebuildDirty scans the partition for dirty entries.
func (p *Partition) rebuildDirty() error {
	keys := make(map[string]uint64)
	if p.State().Dirty > 0 {
		it, err := p.db.pdb.NewIter(&pebble.IterOptions{LowerBound: p.prefix, UpperBound: p.end})
		if err != nil {
			return err
		}
		for valid := it.First(); valid; valid = it.Next() {
			raw, err := it.ValueAndErr()
			if err != nil {
				it.Close()
				return err
			}
			if len(raw) >= entryHeaderLen && raw[1]&FlagDirty != 0 {
				e, err := DecodeEntry(it.Key()[len(p.prefix):], raw)
				if err != nil {
					it.Close()
					return err
				}
				keys[string(e.Key)] = e.Version
			}
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	p.dirty.mu.Lock()
	p.dirty.keys = keys
	p.dirty.mu.Unlock()
	return nil
}

// noteDirty records, in a batch, a key's dirty state after a write: the
// version of its dirty entry, or 0 when it has none.
func (b *Batch) noteDirty(key []byte, version uint64) {
	if b.dirty == nil {
		b.dirty = make(map[string]uint64)
	}
	b.dirty[string(key)] = version
}

// applyDirty applies a committed batch's dirty changes to the index.
func (p *Partition) applyDirty(changes map[string]uint64) {
	if len(changes) == 0 {
		return
	}
	p.dirty.mu.Lock()
	defer p.dirty.mu.Unlock()
	if p.dirty.keys == nil {
		p.dirty.keys = make(map[string]uint64)
	}
	for k, v := range changes {
		if v == 0 {
			delete(p.dirty.keys, k)
		} else {
			p.dirty.keys[k] = v
		}
	}
}
