package storage

import (
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// rowCache keeps the stored form of recently read and written entries in
// front of Pebble, so that a point read of a hot key is a map lookup
// instead of a search of every memtable and level (a Pebble Get of a
// cached block still costs microseconds: DESIGN.md "The row cache").
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
	// rowOverhead is what an entry costs beyond its key and value: the
	// map's bucket slot, the slot struct and the two slice headers.
	rowOverhead = 96
)

type rowShard struct {
	// gen counts the shard's changes by writers; it is written under mu
	// and read without it before a Pebble read.
	gen atomic.Uint64

	mu    sync.Mutex
	index map[string]int32 // key -> position in slots
	slots []rowSlot
	free  []int32 // positions of empty slots
	hand  int     // the CLOCK hand, a position in slots
	bytes int64
	max   int64

	_ [64]byte // keeps neighbouring shards' locks off one cache line
}

type rowSlot struct {
	key  string
	raw  []byte // nil: empty slot
	used bool   // read since the hand last passed
}

// newRowCache returns a cache of at most maxBytes, or nil (no cache) when
// maxBytes is too small to be worth one.
func newRowCache(maxBytes int64) *rowCache {
	if maxBytes < 1<<20 {
		return nil
	}
	c := &rowCache{shards: make([]rowShard, rowShards)}
	for i := range c.shards {
		c.shards[i].index = map[string]int32{}
		c.shards[i].max = maxBytes / rowShards
	}
	return c
}

func (c *rowCache) shard(key []byte) *rowShard {
	return &c.shards[xxhash.Sum64(key)%rowShards]
}

func (c *rowCache) shardString(key string) *rowShard {
	return &c.shards[xxhash.Sum64String(key)%rowShards]
}

// get returns a copy of key's stored form, or false on a miss, with the
// generation a load after the miss must pass to add.
func (c *rowCache) get(key []byte) (raw []byte, gen uint64, ok bool) {
	s := c.shard(key)
	gen = s.gen.Load()
	s.mu.Lock()
	i, ok := s.index[string(key)]
	if ok {
		sl := &s.slots[i]
		sl.used = true
		raw = sl.raw
	}
	s.mu.Unlock()
	// raw is never changed in place (a write replaces the slice), so the
	// caller may decode it after the lock.
	return raw, gen, ok
}

// fill adds what a reader loaded from Pebble after a miss with
// generation gen, unless a writer changed the shard since.
func (c *rowCache) fill(key, raw []byte, gen uint64) {
	s := c.shard(key)
	if int64(len(key)+len(raw)+rowOverhead) > s.max/8 {
		return
	}
	s.mu.Lock()
	if s.gen.Load() == gen {
		if _, ok := s.index[string(key)]; !ok {
			s.insertLocked(string(key), append([]byte(nil), raw...))
		}
	}
	s.mu.Unlock()
}

// set records a committed write: key now holds raw (nil: deleted).
// raw must not change afterwards.
func (c *rowCache) set(key string, raw []byte) {
	s := c.shardString(key)
	s.mu.Lock()
	s.gen.Add(1)
	if i, ok := s.index[key]; ok {
		s.removeLocked(i)
	}
	if raw != nil && int64(len(key)+len(raw)+rowOverhead) <= s.max/8 {
		s.insertLocked(key, raw)
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

func (s *rowShard) insertLocked(key string, raw []byte) {
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
	s.slots[i] = rowSlot{key: key, raw: raw}
	s.index[key] = i
	s.bytes += size
}

func (s *rowShard) removeLocked(i int32) {
	sl := &s.slots[i]
	delete(s.index, sl.key)
	s.bytes -= int64(len(sl.key) + len(sl.raw) + rowOverhead)
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
		case sl.raw == nil:
		case sl.used:
			sl.used = false
		default:
			s.removeLocked(i)
			return true
		}
	}
}

// stats returns the entries and bytes the cache holds.
func (c *rowCache) stats() (entries int, bytes int64) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		entries += len(s.index)
		bytes += s.bytes
		s.mu.Unlock()
	}
	return entries, bytes
}
