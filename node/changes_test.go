package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// changesClient starts a node and returns a client of it.
func changesClient(t testing.TB) cachev1.CacheClient {
	t.Helper()
	n := nodetest.Start(t)
	conn, err := grpc.NewClient(n.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cachev1.NewCacheClient(conn)
}

// nextOf receives until a message about partition pid arrives (or, with
// ping set, the answer to that ping), and returns that partition's part.
func nextOf(t *testing.T, s cachev1.Cache_ChangesClient, pid uint32, ping uint64) (*cachev1.PartitionChanges, *cachev1.ChangesResponse) {
	t.Helper()
	for {
		r, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ping != 0 && r.Ping != ping {
			continue
		}
		for _, pc := range r.Partitions {
			if pc.Partition == pid {
				return pc, r
			}
		}
		if ping != 0 {
			t.Fatalf("the answer to ping %d has no mark of partition %d: %v", ping, pid, r)
		}
	}
}

// TestChangesStream: a subscription resumed from an index gets every key
// change after it, in order, as the key's hash and the index of its
// write; pings get progress marks with a freshness proof; another epoch
// restarts the subscription; a partition that does not exist ends it.
func TestChangesStream(t *testing.T) {
	cl := changesClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	put := func(key string) *cachev1.WriteMeta {
		r, err := cl.Put(ctx, &cachev1.PutRequest{Key: []byte(key), Value: []byte("v")})
		if err != nil {
			t.Fatal(err)
		}
		return r.Meta
	}
	w1 := put("a")
	pid, epoch := w1.Partition, w1.SessionToken.Epoch
	s, err := cl.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&cachev1.ChangesRequest{Subscribe: []*cachev1.ChangeSubscription{{Partition: pid, Epoch: epoch, FromIndex: w1.RaftIndex - 1}}}); err != nil {
		t.Fatal(err)
	}
	pc, _ := nextOf(t, s, pid, 0)
	hash := xxhash.Sum64String("a")
	if pc.Restart || pc.Epoch != epoch || len(pc.KeyHashes) != 1 || pc.KeyHashes[0] != hash || pc.Indexes[0] != w1.RaftIndex || pc.Through < w1.RaftIndex {
		t.Fatalf("resumed from %d: %v, want the change of \"a\" at %d", w1.RaftIndex-1, pc, w1.RaftIndex)
	}
	w2 := put("a")
	if pc, _ = nextOf(t, s, pid, 0); len(pc.KeyHashes) != 1 || pc.KeyHashes[0] != hash || pc.Indexes[0] != w2.RaftIndex {
		t.Fatalf("after a second write: %v, want the change at %d", pc, w2.RaftIndex)
	}
	if _, err := cl.Delete(ctx, &cachev1.DeleteRequest{Key: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if pc, _ = nextOf(t, s, pid, 0); len(pc.KeyHashes) != 1 || pc.KeyHashes[0] != hash || pc.Indexes[0] <= w2.RaftIndex {
		t.Fatalf("after a delete: %v, want a change above %d", pc, w2.RaftIndex)
	}
	// A ping: a mark of the partition, proven fresh (the node leads with
	// a lease), through every change sent.
	if err := s.Send(&cachev1.ChangesRequest{Ping: 7}); err != nil {
		t.Fatal(err)
	}
	pc, _ = nextOf(t, s, pid, 7)
	if pc.FreshStaleness == nil || pc.FreshStaleness.AsDuration() > time.Second || pc.Through <= w2.RaftIndex || pc.Role != cachev1.Role_ROLE_LEADER {
		t.Fatalf("progress mark %v: want a freshness proof through the delete, from the leader", pc)
	}
	// Another epoch says nothing of this log: restart.
	if err := s.Send(&cachev1.ChangesRequest{Subscribe: []*cachev1.ChangeSubscription{{Partition: pid, Epoch: epoch + 1, FromIndex: 5}}}); err != nil {
		t.Fatal(err)
	}
	if pc, _ = nextOf(t, s, pid, 0); !pc.Restart || pc.Through < pc.GetThrough() || pc.Epoch != epoch {
		t.Fatalf("subscribed with epoch %d: %v, want a restart", epoch+1, pc)
	}
	// No such partition: an error that ends the subscription.
	if err := s.Send(&cachev1.ChangesRequest{Subscribe: []*cachev1.ChangeSubscription{{Partition: 1 << 20}}}); err != nil {
		t.Fatal(err)
	}
	if pc, _ = nextOf(t, s, 1<<20, 0); pc.Error == "" {
		t.Fatalf("subscribed to a partition that does not exist: %v, want an error", pc)
	}
}

// BenchmarkChangesStream measures what a near cache's stream costs per
// key change when it follows every partition (per-partition broadcast):
// the bytes on the wire per change, and how many changes a message
// carries, under MultiPuts of 100 keys.
func BenchmarkChangesStream(b *testing.B) {
	cl := changesClient(b)
	ctx := b.Context()
	topo, err := cl.Topology(ctx, &cachev1.TopologyRequest{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := cl.Changes(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var subs []*cachev1.ChangeSubscription
	for pid := range topo.PartitionCount {
		subs = append(subs, &cachev1.ChangeSubscription{Partition: pid})
	}
	if err := s.Send(&cachev1.ChangesRequest{Subscribe: subs}); err != nil {
		b.Fatal(err)
	}
	const batch = 100
	want := b.N * batch
	done := make(chan [3]int, 1)
	go func() {
		var bytes, changes, msgs int
		for changes < want {
			r, err := s.Recv()
			if err != nil {
				break
			}
			msgs++
			bytes += proto.Size(r)
			for _, pc := range r.Partitions {
				changes += len(pc.KeyHashes)
			}
		}
		done <- [3]int{bytes, changes, msgs}
	}()
	b.ResetTimer()
	for i := range b.N {
		kvs := make([]*cachev1.KeyValue, batch)
		for j := range kvs {
			kvs[j] = &cachev1.KeyValue{Key: fmt.Appendf(nil, "key:%012d", i*batch+j), Value: make([]byte, 100)}
		}
		if _, err := cl.MultiPut(ctx, &cachev1.MultiPutRequest{Entries: kvs}); err != nil {
			b.Fatal(err)
		}
	}
	got := <-done
	b.StopTimer()
	if got[1] < want {
		b.Fatalf("%d changes of %d arrived", got[1], want)
	}
	b.ReportMetric(float64(got[0])/float64(got[1]), "B/change")
	b.ReportMetric(float64(got[1])/float64(got[2]), "changes/msg")
}
