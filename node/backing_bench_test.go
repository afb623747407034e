package node_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/storage/sqlstore"
	"github.com/elcache/elcache/storage/sqlstore/pgtest"
)

// BenchmarkWriteModes compares write-through and write-back puts against a
// real PostgreSQL (one node, 50 concurrent callers over 1,000 keys), and
// reports how many database row writes each client write cost.
func BenchmarkWriteModes(b *testing.B) {
	pg := pgtest.Start(b)
	n := nodetest.Start(b, func(c *node.Config) {
		c.Backend = pg.URL()
		c.Backing.CreateTable = true
	})
	conns := make([]cachev1.CacheClient, 8)
	for i := range conns {
		conns[i] = dial(b, n.Addr())
	}
	for _, mode := range []cachev1.WriteMode{cachev1.WriteMode_WRITE_MODE_CACHE_ONLY, cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH, cachev1.WriteMode_WRITE_MODE_WRITE_BACK} {
		b.Run(mode.String(), func(b *testing.B) {
			before := pg.Calls(b, sqlstore.WriteMarker)
			var next atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for c := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl := conns[c%len(conns)]
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						_, err := cl.Put(context.Background(), &cachev1.PutRequest{Key: []byte(fmt.Sprintf("bench-%d", i%1000)),
							Value: make([]byte, 100), Options: &cachev1.WriteOptions{Mode: mode}})
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			if mode == cachev1.WriteMode_WRITE_MODE_WRITE_BACK {
				// Count the flushes of these writes too.
				for {
					st, err := conns[0].Stats(context.Background(), &cachev1.StatsRequest{})
					if err != nil {
						b.Fatal(err)
					}
					if st.DirtyKeys == 0 {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
			b.ReportMetric(float64(pg.Calls(b, sqlstore.WriteMarker)-before)/float64(b.N), "db-txns/write")
		})
	}
}

// BenchmarkRefillHerd: 1,000 concurrent misses of one key, repeated; the
// database loads per herd are counted by PostgreSQL.
func BenchmarkRefillHerd(b *testing.B) {
	pg := pgtest.Start(b)
	s, err := sqlstore.Open(context.Background(), pg.URL(), sqlstore.Options{CreateTable: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	n := nodetest.Start(b, func(c *node.Config) { c.Backend = pg.URL() })
	conns := make([]cachev1.CacheClient, 20)
	for i := range conns {
		conns[i] = dial(b, n.Addr())
	}
	before := pg.Calls(b, sqlstore.LoadMarker)
	b.ResetTimer()
	for i := range b.N {
		key := []byte(fmt.Sprintf("herd-%d", i))
		if _, err := s.Write(context.Background(), []sqlstore.Row{{Key: key, Value: []byte("v"), Version: 1}}); err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for j := range 1000 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := conns[j%len(conns)].Get(context.Background(), &cachev1.GetRequest{Key: key})
				if err != nil || !r.Found {
					b.Errorf("herd read: %v %v", r, err)
				}
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(pg.Calls(b, sqlstore.LoadMarker)-before)/float64(b.N), "db-loads/1000-misses")
}
