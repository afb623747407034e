package storage

import (
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// rowCache keeps the stored form of recently read entries (and their
// later writes) in front of Pebble, so that a point read of a hot key is
// a map lookup instead of a search of every memtable and level (a Pebble
// Get of a cached block still costs microseconds: DESIGN.md "The row
// cache").
//
// It never answers older than Pebble would. The invariant: an entry in
// the cache holds the value Pebble holds for its key. Writers keep it
// by changing the cache only after their Pebble commit, under the
// shard's lock, and bumping the shard's generation there; a reader that
// missed loads from Pebble and adds what it read only if the shard's
// generation is still the one it saw before its Pebble read. A write
// that committed after that read has bumped the generation, so its old
// value is dropped instead of cached; one that committed before it is
// in what the reader read.
//
// Memory is bounded by bytes (keys, values and a per-entry overhead);
// eviction is CLOCK (second chance), per shard.
type rowCache struct {
	shards []rowShard
}

const (
	rowShards = 64
	// rowOverhead is what an entry costs beyond its key and value: its
	// place in the index map and its slot.
	rowOverhead = 64
)

type rowShard struct {
	// gen counts the shard's changes by writers; it is written under mu
	// and read without it before a Pebble read.
	gen atomic.Uint64

	mu sync.Mutex
	// index maps a key's hash to its slot. Keys are found by hash, so a
	// lookup compares one key, in the slot's own buffer, and touches no
	// other memory; two keys with one hash share a slot (the later
	// replaces the earlier).
	index map[uint64]int32
	slots []rowSlot
	free  []int32 // positions of empty slots
	hand  int     // the CLOCK hand, a position in slots
	bytes int64
	max   int64
	// hits and misses count get's answers (under mu, which get holds
	// anyway: no shared counter for the cores to fight over).
	hits, misses uint64

	_ [64]byte // keeps neighbouring shards' locks off one cache line
}

type rowSlot struct {
	hash uint64
	buf  []byte // the key, then its stored form; nil: empty slot
	klen int32
	used bool // read since the hand last passed
}

// newRowCache returns a cache of at most maxBytes, or nil (no cache) when
// maxBytes is too small to be worth one.
func newRowCache(maxBytes int64) *rowCache {
	if maxBytes < 1<<20 {
		return nil
	}
	c := &rowCache{shards: make([]rowShard, rowShards)}
	for i := range c.shards {
		c.shards[i].index = map[uint64]int32{}
		c.shards[i].max = maxBytes / rowShards
	}
	return c
}

func (c *rowCache) shard(h uint64) *rowShard { return &c.shards[h%rowShards] }

// fits reports whether an entry of key and raw is small enough to cache:
// at most an eighth of the shard, so that one entry never empties it.
func (s *rowShard) fits(key, raw []byte) bool {
	return int64(len(key)+len(raw)+rowOverhead) <= s.max/8
}

// get returns key's stored form, or false on a miss, with the generation
// a load after the miss must pass to add. The stored form is never
// changed in place (a write replaces the slot's buffer): the caller may
// read it after get returns, and must not change it.
func (c *rowCache) get(key []byte) (raw []byte, gen uint64, ok bool) {
	h := xxhash.Sum64(key)
	s := c.shard(h)
	gen = s.gen.Load()
	s.mu.Lock()
	if i, found := s.index[h]; found {
		sl := &s.slots[i]
		if string(sl.buf[:sl.klen]) == string(key) {
			sl.used = true
			raw, ok = sl.buf[sl.klen:], true
		}
	}
	if ok {
		s.hits++
	} else {
		s.misses++
	}
	s.mu.Unlock()
	return raw, gen, ok
}

// fill adds what a reader loaded from Pebble after a miss with
// generation gen, unless a writer changed the shard since.
func (c *rowCache) fill(key, raw []byte, gen uint64) {
	h := xxhash.Sum64(key)
	s := c.shard(h)
	if !s.fits(key, raw) {
		return
	}
	s.mu.Lock()
	if s.gen.Load() == gen {
		if _, ok := s.index[h]; !ok {
			s.insertLocked(h, key, raw)
		}
	}
	s.mu.Unlock()
}

// written records a committed write: key now holds raw (nil: deleted).
// A key the cache holds takes the new value (a hot key stays hot across
// its writes); a write does not add a key the cache does not hold, so
// that keys loaded and never read cost no memory here. Either way a load
// that read Pebble before the write will not add the old value.
func (c *rowCache) written(key, raw []byte) {
	h := xxhash.Sum64(key)
	s := c.shard(h)
	s.mu.Lock()
	s.gen.Add(1)
	if i, ok := s.index[h]; ok {
		used := s.slots[i].used
		s.removeLocked(i)
		if raw != nil && s.fits(key, raw) {
			s.insertLocked(h, key, raw)
			s.slots[s.index[h]].used = used
		}
	}
	s.mu.Unlock()
}

// clear empties the cache, after a write that changed many keys at once
// (a snapshot restored, a replica dropped).
func (c *rowCache) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.gen.Add(1)
		clear(s.index)
		s.slots, s.free, s.hand, s.bytes = nil, nil, 0, 0
		s.mu.Unlock()
	}
}

// insertLocked adds a copy of key and raw under hash h, which no slot
// holds.
func (s *rowShard) insertLocked(h uint64, key, raw []byte) {
	size := int64(len(key) + len(raw) + rowOverhead)
	for s.bytes+size > s.max && s.evictLocked() {
	}
	var i int32
	if n := len(s.free); n > 0 {
		i, s.free = s.free[n-1], s.free[:n-1]
	} else {
		s.slots = append(s.slots, rowSlot{})
		i = int32(len(s.slots) - 1)
	}
	buf := make([]byte, 0, len(key)+len(raw))
	buf = append(append(buf, key...), raw...)
	s.slots[i] = rowSlot{hash: h, buf: buf, klen: int32(len(key))}
	s.index[h] = i
	s.bytes += size
}

func (s *rowShard) removeLocked(i int32) {
	sl := &s.slots[i]
	delete(s.index, sl.hash)
	s.bytes -= int64(len(sl.buf) + rowOverhead)
	*sl = rowSlot{}
	s.free = append(s.free, i)
}

// evictLocked removes one entry not read since the hand last passed it;
// false when the shard is empty.
func (s *rowShard) evictLocked() bool {
	if len(s.index) == 0 {
		return false
	}
	for {
		if s.hand >= len(s.slots) {
			s.hand = 0
		}
		sl := &s.slots[s.hand]
		i := int32(s.hand)
		s.hand++
		switch {
		case sl.buf == nil:
		case sl.used:
			sl.used = false
		default:
			s.removeLocked(i)
			return true
		}
	}
}

// RowCacheStats describe the row cache (DESIGN.md "The row cache").
type RowCacheStats struct {
	// Entries and Bytes are what it holds now (Bytes counts each entry's
	// bookkeeping too); MaxBytes is its bound, 0 when there is none.
	Entries         int
	Bytes, MaxBytes int64
	// Hits and Misses count the point reads it answered and those that
	// went to Pebble.
	Hits, Misses uint64
}

func (c *rowCache) stats() RowCacheStats {
	var st RowCacheStats
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Entries += len(s.index)
		st.Bytes += s.bytes
		st.MaxBytes += s.max
		st.Hits += s.hits
		st.Misses += s.misses
		s.mu.Unlock()
	}
	return st
}

// RowCacheStats returns the row cache's figures (zero without one).
func (d *DB) RowCacheStats() RowCacheStats {
	if d.rows == nil {
		return RowCacheStats{}
	}
	return d.rows.stats()
}
