package client

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/types/known/durationpb"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// benchNear returns a near cache of one partition with n entries, keys
// "key-%012d" and values of size bytes, whose stream answered a ping
// just now.
func benchNear(b *testing.B, n, size int) *near {
	b.Helper()
	nc, err := newNear(NearCacheConfig{MaxBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	nc.setParts(1)
	p := nc.part(0)
	now := time.Now()
	p.cur = nearView{epoch: 1, gen: 1, through: 10, markAt: now.Add(time.Hour), freshAt: now.Add(time.Hour), live: true}
	p.publishLocked()
	for i := range n {
		k := fmt.Appendf(nil, "key-%012d", i)
		nc.cache.Set(xxhash.Sum64(k), &nearEntry{key: k, value: make([]byte, size), version: 5, gen: 1, index: 5})
	}
	return nc
}

// BenchmarkNearCacheHit is a hot EVENTUAL and BOUNDED Get served by the
// near cache, from many goroutines: the lookup, the proof's checks and the
// answer's copy of the value.
func BenchmarkNearCacheHit(b *testing.B) {
	for _, ro := range []*cachev1.ReadOptions{
		{Consistency: cachev1.Consistency_CONSISTENCY_EVENTUAL},
		{Consistency: cachev1.Consistency_CONSISTENCY_BOUNDED, MaxStaleness: durationpb.New(100 * time.Millisecond)},
	} {
		b.Run(ro.Consistency.String(), func(b *testing.B) {
			const keys = 1000
			nc := benchNear(b, keys, 100)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ks := make([][]byte, keys)
				for i := range ks {
					ks[i] = fmt.Appendf(nil, "key-%012d", i)
				}
				i := 0
				for pb.Next() {
					if _, ok := nc.lookup(0, ks[i%keys], ro, nil); !ok {
						b.Fatal("miss")
					}
					i++
				}
			})
		})
	}
}

// BenchmarkNearCacheMemory measures the heap an entry takes beyond its key
// and value (EntryOverhead): 200,000 entries of 16-byte keys and 100-byte
// values.
func BenchmarkNearCacheMemory(b *testing.B) {
	const n, size = 200_000, 100
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		nc := benchNear(b, n, size)
		runtime.GC()
		runtime.ReadMemStats(&after)
		per := float64(after.HeapAlloc-before.HeapAlloc) / n
		b.ReportMetric(per, "B/entry")
		b.ReportMetric(per-16-size, "overhead-B/entry")
		runtime.KeepAlive(nc)
	}
}
