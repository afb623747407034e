package storage

import (
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

const (
	benchKeys     = 100_000
	benchValueLen = 100
)

// benchKey returns the 16-byte key number i.
func benchKey(i int) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(i)*0x9e3779b97f4a7c15) // spread over the key space
	binary.BigEndian.PutUint64(k[8:], uint64(i))
	return k
}

// openBenchPartition returns partition 1 of a DB in a temporary directory
// holding benchKeys entries with benchValueLen-byte values.
func openBenchPartition(b *testing.B) *Partition {
	b.Helper()
	db, err := Open(Config{Dir: filepath.Join(b.TempDir(), "db"), BlockCacheBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	p := mustPartition(b, db, 1)
	value := make([]byte, benchValueLen)
	const perBatch = 1000
	for start := 0; start < benchKeys; start += perBatch {
		batch := p.NewBatch()
		for i := start; i < start+perBatch; i++ {
			if err := batch.Put(Entry{Key: benchKey(i), Value: value, Version: 1}); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(uint64(start/perBatch + 1)); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
	return p
}

func BenchmarkPartitionGet(b *testing.B) {
	p := openBenchPartition(b)
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := p.Get(keys[rng.IntN(benchKeys)], 0); err != nil || !ok {
			b.Fatalf("Get: %v, %v", ok, err)
		}
	}
}

// benchPut overwrites random keys, perBatch Puts to a committed batch;
// ns/op is per Put.
func benchPut(b *testing.B, perBatch int) {
	p := openBenchPartition(b)
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	value := make([]byte, benchValueLen)
	rng := rand.New(rand.NewPCG(1, 2))
	applied := p.State().Applied
	b.ReportAllocs()
	b.SetBytes(benchValueLen)
	var batch *Batch
	n := 0
	for b.Loop() {
		if batch == nil {
			batch = p.NewBatch()
		}
		applied++
		if err := batch.Put(Entry{Key: keys[rng.IntN(benchKeys)], Value: value, Version: applied}); err != nil {
			b.Fatal(err)
		}
		if n++; n%perBatch == 0 {
			if err := batch.Commit(applied); err != nil {
				b.Fatal(err)
			}
			batch.Close()
			batch = nil
		}
	}
	if batch != nil {
		if err := batch.Commit(applied); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
}

// BenchmarkPartitionPut is one Batch with one Put and a Commit per op.
func BenchmarkPartitionPut(b *testing.B) { benchPut(b, 1) }

// BenchmarkPartitionPutBatch16 commits 16 Puts per Batch; ns/op is per Put.
func BenchmarkPartitionPutBatch16(b *testing.B) { benchPut(b, 16) }

// BenchmarkScan100 reads pages of 100 entries from random places.
func BenchmarkScan100(b *testing.B) {
	p := openBenchPartition(b)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		// Pages near the end of the key space hold fewer entries.
		if _, _, err := p.Scan(ScanOptions{After: benchKey(rng.IntN(benchKeys)), Limit: 100}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPartitionSample16 draws eviction samples of 16 entries.
func BenchmarkPartitionSample16(b *testing.B) {
	p := openBenchPartition(b)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Sample(rng, 16); err != nil {
			b.Fatal(err)
		}
	}
}
