package node_test

import (
	"context"
	"fmt"
	"strings"
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

// BenchmarkWriteModes compares the write modes against a real PostgreSQL:
// one node, 50 concurrent callers over 1,000 keys of 100 bytes, through
// unary RPCs and through pipelined streams, with the database local (on
// the same cores and disk) and one millisecond away (a round-trip delay
// added on its connections, as in a real deployment), with pgxpool's
// default pool and with one as large as the callers. It reports writes per
// second and the database transactions each client write cost.
func BenchmarkWriteModes(b *testing.B) {
	pg := pgtest.Start(b)
	for _, db := range []struct {
		name   string
		rtt    time.Duration
		params string
	}{
		{"db=local", 0, ""},
		{"db=1ms", time.Millisecond, ""},
		// A pool as large as the callers: write-through holds a
		// connection per write in flight.
		{"db=1ms,pool=50", time.Millisecond, "&pool_max_conns=50"},
	} {
		b.Run(db.name, func(b *testing.B) {
			url := pg.URL()
			if db.rtt > 0 {
				url = pg.DelayedURL(db.rtt)
			}
			url += db.params
			n := nodetest.Start(b, func(c *node.Config) {
				c.Backend = url
				c.Backing.CreateTable = true
			})
			conns := make([]cachev1.CacheClient, 8)
			for i := range conns {
				conns[i] = dial(b, n.Addr())
			}
			pipes := make([]*pipeliner, 4)
			for i := range pipes {
				pipes[i] = newPipeliner(b, conns[i])
			}
			for _, path := range []string{"unary", "pipelined"} {
				for _, mode := range []cachev1.WriteMode{cachev1.WriteMode_WRITE_MODE_CACHE_ONLY, cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH, cachev1.WriteMode_WRITE_MODE_WRITE_BACK} {
					b.Run(path+"/"+strings.TrimPrefix(mode.String(), "WRITE_MODE_"), func(b *testing.B) {
						put := func(c int, req *cachev1.PutRequest) error {
							_, err := conns[c%len(conns)].Put(context.Background(), req)
							return err
						}
						if path == "pipelined" {
							put = func(c int, req *cachev1.PutRequest) error {
								_, err := pipes[c%len(pipes)].put(context.Background(), req)
								return err
							}
						}
						benchWrites(b, pg, conns[0], mode, put)
					})
				}
			}
		})
	}
}

// benchWrites runs b.N puts in mode from 50 callers and reports the rate
// and the database transactions per write (write-back's flushes included).
func benchWrites(b *testing.B, pg *pgtest.Server, stats cachev1.CacheClient, mode cachev1.WriteMode, put func(caller int, req *cachev1.PutRequest) error) {
	before := pg.Calls(b, sqlstore.WriteMarker)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for c := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				err := put(c, &cachev1.PutRequest{Key: []byte(fmt.Sprintf("bench-%d", i%1000)),
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
			st, err := stats.Stats(context.Background(), &cachev1.StatsRequest{})
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
