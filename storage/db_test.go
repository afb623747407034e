package storage

import (
	"fmt"
	"strings"
	"testing"
)

// TestBlockCacheServesReads: Pebble still has block cache left after it
// charges its full-grown memtables to the cache. (With the cache sized
// for blocks alone, memtables as large as the cache took all of it and
// every read went to the file.)
func TestBlockCacheServesReads(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.BlockCacheBytes, cfg.MemTableBytes = 1<<20, 1<<20
	db, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := db.Partition(1)
	if err != nil {
		t.Fatal(err)
	}
	// 6 MiB of writes: memtables grow from 256 KiB to their full size.
	const n = 5000
	for round := range 10 {
		b := p.NewBatch()
		for i := range n {
			e := Entry{Key: []byte(fmt.Sprintf("k%05d", i)), Value: make([]byte, 100), Version: uint64(round*n + i + 1)}
			if err := b.Put(e); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(uint64((round + 1) * n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.pdb.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for i := range n {
			if _, ok, err := p.Get([]byte(fmt.Sprintf("k%05d", i)), 0); err != nil || !ok {
				t.Fatalf("get k%05d: %v, %v", i, ok, err)
			}
			// Keys that are not there: answered by the tables' filters.
			if _, ok, err := p.Lookup([]byte(fmt.Sprintf("k%05d-absent", i))); err != nil || ok {
				t.Fatalf("lookup k%05d-absent: %v, %v", i, ok, err)
			}
		}
	}
	m := db.pdb.Metrics()
	if m.BlockCache.Size == 0 || m.BlockCache.Hits < m.BlockCache.Misses*10 {
		t.Errorf("block cache holds %d bytes, %d hits and %d misses over %d reads: it is not caching",
			m.BlockCache.Size, m.BlockCache.Hits, m.BlockCache.Misses, 4*n)
	}
	if m.Filter.Hits == 0 {
		t.Errorf("no lookup of an absent key was answered by a filter (%d filter misses)", m.Filter.Misses)
	}
}

func TestConfigValidateMemTable(t *testing.T) {
	for _, size := range []uint64{1, 512 << 10, 4 << 30} {
		c := DefaultConfig(t.TempDir())
		c.MemTableBytes = size
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "MemTableBytes") {
			t.Errorf("MemTableBytes %d: %v, want an error naming it", size, err)
		}
	}
	c := DefaultConfig(t.TempDir())
	c.MemTableBytes = 0
	if err := c.Validate(); err != nil {
		t.Errorf("MemTableBytes 0 (Pebble's default): %v", err)
	}
}
