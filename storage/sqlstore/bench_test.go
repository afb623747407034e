package sqlstore_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/elcache/elcache/storage/sqlstore"
	"github.com/elcache/elcache/storage/sqlstore/pgtest"
)

const (
	benchKeys     = 10_000
	benchValueLen = 100
)

// benchKey returns the 16-byte key number i.
func benchKey(i int) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(i)*0x9e3779b97f4a7c15) // spread over the key space
	binary.BigEndian.PutUint64(k[8:], uint64(i))
	return k
}

// benchEnvs returns the dialects to benchmark; PostgreSQL starts once per
// benchmark function.
func benchEnvs(b *testing.B) []env {
	return []env{sqliteEnv(), postgresEnv(pgtest.Start(b))}
}

// BenchmarkWrite measures Write with batches of 1 and 256 rows of new
// versions (every row applies), with durable commits (SQLite
// synchronous=FULL, PostgreSQL fsync and synchronous_commit on).
func BenchmarkWrite(b *testing.B) {
	for _, e := range benchEnvs(b) {
		for _, size := range []int{1, 256} {
			b.Run(fmt.Sprintf("%s/batch=%d", e.dialect, size), func(b *testing.B) {
				s := e.open(b, sqlstore.Options{})
				value := make([]byte, benchValueLen)
				batch := make([]sqlstore.Row, size)
				version, next := uint64(0), 0
				b.ReportAllocs()
				for b.Loop() {
					for j := range batch {
						version++
						batch[j] = sqlstore.Row{Key: benchKey(next % benchKeys), Value: value, Version: version, IdempotencyKey: "0190b6c4-6a7e-7c4e-9d1a-2b3c4d5e6f70"}
						next++
					}
					if n, err := s.Write(ctx(b), batch); err != nil || n != size {
						b.Fatalf("Write = %d, %v", n, err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// BenchmarkLoad measures Load of random keys of a table of benchKeys rows.
func BenchmarkLoad(b *testing.B) {
	for _, e := range benchEnvs(b) {
		b.Run(string(e.dialect), func(b *testing.B) {
			s := e.open(b, sqlstore.Options{})
			value := make([]byte, benchValueLen)
			keys := make([][]byte, benchKeys)
			var batch []sqlstore.Row
			for i := range keys {
				keys[i] = benchKey(i)
				batch = append(batch, sqlstore.Row{Key: keys[i], Value: value, Version: 1})
			}
			mustWrite(b, s, batch...)
			rng := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := s.Load(ctx(b), keys[rng.IntN(benchKeys)]); err != nil || !ok {
					b.Fatalf("Load = %v, %v", ok, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
