package client_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/elcache/elcache/client"
	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// BenchmarkClient measures GET (EVENTUAL, any replica: the stale read
// Redis offers) and SET through the client on a 3-node in-process cluster
// with production Raft timings, at each of benchCallers concurrent
// callers sharing one client, over unary RPCs and pipelined streams. The
// keys and values are BenchmarkRedis's. Run both with -benchtime 20000x
// (`make bench-client`) to compare.
func BenchmarkClient(b *testing.B) {
	c := nodetest.StartCluster(b, 3, func(_ int, cfg *node.Config) {
		cfg.Raft = node.DefaultConfig().Raft
	})
	c.WaitConverged(30 * time.Second)
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "bench:%04d", i)
	}
	value := bytes.Repeat([]byte{'v'}, benchValueSize)
	for _, path := range []string{"pipelined", "unary"} {
		cfg := client.DefaultConfig()
		cfg.Seeds = []string{c.Nodes[0].Addr()}
		cfg.Unary = path == "unary"
		cl, err := client.New(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		kvs := make([]client.KeyValue, len(keys))
		for i, k := range keys {
			kvs[i] = client.KeyValue{Key: k, Value: value}
		}
		if _, err := cl.MultiPut(context.Background(), kvs); err != nil {
			b.Fatalf("preload: %v", err)
		}
		eventual := client.WithConsistency(cachev1.Consistency_CONSISTENCY_EVENTUAL)
		// The followers apply the preload a moment after the leaders.
		for _, k := range keys {
			for {
				if _, err := cl.Get(context.Background(), k, eventual); err == nil {
					break
				}
				time.Sleep(time.Millisecond) // a follower catching up
			}
		}
		for _, callers := range benchCallers {
			b.Run(fmt.Sprintf("%s/GET/callers=%d", path, callers), func(b *testing.B) {
				runLoad(b, callers, func(ctx context.Context, i int) error {
					e, err := cl.Get(ctx, keys[i%len(keys)], eventual)
					if err == nil && len(e.Value) != benchValueSize {
						err = fmt.Errorf("GET returned %d bytes, want %d", len(e.Value), benchValueSize)
					}
					return err
				})
			})
			b.Run(fmt.Sprintf("%s/SET/callers=%d", path, callers), func(b *testing.B) {
				runLoad(b, callers, func(ctx context.Context, i int) error {
					_, err := cl.Put(ctx, keys[i%len(keys)], value)
					return err
				})
			})
		}
	}
}
