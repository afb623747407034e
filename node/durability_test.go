package node_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/storage"
	"github.com/elcache/elcache/storage/sqlstore"
)

const (
	durUnspecified = cachev1.Durability_DURABILITY_UNSPECIFIED
	durSync        = cachev1.Durability_DURABILITY_SYNC
	durReplicated  = cachev1.Durability_DURABILITY_REPLICATED
)

// TestWriteDurability: a write is acknowledged at the durability it asks
// for, or else at its node's default; WriteMeta says which; the write's
// Raft log entry carries the REPLICATED mark on every replica exactly when
// the write is REPLICATED; and the write reads back LINEARIZABLE from
// another node. n0's default is REPLICATED, n1's and n2's SYNC, so a
// write that one node forwards to another keeps the durability of the
// node it came to. Unary and pipelined, every kind of write.
func TestWriteDurability(t *testing.T) {
	c := nodetest.StartCluster(t, 3, func(i int, cfg *node.Config) {
		if i == 0 {
			cfg.DefaultDurability = durReplicated
		}
	})
	clients := make([]cachev1.CacheClient, 3)
	for i, n := range c.Nodes {
		clients[i] = dial(t, n.Addr())
	}
	// committed checks a write acknowledged with meta: its durability, and
	// the mark of its log entry on the leader, then on every replica.
	committed := func(t *testing.T, meta *cachev1.WriteMeta, want cachev1.Durability) {
		t.Helper()
		if meta.GetDurability() != want {
			t.Fatalf("WriteMeta.Durability = %v, want %v (meta %v)", meta.GetDurability(), want, meta)
		}
		leader := c.Index(meta.GetLeader().GetNodeId())
		if leader < 0 {
			t.Fatalf("WriteMeta names no running leader: %v", meta)
		}
		for _, i := range []int{leader, (leader + 1) % 3, (leader + 2) % 3} {
			checkLogMark(t, c.Nodes[i], meta, want)
		}
	}
	readBack := func(t *testing.T, via int, key, value string, version uint64) {
		t.Helper()
		get, err := clients[via].Get(opCtx(t), &cachev1.GetRequest{Key: []byte(key),
			Options: &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_LINEARIZABLE}})
		if err != nil || !get.Found || string(get.Entry.Value) != value || get.Entry.Version != version {
			t.Fatalf("LINEARIZABLE get %s via n%d = %v, %v; want %q at version %d", key, via, get, err, value, version)
		}
	}

	puts := []struct {
		name string
		via  int
		d    cachev1.Durability
		want cachev1.Durability
	}{
		{"sync", 1, durSync, durSync},
		{"replicated", 1, durReplicated, durReplicated},
		{"sync on a replicated node", 0, durSync, durSync},
		{"default of a replicated node", 0, durUnspecified, durReplicated},
		{"default of a sync node", 2, durUnspecified, durSync},
	}
	for _, tt := range puts {
		t.Run("put "+tt.name, func(t *testing.T) {
			// Keys until one was led by the node written to and one was
			// forwarded to another.
			local, forwarded := false, false
			for i := 0; !local || !forwarded; i++ {
				if i == 100 {
					t.Fatalf("100 keys: led here %v, forwarded %v", local, forwarded)
				}
				key := fmt.Sprintf("%s-%d", tt.name, i)
				put, err := clients[tt.via].Put(opCtx(t), &cachev1.PutRequest{Key: []byte(key), Value: []byte(key),
					Options: &cachev1.WriteOptions{Durability: tt.d}})
				if err != nil {
					t.Fatalf("put %s via n%d: %v", key, tt.via, err)
				}
				if put.Meta.GetLeader().GetNodeId() == c.Nodes[tt.via].ID() {
					local = true
				} else {
					forwarded = true
				}
				committed(t, put.Meta, tt.want)
				readBack(t, (tt.via+1)%3, key, key, put.Version)
			}
		})
	}

	t.Run("other writes", func(t *testing.T) {
		opts := &cachev1.WriteOptions{Durability: durReplicated}
		ctx := opCtx(t)
		put, err := clients[1].Put(ctx, &cachev1.PutRequest{Key: []byte("cas"), Value: []byte("a"), Options: opts})
		if err != nil {
			t.Fatal(err)
		}
		cas, err := clients[1].CompareAndSet(ctx, &cachev1.CompareAndSetRequest{Key: []byte("cas"), Value: []byte("b"),
			Expect: &cachev1.CompareAndSetRequest_ExpectedVersion{ExpectedVersion: put.Version}, Options: opts})
		if err != nil || !cas.Swapped {
			t.Fatalf("cas = %v, %v", cas, err)
		}
		committed(t, cas.Meta, durReplicated)
		readBack(t, 2, "cas", "b", cas.Version)
		del, err := clients[2].Delete(ctx, &cachev1.DeleteRequest{Key: []byte("cas"), Options: opts})
		if err != nil || !del.Existed {
			t.Fatalf("delete = %v, %v", del, err)
		}
		committed(t, del.Meta, durReplicated)
		mp := &cachev1.MultiPutRequest{Options: opts}
		for i := range 16 {
			k := []byte(fmt.Sprintf("multi-%d", i))
			mp.Entries = append(mp.Entries, &cachev1.KeyValue{Key: k, Value: k})
		}
		got, err := clients[2].MultiPut(ctx, mp)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range got.Results {
			committed(t, r.Meta, durReplicated)
			readBack(t, 0, string(mp.Entries[i].Key), string(mp.Entries[i].Value), r.Version)
		}
	})

	t.Run("pipelined", func(t *testing.T) {
		pl := newPipeliner(t, clients[2])
		for i := range 8 {
			key := fmt.Sprintf("pipelined-%d", i)
			put, err := pl.put(opCtx(t), &cachev1.PutRequest{Key: []byte(key), Value: []byte(key),
				Options: &cachev1.WriteOptions{Durability: durReplicated}})
			if err != nil {
				t.Fatal(err)
			}
			committed(t, put.Meta, durReplicated)
			readBack(t, 0, key, key, put.Version)
		}
		_, err := pl.put(opCtx(t), &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v"),
			Options: &cachev1.WriteOptions{Durability: 3}})
		if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "options.durability: unknown value 3") {
			t.Fatalf("pipelined put with durability 3: %v, want InvalidArgument naming options.durability and the value", err)
		}
	})

	t.Run("unknown value", func(t *testing.T) {
		ctx := opCtx(t)
		bad := func(d int32) *cachev1.WriteOptions { return &cachev1.WriteOptions{Durability: cachev1.Durability(d)} }
		calls := []struct {
			name  string
			value int32
			call  func() error
		}{
			{"put", 3, func() error {
				_, err := clients[0].Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v"), Options: bad(3)})
				return err
			}},
			{"delete", -1, func() error {
				_, err := clients[1].Delete(ctx, &cachev1.DeleteRequest{Key: []byte("k"), Options: bad(-1)})
				return err
			}},
			{"compare-and-set", 99, func() error {
				_, err := clients[2].CompareAndSet(ctx, &cachev1.CompareAndSetRequest{Key: []byte("k"), Value: []byte("v"),
					Expect: &cachev1.CompareAndSetRequest_ExpectAbsent{ExpectAbsent: true}, Options: bad(99)})
				return err
			}},
			{"multi-put", 42, func() error {
				_, err := clients[0].MultiPut(ctx, &cachev1.MultiPutRequest{Options: bad(42),
					Entries: []*cachev1.KeyValue{{Key: []byte("k"), Value: []byte("v")}}})
				return err
			}},
		}
		for _, cl := range calls {
			err := cl.call()
			want := fmt.Sprintf("options.durability: unknown value %d", cl.value)
			if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), want) {
				t.Errorf("%s: %v, want InvalidArgument containing %q", cl.name, err, want)
			}
		}
		// Nothing was written.
		get, err := clients[0].Get(ctx, &cachev1.GetRequest{Key: []byte("k")})
		if err != nil || get.Found {
			t.Fatalf("get k = %v, %v", get, err)
		}
	})
}

// checkLogMark checks that n's Raft log holds the command of the write
// acknowledged with meta (waiting until it arrives), marked REPLICATED
// exactly when want is.
func checkLogMark(t *testing.T, n *node.Node, meta *cachev1.WriteMeta, want cachev1.Durability) {
	t.Helper()
	var l *raft.Log
	waitFor(t, 10*time.Second, fmt.Sprintf("node %s has log entry %d of partition %d", n.ID(), meta.RaftIndex, meta.Partition), func() bool {
		var err error
		l, err = n.LogEntryForTest(meta.Partition, meta.RaftIndex)
		return err == nil
	})
	if got := storage.IsReplicated(l); l.Type != raft.LogCommand || got != (want == durReplicated) {
		t.Fatalf("node %s: log entry %d of partition %d (type %v, extensions %q): IsReplicated = %v, want %v",
			n.ID(), l.Index, meta.Partition, l.Type, l.Extensions, got, want == durReplicated)
	}
}

// TestWriteDurabilityWithBackend: in front of a database (SQLite), on a
// node whose default is REPLICATED, WRITE_THROUGH and WRITE_AROUND writes
// are still SYNC (their fence's index becomes the row's version), and
// REPLICATED WRITE_BACK writes reach the database at their versions.
func TestWriteDurabilityWithBackend(t *testing.T) {
	d := &database{name: "sqlite", url: "sqlite://" + filepath.Join(t.TempDir(), "backing.db")}
	s, err := sqlstore.Open(context.Background(), d.url, sqlstore.Options{CreateTable: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	d.store = s
	n := startWith(t, d, func(c *node.Config) { c.DefaultDurability = durReplicated })
	cl := dial(t, n.Addr())
	modes := []struct {
		mode cachev1.WriteMode
		want cachev1.Durability
	}{
		{cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH, durSync},
		{cachev1.WriteMode_WRITE_MODE_WRITE_AROUND, durSync},
		{cachev1.WriteMode_WRITE_MODE_WRITE_BACK, durReplicated},
		{cachev1.WriteMode_WRITE_MODE_CACHE_ONLY, durReplicated},
	}
	for _, m := range modes {
		t.Run(m.mode.String(), func(t *testing.T) {
			for i := range 10 {
				key := fmt.Sprintf("%v-%d", m.mode, i)
				for _, asked := range []cachev1.Durability{durUnspecified, durReplicated} {
					put, err := cl.Put(opCtx(t), &cachev1.PutRequest{Key: []byte(key), Value: []byte(asked.String()),
						Options: &cachev1.WriteOptions{Mode: m.mode, Durability: asked}})
					if err != nil {
						t.Fatal(err)
					}
					checkLogMark(t, n.Node, put.Meta, m.want)
					if m.mode == cachev1.WriteMode_WRITE_MODE_CACHE_ONLY {
						continue
					}
					waitFor(t, 10*time.Second, "the row of "+key+" is in the database", func() bool {
						row, ok := d.row(t, key)
						return ok && row.Version == put.Version && string(row.Value) == asked.String()
					})
				}
			}
		})
	}
}
