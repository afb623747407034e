package node_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Writing three times the capacity keeps live bytes under the budget, disk
// use near it, and the node serving.
func TestCapacityEviction(t *testing.T) {
	const capacity = 16 << 20
	n := nodetest.Start(t, func(c *node.Config) {
		c.CapacityBytes = capacity
		c.Raft.SnapshotInterval = 100 * time.Millisecond
		c.Raft.SnapshotThreshold = 16
		c.Raft.TrailingLogs = 8
	})
	c := dial(t, n.Addr())
	// Generous: 3,000 writes under the race detector on 2 busy cores.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Random values: compressible ones would make disk use look better
	// than it is.
	value := make([]byte, 16<<10)
	rand.Read(value)
	const writes = 3 * capacity / (16 << 10)
	var maxUsed uint64
	for i := 0; i < writes; i++ {
		if _, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte(fmt.Sprintf("key-%06d", i)), Value: value}); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		if i%64 == 0 {
			st, err := c.Stats(ctx, &cachev1.StatsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			maxUsed = max(maxUsed, st.BytesUsed)
		}
	}
	st, err := c.Stats(ctx, &cachev1.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after %d MiB written: used %d B of %d, %d keys, %d evictions, disk %d B, max used seen %d",
		writes*len(value)>>20, st.BytesUsed, capacity, st.Keys, st.Evictions, st.DiskBytes, maxUsed)
	// Inline eviction frees the space each write takes, so live bytes never
	// run more than one write past the budget.
	if maxUsed > capacity+uint64(2*len(value)) || st.BytesUsed > capacity+uint64(2*len(value)) {
		t.Fatalf("live bytes %d (max %d) over the capacity %d", st.BytesUsed, maxUsed, capacity)
	}
	if st.Evictions == 0 || st.Keys >= writes {
		t.Fatalf("nothing evicted: %d keys, %d evictions", st.Keys, st.Evictions)
	}
	// Disk holds the live data plus Raft log tails, the write-ahead log and
	// LSM garbage until the node's reclaimer compacts it: it comes back near
	// the budget instead of growing with what was written (48 MiB of values,
	// written twice: Raft log and state).
	const diskBound = 2*capacity + 8<<20
	for st.DiskBytes > diskBound {
		if ctx.Err() != nil {
			t.Fatalf("disk use %d B, want at most %d B for a budget of %d B", st.DiskBytes, diskBound, capacity)
		}
		time.Sleep(50 * time.Millisecond)
		if st, err = c.Stats(ctx, &cachev1.StatsRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("disk after reclaim: %d B", st.DiskBytes)
	// Recent keys survive (approximate LRU keeps what was just written) and
	// the node keeps serving.
	last := []byte(fmt.Sprintf("key-%06d", writes-1))
	get, err := c.Get(ctx, &cachev1.GetRequest{Key: last})
	if err != nil || !get.Found {
		t.Fatalf("latest key: %v, %v", get, err)
	}
}
