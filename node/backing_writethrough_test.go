package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/elcache/elcache/node"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// TestWriteThrough: after the ack the row is in the database at the
// write's version, and the cache serves it; a delete leaves a tombstone row.
func TestWriteThrough(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			cl := dial(t, startWith(t, d).Addr())
			for i := range 20 {
				k := fmt.Sprintf("wt-%d", i)
				resp, err := putMode(t, cl, k, "v"+k, cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH)
				if err != nil {
					t.Fatal(err)
				}
				row, ok := d.row(t, k)
				if !ok || string(row.Value) != "v"+k || row.Version != resp.Version || row.Deleted {
					t.Fatalf("after a write-through ack the row of %s is %+v (found %v), want value v%s at version %d", k, row, ok, k, resp.Version)
				}
				if g := getKey(t, cl, k); !g.Found || string(g.Entry.Value) != "v"+k || g.Entry.Version != resp.Version {
					t.Fatalf("get %s after write-through = %v", k, g)
				}
			}
			del, err := cl.Delete(opCtx(t), &cachev1.DeleteRequest{Key: []byte("wt-0"),
				Options: &cachev1.WriteOptions{Mode: cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH}})
			if err != nil || !del.Existed {
				t.Fatalf("delete = %v, %v", del, err)
			}
			if row, ok := d.row(t, "wt-0"); !ok || !row.Deleted {
				t.Fatalf("after a write-through delete the row is %+v (found %v), want a tombstone", row, ok)
			}
			if g := getKey(t, cl, "wt-0"); g.Found {
				t.Fatalf("get after delete = %v, want a miss (the database has a tombstone)", g)
			}
		})
	}
}

// TestWriteThroughDatabaseDown: a write-through that the database does not
// take fails, and no reader ever sees its value: during the outage and
// after it, the key reads as the database has it.
func TestWriteThroughDatabaseDown(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			cl := dial(t, startWith(t, d, func(c *node.Config) {
				c.Backing.Attempts = 2
				c.Backing.BreakerCooldown = 200 * time.Millisecond
			}).Addr())
			if _, err := putMode(t, cl, "k", "before", cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH); err != nil {
				t.Fatal(err)
			}
			restore := d.outage(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := cl.Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Value: []byte("lost"),
				Options: &cachev1.WriteOptions{Mode: cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH}})
			cancel()
			if err == nil {
				t.Fatal("write-through with the database down succeeded")
			}
			t.Logf("write-through during the outage: %v", err)
			// While the database is down the key may fail to refill; it must
			// never read as "lost".
			if r, err := cl.Get(opCtx(t), &cachev1.GetRequest{Key: []byte("k")}); err == nil && r.Found && string(r.Entry.Value) == "lost" {
				t.Fatalf("a failed write-through is visible: %v", r)
			}
			restore()
			waitFor(t, 10*time.Second, "the key reads from the database again", func() bool {
				r, err := cl.Get(opCtx(t), &cachev1.GetRequest{Key: []byte("k")})
				if err != nil {
					return false
				}
				if !r.Found || string(r.Entry.Value) != "before" {
					t.Fatalf("after the failed write-through the key reads %v, want \"before\"", r)
				}
				return true
			})
			if row, _ := d.row(t, "k"); string(row.Value) != "before" {
				t.Fatalf("database row %+v after a failed write-through, want \"before\"", row)
			}
		})
	}
}
