package node_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Single-node gRPC benchmarks: a real node (Raft, Pebble, gRPC on
// 127.0.0.1) and a raw generated client, so they measure the server path
// and the transport, not the client library. Compare runs with benchstat.

const (
	benchKeys       = 4096
	benchValueBytes = 100
)

// benchKey returns the i-th 16-byte key.
func benchKey(i int) []byte { return fmt.Appendf(nil, "key-%012d", i) }

var benchValue = bytes.Repeat([]byte("v"), benchValueBytes)

// benchNode starts a node with the test defaults and 8 partitions and
// returns a client to it.
func benchNode(b *testing.B) cachev1.CacheClient {
	b.Helper()
	n := nodetest.Start(b, func(c *node.Config) { c.Partitions = 8 })
	return dial(b, n.Addr())
}

// preload writes benchKeys keys and returns them.
func preload(b *testing.B, c cachev1.CacheClient) [][]byte {
	b.Helper()
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	const batch = 512
	for lo := 0; lo < len(keys); lo += batch {
		entries := make([]*cachev1.KeyValue, 0, batch)
		for _, k := range keys[lo:min(lo+batch, len(keys))] {
			entries = append(entries, &cachev1.KeyValue{Key: k, Value: benchValue})
		}
		if _, err := c.MultiPut(context.Background(), &cachev1.MultiPutRequest{Entries: entries}); err != nil {
			b.Fatal(err)
		}
	}
	return keys
}

func reportOps(b *testing.B, ops int) {
	b.ReportMetric(float64(ops)/b.Elapsed().Seconds(), "ops/s")
}

func benchGet(b *testing.B, level cachev1.Consistency) {
	c := benchNode(b)
	keys := preload(b, c)
	ctx := context.Background()
	opts := &cachev1.ReadOptions{Consistency: level}
	b.ReportAllocs()
	ops := 0
	for b.Loop() {
		resp, err := c.Get(ctx, &cachev1.GetRequest{Key: keys[ops%len(keys)], Options: opts})
		if err != nil || !resp.Found {
			b.Fatalf("get: %v, %v", resp, err)
		}
		ops++
	}
	reportOps(b, ops)
}

func benchGetParallel(b *testing.B, level cachev1.Consistency) {
	c := benchNode(b)
	keys := preload(b, c)
	ctx := context.Background()
	opts := &cachev1.ReadOptions{Consistency: level}
	var worker atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine walks the keys from its own offset.
		i := int(worker.Add(1)) * 997
		for pb.Next() {
			resp, err := c.Get(ctx, &cachev1.GetRequest{Key: keys[i%len(keys)], Options: opts})
			if err != nil || !resp.Found {
				b.Errorf("get: %v, %v", resp, err)
				return
			}
			i++
		}
	})
	reportOps(b, b.N)
}

// BenchmarkGRPCGet reads preloaded keys one at a time at the default
// (linearizable) level.
func BenchmarkGRPCGet(b *testing.B) { benchGet(b, cachev1.Consistency_CONSISTENCY_UNSPECIFIED) }

// BenchmarkGRPCGetEventual reads at the EVENTUAL level: no read-index
// round through Raft.
func BenchmarkGRPCGetEventual(b *testing.B) { benchGet(b, cachev1.Consistency_CONSISTENCY_EVENTUAL) }

func BenchmarkGRPCGetParallel(b *testing.B) {
	benchGetParallel(b, cachev1.Consistency_CONSISTENCY_UNSPECIFIED)
}

func BenchmarkGRPCGetEventualParallel(b *testing.B) {
	benchGetParallel(b, cachev1.Consistency_CONSISTENCY_EVENTUAL)
}

// BenchmarkGRPCPut writes one key at a time: each Put is one Raft commit.
func BenchmarkGRPCPut(b *testing.B) {
	c := benchNode(b)
	ctx := context.Background()
	b.ReportAllocs()
	ops := 0
	for b.Loop() {
		if _, err := c.Put(ctx, &cachev1.PutRequest{Key: benchKey(ops % benchKeys), Value: benchValue}); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	reportOps(b, ops)
}

// BenchmarkGRPCPutParallel writes from 8*GOMAXPROCS goroutines; Raft
// batches concurrent proposals of a partition into one log append.
func BenchmarkGRPCPutParallel(b *testing.B) {
	c := benchNode(b)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := benchKey(int(next.Add(1)) % benchKeys)
			if _, err := c.Put(ctx, &cachev1.PutRequest{Key: key, Value: benchValue}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportOps(b, b.N)
}

// BenchmarkGRPCMultiGet100 reads 100 preloaded keys (spread over every
// partition) per call at the default level.
func BenchmarkGRPCMultiGet100(b *testing.B) {
	c := benchNode(b)
	keys := preload(b, c)
	ctx := context.Background()
	const batch = 100
	b.ReportAllocs()
	calls := 0
	for b.Loop() {
		lo := (calls * batch) % (len(keys) - batch)
		resp, err := c.MultiGet(ctx, &cachev1.MultiGetRequest{Keys: keys[lo : lo+batch]})
		if err != nil || len(resp.Results) != batch || !resp.Results[batch-1].Found {
			b.Fatalf("multiget: %v", err)
		}
		calls++
	}
	reportOps(b, calls)
	b.ReportMetric(float64(calls*batch)/b.Elapsed().Seconds(), "keys/s")
}
