package storage

import "hash/maphash"

// IdemSet holds a 64-bit hash of every idempotency key a partition has a
// record of (the node's state machine keeps each record as a metadata
// value under one prefix), so that a write whose key was never
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
type IdemSet struct {
	seed maphash.Seed
	n    map[uint64]uint32
}

// NewIdemSet returns an empty set.
func NewIdemSet() *IdemSet {
	return &IdemSet{seed: maphash.MakeSeed(), n: make(map[uint64]uint32)}
}

func (s *IdemSet) hash(key string) uint64 { return maphash.String(s.seed, key) }

// MayHave reports whether key may have a record.
func (s *IdemSet) MayHave(key string) bool { return s.n[s.hash(key)] > 0 }

// Add counts a record of key.
func (s *IdemSet) Add(key string) { s.n[s.hash(key)]++ }

// Remove forgets one record of key.
func (s *IdemSet) Remove(key string) {
	h := s.hash(key)
	if c := s.n[h]; c > 1 {
		s.n[h] = c - 1
	} else {
		delete(s.n, h)
	}
}

// Load replaces the set with the keys of p's records: the metadata names
// under prefix, less the prefix.
func (s *IdemSet) Load(p *Partition, prefix string) error {
	clear(s.n)
	return p.MetaNames(prefix, func(name []byte) error {
		s.n[maphash.Bytes(s.seed, name[len(prefix):])]++
		return nil
	})
}

// Len returns the number of records the set counts.
func (s *IdemSet) Len() int {
	n := 0
	for _, c := range s.n {
		n += int(c)
	}
	return n
}
