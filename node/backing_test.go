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

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/storage/sqlstore"
	"github.com/elcache/elcache/storage/sqlstore/pgtest"
	"github.com/google/uuid"
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

// TestWriteAroundFillRace forces the race memcache leases fix: a refill
// loads the old row, a write-around then writes a new one, and only then
// does the refill try to store what it loaded. The fence refuses it, and
// the next read returns the new value. With the fence broken
// (Node.BreakRefillFenceForTest) the stale row is stored and read back
// while the database holds the new one: the race is real, and the switch
// breaks what it claims to.
func TestWriteAroundFillRace(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				broken bool
			}{{"fenced", false}, {"broken", true}} {
				t.Run(tc.name, func(t *testing.T) { writeAroundFillRace(t, d, "k-"+tc.name, tc.broken) })
			}
		})
	}
}

func writeAroundFillRace(t *testing.T, d *database, key string, broken bool) {
	n := startWith(t, d)
	n.BreakRefillFenceForTest(broken)
	cl := dial(t, n.Addr())
	if _, err := putMode(t, cl, key, "old", cachev1.WriteMode_WRITE_MODE_WRITE_AROUND); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var newVersion uint64
	n.SetFillHookForTest(func([]byte) {
		once.Do(func() {
			resp, err := putMode(t, cl, key, "new", cachev1.WriteMode_WRITE_MODE_WRITE_AROUND)
			if err != nil {
				t.Errorf("write-around during the fill: %v", err)
				return
			}
			newVersion = resp.Version
		})
	})
	// This read loaded "old"; the write-around ran before its fill.
	first := getKey(t, cl, key)
	n.SetFillHookForTest(nil)
	if !first.Found || string(first.Entry.Value) != "old" {
		t.Fatalf("first read = %v, want the old row it loaded", first)
	}
	if row, _ := d.row(t, key); string(row.Value) != "new" || row.Version != newVersion {
		t.Fatalf("database row %+v, want new at %d", row, newVersion)
	}
	second := getKey(t, cl, key)
	if broken {
		if !second.Found || string(second.Entry.Value) != "old" || second.Entry.Version != first.Entry.Version {
			t.Fatalf("with the fence broken, the read after the write-around = %v, want the stale fill (old at version %d)",
				second, first.Entry.Version)
		}
		return
	}
	if !second.Found || string(second.Entry.Value) != "new" || second.Entry.Version != newVersion {
		t.Fatalf("read after the write-around = %v, want \"new\" at version %d: a stale fill won", second, newVersion)
	}
}

// TestRefillJoinedAfterWrite: a read that begins after a write-around was
// acknowledged, misses on its fence and joins a load that began before
// the write, must not get that load's old row (the fill is refused, and
// the read loads again). The fault suite found it: such a read returned
// the previous version, 2 ms after the newer one was acknowledged.
func TestRefillJoinedAfterWrite(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			n := startWith(t, d)
			cl := dial(t, n.Addr())
			const key = "joined-late"
			if _, err := putMode(t, cl, key, "old", cachev1.WriteMode_WRITE_MODE_WRITE_AROUND); err != nil {
				t.Fatal(err)
			}
			misses := func() uint64 {
				st, err := cl.Stats(opCtx(t), &cachev1.StatsRequest{})
				if err != nil {
					t.Error(err)
					return 0
				}
				return st.Misses
			}
			var once sync.Once
			var newVersion uint64
			late := make(chan *cachev1.GetResponse, 1)
			n.SetFillHookForTest(func([]byte) {
				once.Do(func() {
					resp, err := putMode(t, cl, key, "new", cachev1.WriteMode_WRITE_MODE_WRITE_AROUND)
					if err != nil {
						t.Errorf("write-around during the load: %v", err)
						return
					}
					newVersion = resp.Version
					before := misses()
					go func() { late <- getKey(t, cl, key) }()
					waitFor(t, 5*time.Second, "the late read misses", func() bool { return misses() > before })
					// From its miss to joining the load is a few
					// instructions.
					time.Sleep(50 * time.Millisecond)
				})
			})
			first := getKey(t, cl, key)
			n.SetFillHookForTest(nil)
			if !first.Found || string(first.Entry.Value) != "old" {
				t.Fatalf("first read = %v, want the old row it loaded", first)
			}
			second := <-late
			if !second.Found || string(second.Entry.Value) != "new" || second.Entry.Version != newVersion {
				t.Fatalf("a read that began after the write-around (version %d) was acknowledged got %v: an old row from a load it joined",
					newVersion, second)
			}
		})
	}
}

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

// TestThunderingHerd: 1,000 concurrent reads of a key the cache does not
// hold cost the database one load, as PostgreSQL itself counts.
func TestThunderingHerd(t *testing.T) {
	d := databases(t)[1]
	if _, err := d.store.Write(context.Background(), []sqlstore.Row{{Key: []byte("hot"), Value: []byte("from-db"), Version: 7}}); err != nil {
		t.Fatal(err)
	}
	n := startWith(t, d)
	conns := make([]cachev1.CacheClient, 20)
	for i := range conns {
		conns[i] = dial(t, n.Addr())
	}
	before := d.pg.Calls(t, sqlstore.LoadMarker)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := conns[i%len(conns)].Get(context.Background(), &cachev1.GetRequest{Key: []byte("hot")})
			if err == nil && (!r.Found || string(r.Entry.Value) != "from-db" || r.Entry.Version != 7) {
				err = fmt.Errorf("read %v", r)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent miss: %v", err)
	}
	if loads := d.pg.Calls(t, sqlstore.LoadMarker) - before; loads != 1 {
		t.Fatalf("1,000 concurrent misses made %d database loads, want 1", loads)
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

// TestBreakFlushOrder: with the flush order broken
// (Node.BreakFlushOrderForTest), a write-back write acknowledged while the
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
			n.BreakFlushOrderForTest(broken)
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

// TestNegativeCaching: with a negative TTL, a key the database does not
// have is remembered as absent: misses within the TTL cost no load.
func TestNegativeCaching(t *testing.T) {
	d := databases(t)[1]
	cl := dial(t, startWith(t, d, func(c *node.Config) { c.Backing.NegativeTTL = time.Minute }).Addr())
	before := d.pg.Calls(t, sqlstore.LoadMarker)
	for range 5 {
		if r := getKey(t, cl, "nowhere"); r.Found {
			t.Fatalf("get of a key the database lacks = %v", r)
		}
	}
	if loads := d.pg.Calls(t, sqlstore.LoadMarker) - before; loads != 1 {
		t.Fatalf("5 misses of an absent key made %d loads, want 1 (then negative hits)", loads)
	}
	// A write replaces the negative entry at once.
	if _, err := putMode(t, cl, "nowhere", "now", cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH); err != nil {
		t.Fatal(err)
	}
	if r := getKey(t, cl, "nowhere"); !r.Found || string(r.Entry.Value) != "now" {
		t.Fatalf("get after the write = %v", r)
	}
}

// TestRefillLoaderKilled: the node loading a missing key dies in the middle
// of the load (after its database read, before the fill), with readers
// waiting for that load through the other nodes. The new leader takes the
// load over: every waiting reader gets the row, and the database saw
// exactly two loads, the dead node's and its successor's.
func TestRefillLoaderKilled(t *testing.T) {
	d := databases(t)[1]
	if _, err := d.store.Write(context.Background(), []sqlstore.Row{{Key: []byte("hot"), Value: []byte("from-db"), Version: 7}}); err != nil {
		t.Fatal(err)
	}
	c := nodetest.StartCluster(t, 3, func(_ int, cfg *node.Config) { cfg.Backend = d.url })
	loading := make(chan int, 1) // the index of the first loader
	release := make(chan struct{})
	var first sync.Once
	for i, n := range c.Nodes {
		n.SetFillHookForTest(func([]byte) {
			mine := false
			first.Do(func() { mine = true })
			if mine {
				loading <- i
				<-release // never released before the node dies
			}
		})
	}
	t.Cleanup(func() { close(release) })
	before := d.pg.Calls(t, sqlstore.LoadMarker)

	type result struct {
		via int
		r   *cachev1.GetResponse
		err error
	}
	results := make(chan result, 64)
	read := func(via int) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := dial(t, c.Nodes[via].Addr()).Get(ctx, &cachev1.GetRequest{Key: []byte("hot")})
		results <- result{via, r, err}
	}
	go read(0)
	var loader int
	select {
	case loader = <-loading:
	case <-time.After(20 * time.Second):
		t.Fatal("no node started loading the missing key")
	}
	// Readers through the other nodes join the load in flight on the
	// loader (their nodes forward the miss to it).
	const waiting = 40
	others := []int{(loader + 1) % 3, (loader + 2) % 3}
	for i := range waiting {
		go read(others[i%2])
	}
	time.Sleep(300 * time.Millisecond) // let the readers reach the loader
	c.Kill(loader)

	served := 0
	for range waiting + 1 {
		res := <-results
		if res.via == loader {
			continue // its client was connected to the node that died
		}
		if res.err != nil {
			t.Errorf("read through n%d after the loader died: %v", res.via, res.err)
			continue
		}
		if !res.r.Found || string(res.r.Entry.Value) != "from-db" || res.r.Entry.Version != 7 {
			t.Errorf("read through n%d = %v, want from-db at version 7", res.via, res.r)
			continue
		}
		served++
	}
	if loads := d.pg.Calls(t, sqlstore.LoadMarker) - before; loads != 2 {
		t.Errorf("the database saw %d loads of the key, want 2 (the dead loader's and one by its successor)", loads)
	}
	t.Logf("loader n%d killed mid-load; %d waiting readers served by the new leader", loader, served)
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
