package node_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/storage/sqlstore"
	"github.com/elcache/elcache/storage/sqlstore/pgtest"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// database is a backing database for a test: its URL, and a direct
// connection to check what the database holds.
type database struct {
	name  string
	url   string
	store *sqlstore.Store
	pg    *pgtest.Server // nil for SQLite
}

// databases starts a fresh SQLite file and a fresh PostgreSQL.
func databases(t *testing.T) []*database {
	t.Helper()
	pg := pgtest.Start(t)
	out := []*database{
		{name: "sqlite", url: "sqlite://" + filepath.Join(t.TempDir(), "backing.db")},
		{name: "postgres", url: pg.URL(), pg: pg},
	}
	for _, d := range out {
		s, err := sqlstore.Open(context.Background(), d.url, sqlstore.Options{CreateTable: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		d.store = s
	}
	return out
}

// row returns the database's row of key.
func (d *database) row(t *testing.T, key string) (sqlstore.Row, bool) {
	t.Helper()
	r, ok, err := d.store.Load(context.Background(), []byte(key))
	if err != nil {
		t.Fatalf("%s: load %s: %v", d.name, key, err)
	}
	return r, ok
}

// startWith starts a single node in front of d.
func startWith(t *testing.T, d *database, opts ...func(*node.Config)) *nodetest.Node {
	t.Helper()
	return nodetest.Start(t, append([]func(*node.Config){func(c *node.Config) {
		c.Backend = d.url
		c.Backing.CreateTable = true
		c.Backing.FlushInterval = 10 * time.Millisecond
	}}, opts...)...)
}

func putMode(t *testing.T, cl cachev1.CacheClient, key, value string, mode cachev1.WriteMode) (*cachev1.PutResponse, error) {
	t.Helper()
	return cl.Put(opCtx(t), &cachev1.PutRequest{Key: []byte(key), Value: []byte(value), Options: &cachev1.WriteOptions{Mode: mode}})
}

func getKey(t *testing.T, cl cachev1.CacheClient, key string) *cachev1.GetResponse {
	t.Helper()
	r, err := cl.Get(opCtx(t), &cachev1.GetRequest{Key: []byte(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return r
}

// outage makes d refuse writes until the returned function is called:
// PostgreSQL stops; SQLite is locked by another connection holding an
// exclusive transaction (writers then time out waiting for the lock).
func (d *database) outage(t *testing.T) (restore func()) {
	t.Helper()
	if d.pg != nil {
		d.pg.Stop()
		return d.pg.Restart
	}
	db, err := sql.Open("sqlite", strings.TrimPrefix(d.url, "sqlite://"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		db.Close()
	}
}

// sqlDB opens d through database/sql, for test set-up and checks.
func (d *database) sqlDB(t *testing.T) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if d.pg != nil {
		db, err = sql.Open("pgx", d.url)
	} else {
		db, err = sql.Open("sqlite", strings.TrimPrefix(d.url, "sqlite://"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// auditWrites makes the database record every row version written to the
// backing table, in order, so a test can check that each acknowledged
// write-back reached the database once and in version order.
func auditWrites(t *testing.T, d *database) {
	t.Helper()
	stmts := []string{
		`CREATE TABLE audit (seq bigserial PRIMARY KEY, key bytea NOT NULL, version bigint NOT NULL, deleted boolean NOT NULL)`,
		`CREATE FUNCTION audit_row() RETURNS trigger AS $$ BEGIN
			INSERT INTO audit (key, version, deleted) VALUES (NEW.key, NEW.version, NEW.deleted); RETURN NEW; END $$ LANGUAGE plpgsql`,
		`CREATE TRIGGER audit_rows AFTER INSERT OR UPDATE ON elcache_entries FOR EACH ROW EXECUTE FUNCTION audit_row()`,
	}
	if d.pg == nil {
		stmts = []string{
			`CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, key BLOB NOT NULL, version INTEGER NOT NULL, deleted INTEGER NOT NULL)`,
			`CREATE TRIGGER audit_ins AFTER INSERT ON elcache_entries BEGIN
				INSERT INTO audit (key, version, deleted) VALUES (NEW.key, NEW.version, NEW.deleted); END`,
			`CREATE TRIGGER audit_upd AFTER UPDATE ON elcache_entries BEGIN
				INSERT INTO audit (key, version, deleted) VALUES (NEW.key, NEW.version, NEW.deleted); END`,
		}
	}
	db := d.sqlDB(t)
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: audit setup: %v", d.name, err)
		}
	}
}

// audited returns the versions written per key, in the order written.
func audited(t *testing.T, d *database) map[string][]uint64 {
	t.Helper()
	rows, err := d.sqlDB(t).Query(`SELECT key, version FROM audit ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := make(map[string][]uint64)
	for rows.Next() {
		var k []byte
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[string(k)] = append(out[string(k)], uint64(v))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDatabaseOutageUnderLoad: the database is down for a while under a
// mixed write-through and write-back load. Write-through fails, and once
// the breaker opens it fails without trying the database; write-back keeps
// accepting; nothing acknowledged is lost, and everything flushes after.
func TestDatabaseOutageUnderLoad(t *testing.T) {
	d := databases(t)[1]
	outage := 10 * time.Second
	if testing.Short() {
		outage = 3 * time.Second
	}
	n := startWith(t, d, func(c *node.Config) {
		c.Backing.Attempts = 2
		c.Backing.BreakerCooldown = time.Second
	})
	cl := dial(t, n.Addr())
	type result struct {
		acked            map[string]uint64
		failed, breakerd int
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]result, 8)
	for w := range results {
		mode := cachev1.WriteMode_WRITE_MODE_WRITE_BACK
		if w%2 == 0 {
			mode = cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := result{acked: make(map[string]uint64)}
			for i := 0; ; i++ {
				select {
				case <-stop:
					results[w] = r
					return
				default:
				}
				k := fmt.Sprintf("ol-%d-%d", w, i%50)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				resp, err := cl.Put(ctx, &cachev1.PutRequest{Key: []byte(k), Value: []byte(fmt.Sprint(i)),
					Options: &cachev1.WriteOptions{Mode: mode}})
				cancel()
				switch {
				case err == nil:
					r.acked[k] = resp.Version
				case mode == cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH && status.Code(err) == codes.Unavailable:
					r.failed++
					if strings.Contains(err.Error(), "circuit breaker open") {
						r.breakerd++
					}
					time.Sleep(5 * time.Millisecond)
				default:
					t.Errorf("%v put during the outage: %v", mode, err)
					results[w] = r
					return
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	<-d.pg.StopFor(outage)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	failed, breakered, wbAcked := 0, 0, 0
	for w, r := range results {
		failed += r.failed
		breakered += r.breakerd
		if w%2 == 1 {
			wbAcked += len(r.acked)
		}
	}
	if breakered == 0 {
		t.Errorf("write-through failed %d times during the outage, never by the open breaker", failed)
	}
	waitFor(t, 30*time.Second, "the write-back backlog drains", func() bool {
		st, err := cl.Stats(opCtx(t), &cachev1.StatsRequest{})
		return err == nil && st.DirtyKeys == 0
	})
	for _, r := range results {
		for k, v := range r.acked {
			if row, ok := d.row(t, k); !ok || row.Version != v {
				t.Errorf("acknowledged %s at version %d: database row %+v (found %v)", k, v, row, ok)
			}
		}
	}
	t.Logf("outage %v: write-through failed %d times (%d by the open breaker); %d write-back keys acked and flushed",
		outage, failed, breakered, wbAcked)
}

// TestAllowStaleWhileDatabaseDown: a miss that cannot be refilled fails,
// unless the read allows a stale answer and the cache still holds the
// key's expired value.
func TestAllowStaleWhileDatabaseDown(t *testing.T) {
	d := databases(t)[1]
	cl := dial(t, startWith(t, d, func(c *node.Config) {
		c.ReapInterval = time.Hour // keep the expired entry around
		c.Backing.Attempts = 1
	}).Addr())
	if _, err := cl.Put(opCtx(t), &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v1"),
		Options: &cachev1.WriteOptions{Mode: cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH, Ttl: durationpb.New(200 * time.Millisecond)}}); err != nil {
		t.Fatal(err)
	}
	d.pg.Stop()
	time.Sleep(300 * time.Millisecond)
	if _, err := cl.Get(opCtx(t), &cachev1.GetRequest{Key: []byte("k")}); status.Code(err) != codes.Unavailable {
		t.Fatalf("expired key with the database down: err = %v, want Unavailable", err)
	}
	r, err := cl.Get(opCtx(t), &cachev1.GetRequest{Key: []byte("k"), Options: &cachev1.ReadOptions{AllowStale: true}})
	if err != nil || !r.Found || string(r.Entry.Value) != "v1" || !r.Meta.Stale {
		t.Fatalf("allow_stale read = %v, %v; want v1 marked stale", r, err)
	}
}

// rejectLongValues makes d's table refuse rows whose value is longer than
// 20 bytes, as a user's own constraint would.
func rejectLongValues(t *testing.T, d *database) {
	t.Helper()
	stmts := []string{`ALTER TABLE elcache_entries ADD CONSTRAINT short_values CHECK (length(value) <= 20)`}
	if d.pg == nil {
		stmts = []string{
			`CREATE TRIGGER short_ins BEFORE INSERT ON elcache_entries WHEN length(NEW.value) > 20
				BEGIN SELECT RAISE(ABORT, 'value too long'); END`,
			`CREATE TRIGGER short_upd BEFORE UPDATE ON elcache_entries WHEN length(NEW.value) > 20
				BEGIN SELECT RAISE(ABORT, 'value too long'); END`,
		}
	}
	db := d.sqlDB(t)
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
	}
}

// TestDatabaseRefusesRows: the table refuses some values (a constraint of
// the user's). A write-through of one fails with FailedPrecondition and
// leaves no trace; a write-back of one stays dirty (not lost) and is
// reported, while every other dirty row of its partition is flushed; and
// the breaker stays closed, so other writes go on.
func TestDatabaseRefusesRows(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			rejectLongValues(t, d)
			cl := dial(t, startWith(t, d, func(c *node.Config) {
				c.Partitions = 1 // every key in the refused row's partition
				c.Backing.BreakerFailures = 2
			}).Addr())
			long := strings.Repeat("x", 40)
			for range 3 {
				_, err := putMode(t, cl, "wt-long", long, cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH)
				if status.Code(err) != codes.FailedPrecondition {
					t.Fatalf("write-through of a refused value: %v, want FailedPrecondition", err)
				}
			}
			if r := getKey(t, cl, "wt-long"); r.Found {
				t.Fatalf("a refused write-through is readable: %v", r)
			}
			// The breaker did not open: write-through goes on.
			if _, err := putMode(t, cl, "wt-ok", "fine", cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH); err != nil {
				t.Fatalf("write-through after refused rows: %v", err)
			}

			if _, err := putMode(t, cl, "wb-long", long, cachev1.WriteMode_WRITE_MODE_WRITE_BACK); err != nil {
				t.Fatal(err)
			}
			want := make(map[string]uint64)
			for i := range 30 {
				k := fmt.Sprintf("wb-%d", i)
				resp, err := putMode(t, cl, k, "short", cachev1.WriteMode_WRITE_MODE_WRITE_BACK)
				if err != nil {
					t.Fatal(err)
				}
				want[k] = resp.Version
			}
			waitFor(t, 10*time.Second, "every other row is flushed", func() bool {
				st, err := cl.Stats(opCtx(t), &cachev1.StatsRequest{})
				return err == nil && st.DirtyKeys == 1 && st.DirtyRefused == 1
			})
			for k, v := range want {
				if row, ok := d.row(t, k); !ok || row.Version != v {
					t.Errorf("row of %s = %+v (found %v), want version %d", k, row, ok, v)
				}
			}
			if _, ok := d.row(t, "wb-long"); ok {
				t.Error("the refused row is in the database")
			}
			r := getKey(t, cl, "wb-long")
			if !r.Found || string(r.Entry.Value) != long || !r.Entry.Dirty {
				t.Fatalf("the refused write-back entry = %v, want it kept, dirty", r)
			}
		})
	}
}
