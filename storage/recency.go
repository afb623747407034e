package storage

import (
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Recency remembers, approximately, when each key was last read. It is a
// fixed array of second-resolution clocks indexed by a hash of (partition,
// key): memory stays constant whatever the number of keys, and a collision
// only makes a key look more recently used than it is, so eviction errs
// toward keeping data. It is safe for concurrent use without locks.
type Recency struct {
	start time.Time
	slots []atomic.Uint32
	mask  uint64
}

// NewRecency returns a Recency with 2^bits slots (4 bytes each).
func NewRecency(bits uint) *Recency {
	n := uint64(1) << bits
	return &Recency{start: time.Now(), slots: make([]atomic.Uint32, n), mask: n - 1}
}

func (r *Recency) slot(partition uint32, key []byte) *atomic.Uint32 {
	h := xxhash.Sum64(key) ^ uint64(partition)*0x9e3779b97f4a7c15
	return &r.slots[h&r.mask]
}

// at returns the seconds from the Recency's creation to now, starting at
// 1 so that zero means "never read".
func (r *Recency) at(now time.Time) uint32 { return uint32(now.Sub(r.start)/time.Second) + 1 }

// TouchAt records a read of key at now.
func (r *Recency) TouchAt(partition uint32, key []byte, now time.Time) {
	s := r.slot(partition, key)
	if sec := r.at(now); s.Load() != sec {
		s.Store(sec)
	}
}

// LastUse returns when an entry was last used, as Unix nanoseconds at
// second resolution: the later of its last read and its write.
func (r *Recency) LastUse(partition uint32, e Entry) int64 {
	last := e.WrittenAt
	if s := r.slot(partition, e.Key).Load(); s != 0 {
		if read := r.start.Add(time.Duration(s-1) * time.Second).UnixNano(); read > last {
			last = read
		}
	}
	return last
}
