package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestWriteBackFlushes: write-back acks at once and the flusher brings
// every key to the database at its latest version; deletes too.
func TestWriteBackFlushes(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			cl := dial(t, startWith(t, d).Addr())
			want := make(map[string]uint64)
			for round := range 3 {
				for i := range 50 {
					k := fmt.Sprintf("wb-%d", i)
					resp, err := putMode(t, cl, k, fmt.Sprintf("r%d", round), cachev1.WriteMode_WRITE_MODE_WRITE_BACK)
					if err != nil {
						t.Fatal(err)
					}
					want[k] = resp.Version
				}
			}
			if _, err := cl.Delete(opCtx(t), &cachev1.DeleteRequest{Key: []byte("wb-0"),
				Options: &cachev1.WriteOptions{Mode: cachev1.WriteMode_WRITE_MODE_WRITE_BACK}}); err != nil {
				t.Fatal(err)
			}
			// The idempotency key of a write-back write reaches its row.
			idem := uuid.Must(uuid.NewV7()).String()
			resp, err := cl.Put(opCtx(t), &cachev1.PutRequest{Key: []byte("wb-idem"), Value: []byte("r2"),
				Options: &cachev1.WriteOptions{Mode: cachev1.WriteMode_WRITE_MODE_WRITE_BACK, IdempotencyKey: idem}})
			if err != nil {
				t.Fatal(err)
			}
			want["wb-idem"] = resp.Version
			waitFor(t, 10*time.Second, "the backlog is flushed", func() bool {
				st, err := cl.Stats(opCtx(t), &cachev1.StatsRequest{})
				return err == nil && st.DirtyKeys == 0
			})
			for k, v := range want {
				row, ok := d.row(t, k)
				if k == "wb-0" {
					if !ok || !row.Deleted {
						t.Errorf("row of %s = %+v, want a tombstone", k, row)
					}
					continue
				}
				if !ok || row.Version != v || string(row.Value) != "r2" {
					t.Errorf("row of %s = %+v (found %v), want r2 at version %d", k, row, ok, v)
				}
			}
			if row, _ := d.row(t, "wb-idem"); row.IdempotencyKey != idem {
				t.Errorf("row of wb-idem carries idempotency key %q, want %q", row.IdempotencyKey, idem)
			}
		})
	}
}

// TestBreakFlushOrder: with the flush order broken
// (Hooks.BreakFlushOrder), a write-back write acknowledged while the
// database is down is marked clean before its failed write, and lost: once
// the database is back nothing is left to flush, later writes reach it,
// and the row never does. In the right order the same write stays dirty
// through the outage and reaches the database after it.
func TestBreakFlushOrder(t *testing.T) {
	d := databases(t)[1]
	for _, tc := range []struct {
		name   string
		broken bool
	}{{"fixed", false}, {"broken", true}} {
		name, broken := tc.name, tc.broken
		t.Run(name, func(t *testing.T) {
			n := startWith(t, d, func(c *node.Config) {
				c.Partitions = 1 // one flusher, whose flushes run one at a time
				c.Backing.Attempts = 1
				c.Backing.BreakerFailures = 100 // no open breaker to fail later flushes
			})
			n.Hooks.BreakFlushOrder(broken)
			cl := dial(t, n.Addr())
			dirtyKeys := func() uint64 {
				st, err := cl.Stats(opCtx(t), &cachev1.StatsRequest{})
				if err != nil {
					t.Fatal(err)
				}
				return st.DirtyKeys
			}
			key := name + "-acked"
			d.pg.Stop()
			acked, err := putMode(t, cl, key, "v", cachev1.WriteMode_WRITE_MODE_WRITE_BACK)
			if err != nil {
				t.Fatalf("write-back put with the database down: %v", err)
			}
			if broken {
				waitFor(t, 10*time.Second, "the acknowledged write is marked clean", func() bool { return dirtyKeys() == 0 })
				// The probe is flushed by a later flush than the acknowledged
				// write's, so only once that write has failed.
				if _, err := putMode(t, cl, name+"-probe", "v", cachev1.WriteMode_WRITE_MODE_WRITE_BACK); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 10*time.Second, "the next flush", func() bool { return dirtyKeys() == 0 })
			}
			d.pg.Restart()
			after, err := putMode(t, cl, name+"-after", "v", cachev1.WriteMode_WRITE_MODE_WRITE_BACK)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "a write after the outage is flushed", func() bool {
				// The first loads may find connections the restart closed.
				row, ok, err := d.store.Load(context.Background(), []byte(name+"-after"))
				return err == nil && ok && row.Version == after.Version && dirtyKeys() == 0
			})
			row, ok := d.row(t, key)
			if !broken {
				if !ok || row.Version != acked.Version {
					t.Fatalf("acknowledged write-back at version %d: database row %+v (found %v)", acked.Version, row, ok)
				}
				return
			}
			if ok {
				t.Fatalf("with the flush order broken the acknowledged write reached the database: %+v", row)
			}
			if g := getKey(t, cl, key); !g.Found || g.Entry.Version != acked.Version || g.Entry.Dirty {
				t.Fatalf("with the flush order broken the cache holds %v, want the acknowledged write, clean", g)
			}
		})
	}
}

// TestWriteBackSurvivesLeaderKill: write-back writes are acknowledged while
// the database is down, the node leading most partitions is killed before
// anything is flushed, and the database comes back. Every acknowledged
// write reaches the database: each key ends at its last acknowledged
// version, and the versions written for a key only grow, none twice.
func TestWriteBackSurvivesLeaderKill(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) { writeBackLeaderKill(t, d) })
	}
}

func writeBackLeaderKill(t *testing.T, d *database) {
	auditWrites(t, d)
	c := nodetest.StartCluster(t, 3, func(_ int, cfg *node.Config) {
		cfg.Backend = d.url
		cfg.Backing.FlushInterval = 10 * time.Millisecond
		cfg.Backing.Attempts = 2
		cfg.Backing.BreakerCooldown = 300 * time.Millisecond
	})
	restore := d.outage(t)
	victim := leaderMost(t, c)
	cl := dial(t, c.Nodes[(victim+1)%3].Addr())
	acked := make(map[string]uint64)
	for round := range 5 {
		for i := range 40 {
			k := fmt.Sprintf("wbk-%d", i)
			resp, err := putMode(t, cl, k, fmt.Sprintf("r%d", round), cachev1.WriteMode_WRITE_MODE_WRITE_BACK)
			if err != nil {
				t.Fatalf("write-back put with the database down: %v", err)
			}
			acked[k] = resp.Version
		}
	}
	c.Kill(victim)
	restore()
	for _, i := range c.Running() {
		cl := dial(t, c.Nodes[i].Addr())
		waitFor(t, 30*time.Second, fmt.Sprintf("n%d flushes its backlog", i), func() bool {
			st, err := cl.Stats(opCtx(t), &cachev1.StatsRequest{})
			return err == nil && st.DirtyKeys == 0
		})
	}
	for k, v := range acked {
		if row, ok := d.row(t, k); !ok || row.Version != v || string(row.Value) != "r4" {
			t.Errorf("row of %s = %+v (found %v), want r4 at version %d", k, row, ok, v)
		}
	}
	writes := 0
	for k, versions := range audited(t, d) {
		writes += len(versions)
		for i := 1; i < len(versions); i++ {
			if versions[i] <= versions[i-1] {
				t.Errorf("key %s: database saw versions %v: not strictly increasing (a write applied twice or out of order)", k, versions)
				break
			}
		}
	}
	t.Logf("%d acknowledged write-back puts over %d keys reached the database in %d row writes", 5*40, len(acked), writes)
}

// TestWriteBackBacklogBound: with the database down, write-back accepts
// writes until a partition's backlog is full, then pushes back with
// ResourceExhausted instead of dropping anything; once the database is
// back, the backlog drains and writes are accepted again.
func TestWriteBackBacklogBound(t *testing.T) {
	d := databases(t)[1]
	const maxDirty = 10
	n := startWith(t, d, func(c *node.Config) {
		c.Backing.MaxDirty = maxDirty
		c.Backing.Attempts = 1
		c.Backing.BreakerCooldown = 200 * time.Millisecond
	})
	cl := dial(t, n.Addr())
	d.pg.Stop()
	acked := make(map[string]uint64)
	pushedBack := 0
	for i := range 200 {
		k := fmt.Sprintf("bl-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		resp, err := cl.Put(ctx, &cachev1.PutRequest{Key: []byte(k), Value: []byte("v"),
			Options: &cachev1.WriteOptions{Mode: cachev1.WriteMode_WRITE_MODE_WRITE_BACK}})
		cancel()
		switch status.Code(err) {
		case codes.OK:
			acked[k] = resp.Version
		case codes.ResourceExhausted:
			pushedBack++
		case codes.DeadlineExceeded:
			// The server's ResourceExhausted did not make it back in time
			// (a slow machine); the write was not acknowledged.
			pushedBack++
		default:
			t.Fatalf("write-back put %s with the database down: %v", k, err)
		}
	}
	st, err := cl.Stats(opCtx(t), &cachev1.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Partitions {
		if p.DirtyKeys > maxDirty {
			t.Errorf("partition %d holds %d dirty entries, over the bound %d", p.Partition, p.DirtyKeys, maxDirty)
		}
	}
	if pushedBack == 0 || len(acked) == 0 {
		t.Fatalf("%d acked, %d pushed back: want both", len(acked), pushedBack)
	}
	t.Logf("database down: %d write-back puts acked, %d pushed back, lag %v", len(acked), pushedBack, st.FlushLag.AsDuration())
	d.pg.Restart()
	waitFor(t, 20*time.Second, "the backlog drains", func() bool {
		st, err := cl.Stats(opCtx(t), &cachev1.StatsRequest{})
		return err == nil && st.DirtyKeys == 0
	})
	for k, v := range acked {
		if row, ok := d.row(t, k); !ok || row.Version != v {
			t.Errorf("acked write-back %s: row %+v (found %v), want version %d", k, row, ok, v)
		}
	}
	if _, err := putMode(t, cl, "after", "v", cachev1.WriteMode_WRITE_MODE_WRITE_BACK); err != nil {
		t.Fatalf("write-back after recovery: %v", err)
	}
}
