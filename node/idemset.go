package node

import (
	"hash/maphash"

	"github.com/elcache/elcache/storage"
)

// idemSet holds a 64-bit hash of every idempotency key a partition has a
// record of (fsm.go, metaIdemPfx), so that a write whose key was never
// seen, which is nearly every write, is applied without looking the key up
// in Pebble: that lookup, a memtable seek for a key that is not there,
// was a tenth of a node's CPU under replicated writes (issue 18).
//
// It follows the records exactly: a key is added when its record is
// written and removed when its record is aged out, in apply order, and
// the set is rebuilt from the records at start and after a snapshot is
// restored. Hashes that collide are counted, so removing one key never
// hides another. A hit is only a hint: the record itself decides, so the
// set can make a lookup unnecessary but never changes what a command does,
// and replicas cannot diverge through it.
//
// It costs about 10 bytes per record held (a record takes about 100 in
// Pebble); it is used by the apply goroutine only.
type idemSet struct {
	seed maphash.Seed
	n    map[uint64]uint32
}

func newIdemSet() *idemSet {
	return &idemSet{seed: maphash.MakeSeed(), n: make(map[uint64]uint32)}
}

func (s *idemSet) hash(key string) uint64 { return maphash.String(s.seed, key) }

// mayHave reports whether key may have a record.
func (s *idemSet) mayHave(key string) bool { return s.n[s.hash(key)] > 0 }

func (s *idemSet) add(key string) { s.n[s.hash(key)]++ }

func (s *idemSet) remove(key string) {
	h := s.hash(key)
	if c := s.n[h]; c > 1 {
		s.n[h] = c - 1
	} else {
		delete(s.n, h)
	}
}

// load replaces the set with the keys of the partition's records.
func (s *idemSet) load(p *storage.Partition) error {
	clear(s.n)
	return p.MetaNames(metaIdemPfx, func(name []byte) error {
		s.n[maphash.Bytes(s.seed, name[len(metaIdemPfx):])]++
		return nil
	})
}
