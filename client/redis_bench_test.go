package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/elcache/elcache/client/internal/redistest"
	"github.com/redis/go-redis/v9"
)

const (
	// benchKeys is how many keys the comparison benchmarks preload and
	// cycle through.
	benchKeys = 1000
	// benchValueSize is the size of each value, in bytes.
	benchValueSize = 100
)

// benchCallers are the concurrencies the comparison benchmarks run at.
var benchCallers = []int{1, 8, 50}

// BenchmarkRedis is the yardstick for the client's own benchmarks: GET
// and SET on a local redis-server (`make deps` installs it) through
// go-redis, with benchKeys keys of benchValueSize bytes, at each of
// benchCallers concurrent callers sharing one client. Run it with a fixed
// count, as the client's benchmarks: -benchtime 20000x.
func BenchmarkRedis(b *testing.B) {
	srv := redistest.Start(b)
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench:%04d", i)
	}
	value := bytes.Repeat([]byte{'v'}, benchValueSize)

	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	pipe := rdb.Pipeline()
	for _, k := range keys {
		pipe.Set(ctx, k, value, 0)
	}
	_, err := pipe.Exec(ctx)
	if err = errors.Join(err, rdb.Close()); err != nil {
		b.Fatalf("preload: %v", err)
	}

	ops := []struct {
		name string
		op   func(rdb *redis.Client) func(ctx context.Context, i int) error
	}{
		{"GET", func(rdb *redis.Client) func(context.Context, int) error {
			return func(ctx context.Context, i int) error {
				v, err := rdb.Get(ctx, keys[i%len(keys)]).Bytes()
				if err == nil && len(v) != benchValueSize {
					err = fmt.Errorf("GET returned %d bytes, want %d", len(v), benchValueSize)
				}
				return err
			}
		}},
		{"SET", func(rdb *redis.Client) func(context.Context, int) error {
			return func(ctx context.Context, i int) error {
				return rdb.Set(ctx, keys[i%len(keys)], value, 0).Err()
			}
		}},
	}
	for _, o := range ops {
		b.Run(o.name, func(b *testing.B) {
			for _, callers := range benchCallers {
				b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
					rdb := newRedisClient(b, srv.Addr(), callers)
					runLoad(b, callers, o.op(rdb))
				})
			}
		})
	}
}

// newRedisClient returns a go-redis client with a pool of one connection
// per caller, all dialed, closed when the benchmark ends.
func newRedisClient(b *testing.B, addr string, callers int) *redis.Client {
	b.Helper()
	// PoolSize set explicitly: go-redis's default pool is 10 connections
	// per CPU (GOMAXPROCS), which would change with the machine and, on
	// small ones, make callers wait for a connection.
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: callers})
	b.Cleanup(func() {
		if err := rdb.Close(); err != nil {
			b.Errorf("close go-redis client: %v", err)
		}
	})
	// Dial the whole pool before the timed part: take every connection
	// at once, then hand them back.
	ctx := context.Background()
	conns := make([]*redis.Conn, callers)
	for i := range conns {
		conns[i] = rdb.Conn()
		if err := conns[i].Ping(ctx).Err(); err != nil {
			b.Fatalf("warm up the pool: %v", err)
		}
	}
	for _, c := range conns {
		if err := c.Close(); err != nil {
			b.Fatalf("warm up the pool: %v", err)
		}
	}
	return rdb
}
