package node_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/storage/sqlstore"
)

// TestBackingColumns: with every column renamed, the node creates the
// table under the configured names, a write-through lands in those
// columns, a delete sets the renamed deleted column, and a row inserted
// directly under those names refills the cache.
func TestBackingColumns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backing.db")
	cols := sqlstore.Columns{Key: "cache_key", Value: "payload", Version: "rev", Deleted: "gone", IdempotencyKey: "request_id", UpdatedAt: "touched_at"}
	n := nodetest.Start(t, func(c *node.Config) {
		c.Backend = "sqlite://" + path
		c.Backing.Table = "cache_rows"
		c.Backing.Columns = cols
		c.Backing.CreateTable = true
	})
	cl := dial(t, n.Addr())
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()

	var names []string
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('cache_rows') ORDER BY cid`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"cache_key", "payload", "rev", "gone", "request_id", "touched_at"}; !slices.Equal(names, want) {
		t.Fatalf("the node created cache_rows with columns %v, want %v", names, want)
	}

	// A write-through lands in the renamed columns.
	put, err := putMode(t, cl, "user:1", "alice", cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH)
	if err != nil {
		t.Fatal(err)
	}
	var (
		value   []byte
		version uint64
		gone    bool
		reqID   string
		touched string
	)
	err = db.QueryRowContext(ctx, `SELECT "payload", "rev", "gone", "request_id", "touched_at" FROM "cache_rows" WHERE "cache_key" = ?`,
		[]byte("user:1")).Scan(&value, &version, &gone, &reqID, &touched)
	if err != nil {
		t.Fatalf("the write-through row is not under the configured names: %v", err)
	}
	if string(value) != "alice" || version != put.Version || gone || touched == "" {
		t.Fatalf("row of user:1 = payload %q, rev %d, gone %v, touched_at %q; want alice at %d, live, with a time",
			value, version, gone, touched, put.Version)
	}

	// A delete sets the renamed deleted column.
	del, err := cl.Delete(opCtx(t), &cachev1.DeleteRequest{Key: []byte("user:1"),
		Options: &cachev1.WriteOptions{Mode: cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH}})
	if err != nil || !del.Existed {
		t.Fatalf("delete = %v, %v", del, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT "gone" FROM "cache_rows" WHERE "cache_key" = ?`, []byte("user:1")).Scan(&gone); err != nil || !gone {
		t.Fatalf("after a write-through delete gone = %v, %v; want a tombstone", gone, err)
	}

	// A row written under the configured names by someone else refills the
	// cache on a miss.
	if _, err := db.ExecContext(ctx, `INSERT INTO "cache_rows" ("cache_key", "payload", "rev") VALUES (?, ?, 7)`,
		[]byte("user:2"), []byte("bob")); err != nil {
		t.Fatal(err)
	}
	if g := getKey(t, cl, "user:2"); !g.Found || string(g.Entry.Value) != "bob" || g.Entry.Version != 7 {
		t.Fatalf("get of a row inserted under the configured names = %v, want bob at version 7", g)
	}
}

// TestBackingColumnsRejectsBadName: a column name the database could not
// take stops the node at start, with an error naming the field and the name.
func TestBackingColumnsRejectsBadName(t *testing.T) {
	cfg := nodetest.Config(t)
	cfg.Backend = "sqlite://" + filepath.Join(t.TempDir(), "backing.db")
	cfg.Backing.Columns = sqlstore.Columns{Value: "pay-load", Version: "Key"}
	n, err := node.New(cfg)
	if err == nil {
		n.Close()
		t.Fatal("node.New accepted the column name pay-load")
	}
	for _, want := range []string{`Backing: sqlstore: Columns.Value: name "pay-load"`, `Columns.Key and Columns.Version are both "Key"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("node.New error = %v, want it to contain %q", err, want)
		}
	}
}
