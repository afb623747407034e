package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elcache/elcache/storage/sqlstore"
	"github.com/elcache/elcache/storage/sqlstore/pgtest"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// Store must be closed, every pgtest server stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env opens stores on one database.
type env struct {
	dialect sqlstore.Dialect
	// url returns the URL of a database for the test: a new file for
	// SQLite, the shared test database for PostgreSQL.
	url func(t testing.TB) string
}

func sqliteEnv() env {
	return env{dialect: sqlstore.SQLite, url: func(t testing.TB) string {
		return "sqlite://" + filepath.Join(t.TempDir(), "elcache.db")
	}}
}

func postgresEnv(srv *pgtest.Server) env {
	return env{dialect: sqlstore.Postgres, url: func(testing.TB) string { return srv.URL() }}
}

var tableSeq atomic.Int64

// open opens a Store on a new table (unless opts names one), created at
// Open, closed when the test ends.
func (e env) open(t testing.TB, opts sqlstore.Options) *sqlstore.Store {
	t.Helper()
	return e.openURL(t, e.url(t), opts)
}

func (e env) openURL(t testing.TB, url string, opts sqlstore.Options) *sqlstore.Store {
	t.Helper()
	if opts.Table == "" {
		opts.Table = fmt.Sprintf("entries_%d", tableSeq.Add(1))
	}
	opts.CreateTable = true
	s, err := sqlstore.Open(ctx(t), url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if s.Dialect() != e.dialect {
		t.Fatalf("Dialect() = %q, want %q", s.Dialect(), e.dialect)
	}
	return s
}

// ctx returns a context that ends with the test or after a minute.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func TestSQLite(t *testing.T) {
	testConformance(t, sqliteEnv())
}

// TestPostgres runs everything that needs PostgreSQL on one server: the
// conformance suite, then the PostgreSQL-only tests, then the outage tests
// that stop it.
func TestPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	e := postgresEnv(srv)
	testConformance(t, e)
	t.Run("CallsCountsStatements", func(t *testing.T) { testCalls(t, e, srv) })
	t.Run("ConcurrentCreateTable", func(t *testing.T) { testConcurrentCreate(t, e) })
	t.Run("OpenErrors", func(t *testing.T) { testPostgresOpenErrors(t, srv) })
	t.Run("KeyOverIndexLimit", func(t *testing.T) { testKeyOverIndexLimit(t, e) })
	t.Run("Outage", func(t *testing.T) { testOutage(t, e, srv) })
}

// testConformance is the behaviour every dialect must have.
func testConformance(t *testing.T, e env) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, e env)
	}{
		{"LoadMissing", testLoadMissing},
		{"WriteThenLoad", testWriteThenLoad},
		{"OlderAndEqualVersionsAreNoOps", testOlderAndEqual},
		{"TombstoneBlocksOlderPut", testTombstoneBlocksOlderPut},
		{"PutAfterTombstone", testPutAfterTombstone},
		{"Batch500Mixed", testBatchMixed},
		{"ReplayChangesNothing", testReplay},
		{"DuplicateKeysInBatch", testDuplicateKeys},
		{"ConcurrentWritersKeepMax", testConcurrentWriters},
		{"CustomNames", testCustomNames},
		{"MissingTable", testMissingTable},
		{"InvalidRows", testInvalidRows},
		{"ApplySchemaTwice", testApplySchemaTwice},
		{"Closed", testClosed},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, e) })
	}
}

func mustWrite(t testing.TB, s *sqlstore.Store, rows ...sqlstore.Row) int {
	t.Helper()
	n, err := s.Write(ctx(t), rows)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return n
}

func mustLoad(t testing.TB, s *sqlstore.Store, key string) (sqlstore.Row, bool) {
	t.Helper()
	r, ok, err := s.Load(ctx(t), []byte(key))
	if err != nil {
		t.Fatalf("Load(%q): %v", key, err)
	}
	return r, ok
}

// wantRow fails unless key's row has the value, version and deleted flag.
func wantRow(t testing.TB, s *sqlstore.Store, key, value string, version uint64, deleted bool) sqlstore.Row {
	t.Helper()
	r, ok := mustLoad(t, s, key)
	if !ok {
		t.Fatalf("Load(%q): not found, want version %d", key, version)
	}
	if string(r.Key) != key || string(r.Value) != value || r.Version != version || r.Deleted != deleted {
		t.Fatalf("Load(%q) = {key %q value %q version %d deleted %v}, want {value %q version %d deleted %v}",
			key, r.Key, r.Value, r.Version, r.Deleted, value, version, deleted)
	}
	return r
}

func put(key, value string, version uint64) sqlstore.Row {
	return sqlstore.Row{Key: []byte(key), Value: []byte(value), Version: version, IdempotencyKey: fmt.Sprintf("put-%s-%d", key, version)}
}

func del(key string, version uint64) sqlstore.Row {
	return sqlstore.Row{Key: []byte(key), Version: version, Deleted: true, IdempotencyKey: fmt.Sprintf("del-%s-%d", key, version)}
}

func testLoadMissing(t *testing.T, e env) {
	s := e.open(t, sqlstore.Options{})
	if r, ok := mustLoad(t, s, "absent"); ok {
		t.Fatalf("Load(absent) = %+v, found", r)
	}
}

func testWriteThenLoad(t *testing.T, e env) {
	s := e.open(t, sqlstore.Options{})
	if n := mustWrite(t, s, put("a", "alpha", 7)); n != 1 {
		t.Fatalf("applied %d, want 1", n)
	}
	r := wantRow(t, s, "a", "alpha", 7, false)
	if r.IdempotencyKey != "put-a-7" {
		t.Fatalf("IdempotencyKey = %q, want put-a-7", r.IdempotencyKey)
	}
	// Binary keys and values, an empty value, a 1 KiB key (the node's
	// default limit) and a 1 MiB value.
	bigKey := bytes.Repeat([]byte{0, 0xff, 'k'}, 1<<10/3)
	bigValue := make([]byte, 1<<20)
	for i := range bigValue {
		bigValue[i] = byte(i * 7)
	}
	rows := []sqlstore.Row{
		{Key: []byte{0, 1, 2, 0xff}, Value: []byte{0, 0, 0xfe}, Version: 1},
		{Key: []byte("empty"), Value: nil, Version: math.MaxInt64},
		{Key: bigKey, Value: bigValue, Version: 2},
	}
	if n := mustWrite(t, s, rows...); n != 3 {
		t.Fatalf("applied %d, want 3", n)
	}
	for _, want := range rows {
		got, ok, err := s.Load(ctx(t), want.Key)
		if err != nil || !ok {
			t.Fatalf("Load(%x): %v, %v", want.Key[:4], ok, err)
		}
		if !bytes.Equal(got.Value, want.Value) || got.Version != want.Version || got.Deleted || !bytes.Equal(got.Key, want.Key) {
			t.Fatalf("Load(%x): value of %d bytes at version %d, want %d bytes at %d", want.Key[:4], len(got.Value), got.Version, len(want.Value), want.Version)
		}
	}
}

func testOlderAndEqual(t *testing.T, e env) {
	s := e.open(t, sqlstore.Options{})
	mustWrite(t, s, put("k", "v5", 5))
	for _, r := range []sqlstore.Row{put("k", "older", 4), put("k", "equal", 5), put("k", "oldest", 1), del("k", 5), del("k", 2)} {
		if n := mustWrite(t, s, r); n != 0 {
			t.Fatalf("Write(%s at %d) applied %d, want 0", r.Value, r.Version, n)
		}
	}
	r := wantRow(t, s, "k", "v5", 5, false)
	if r.IdempotencyKey != "put-k-5" {
		t.Fatalf("IdempotencyKey = %q: a no-op write changed the row", r.IdempotencyKey)
	}
}

func testTombstoneBlocksOlderPut(t *testing.T, e env) {
	s := e.open(t, sqlstore.Options{})
	mustWrite(t, s, put("k", "v5", 5))
	tomb := del("k", 7)
	tomb.Value = []byte("ignored")
	if n := mustWrite(t, s, tomb); n != 1 {
		t.Fatalf("delete applied %d, want 1", n)
	}
	wantRow(t, s, "k", "", 7, true)
	// A replayed or late put older than the delete must not resurrect it.
	for _, v := range []uint64{6, 7, 5} {
		if n := mustWrite(t, s, put("k", "late", v)); n != 0 {
			t.Fatalf("put at %d after a delete at 7 applied %d, want 0", v, n)
		}
	}
	r := wantRow(t, s, "k", "", 7, true)
	if r.IdempotencyKey != "del-k-7" {
		t.Fatalf("IdempotencyKey = %q, want del-k-7", r.IdempotencyKey)
	}
}

func testPutAfterTombstone(t *testing.T, e env) {
	s := e.open(t, sqlstore.Options{})
	// A delete of a key the table never had still leaves a tombstone.
	if n := mustWrite(t, s, del("k", 3)); n != 1 {
		t.Fatalf("delete applied %d, want 1", n)
	}
	wantRow(t, s, "k", "", 3, true)
	if n := mustWrite(t, s, put("k", "back", 4)); n != 1 {
		t.Fatalf("put after the tombstone applied %d, want 1", n)
	}
	wantRow(t, s, "k", "back", 4, false)
	if n := mustWrite(t, s, del("k", 9), put("other", "x", 1)); n != 2 {
		t.Fatalf("applied %d, want 2", n)
	}
	wantRow(t, s, "k", "", 9, true)
}

// testBatchMixed writes 500 rows in one Write: 400 keys the table holds at
// version 100, a third newer, a third equal and a third older, and 100 new
// keys.
func testBatchMixed(t *testing.T, e env) {
	s := e.open(t, sqlstore.Options{})
	key := func(i int) string { return fmt.Sprintf("key-%04d", i) }
	var seed []sqlstore.Row
	for i := range 400 {
		seed = append(seed, put(key(i), "old", 100))
	}
	if n := mustWrite(t, s, seed...); n != 400 {
		t.Fatalf("seed applied %d, want 400", n)
	}
	var batch []sqlstore.Row
	wantApplied := 0
	want := map[string]sqlstore.Row{}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, i := range rng.Perm(500) {
		var r sqlstore.Row
		switch {
		case i >= 400:
			r = put(key(i), "new", uint64(1+i%7))
		case i%3 == 0:
			r = put(key(i), "newer", 150)
		case i%3 == 1:
			r = put(key(i), "equal", 100)
		default:
			r = put(key(i), "older", 50)
		}
		if i%10 == 9 {
			r.Deleted, r.Value = true, nil
		}
		batch = append(batch, r)
		if i >= 400 || i%3 == 0 {
			wantApplied++
			want[key(i)] = r
		} else {
			want[key(i)] = seed[i]
		}
	}
	if n := mustWrite(t, s, batch...); n != wantApplied {
		t.Fatalf("applied %d, want %d", n, wantApplied)
	}
	for k, r := range want {
		wantRow(t, s, k, string(r.Value), r.Version, r.Deleted)
	}
}

func testReplay(t *testing.T, e env) {
	s := e.open(t, sqlstore.Options{})
	var batch []sqlstore.Row
	for i := range 100 {
		if i%4 == 0 {
			batch = append(batch, del(fmt.Sprint(i), uint64(i+1)))
		} else {
			batch = append(batch, put(fmt.Sprint(i), "v", uint64(i+1)))
		}
	}
	if n := mustWrite(t, s, batch...); n != 100 {
		t.Fatalf("first write applied %d, want 100", n)
	}
	for range 2 {
		if n := mustWrite(t, s, batch...); n != 0 {
			t.Fatalf("replay applied %d, want 0", n)
		}
	}
	wantRow(t, s, "4", "", 5, true)
	wantRow(t, s, "5", "v", 6, false)
}

func testDuplicateKeys(t *testing.T, e env) {
	s := e.open(t, sqlstore.Options{})
	mustWrite(t, s, put("k", "v4", 4))
	batch := []sqlstore.Row{put("k", "v3", 3), put("k", "v9", 9), del("k", 6), put("j", "j1", 1), put("j", "j1-again", 1)}
	if n := mustWrite(t, s, batch...); n != 2 {
		t.Fatalf("applied %d, want 2 (one per key)", n)
	}
	wantRow(t, s, "k", "v9", 9, false)
	wantRow(t, s, "j", "j1", 1, false)
}

// testConcurrentWriters races writers over the same keys with random
// versions; each key must end at the highest version any writer sent.
func testConcurrentWriters(t *testing.T, e env) {
	s := e.open(t, sqlstore.Options{})
	const writers, batches, perBatch, keys = 8, 20, 32, 64
	var mu sync.Mutex
	maxVer := map[string]uint64{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for range batches {
				var batch []sqlstore.Row
				for range perBatch {
					k := fmt.Sprintf("k%02d", rng.IntN(keys))
					v := 1 + rng.Uint64N(10_000)
					r := put(k, fmt.Sprint(v), v)
					if v%5 == 0 {
						r = del(k, v)
					}
					batch = append(batch, r)
					mu.Lock()
					maxVer[k] = max(maxVer[k], v)
					mu.Unlock()
				}
				if _, err := s.Write(ctx(t), batch); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for k, v := range maxVer {
		value := fmt.Sprint(v)
		if v%5 == 0 {
			value = ""
		}
		wantRow(t, s, k, value, v, v%5 == 0)
	}
}

func testCustomNames(t *testing.T, e env) {
	opts := sqlstore.Options{
		Table: fmt.Sprintf("My_Cache_%d", tableSeq.Add(1)),
		Columns: sqlstore.Columns{
			Key: "k", Value: "Payload", Version: "ver", Deleted: "gone",
			IdempotencyKey: "write_id", UpdatedAt: "changed_at",
		},
	}
	s := e.open(t, opts)
	for _, name := range []string{`"` + opts.Table + `"`, `"Payload"`, `"write_id"`, `"changed_at"`} {
		if !strings.Contains(s.Schema(), name) {
			t.Errorf("Schema() lacks %s:\n%s", name, s.Schema())
		}
	}
	mustWrite(t, s, put("a", "1", 1), del("b", 2))
	mustWrite(t, s, put("a", "0", 1))
	wantRow(t, s, "a", "1", 1, false)
	wantRow(t, s, "b", "", 2, true)
	// The default table in the same database is untouched.
	def := e.openURL(t, e.url(t), sqlstore.Options{Table: sqlstore.DefaultTable})
	if _, ok := mustLoad(t, def, "a"); ok {
		t.Fatalf("key a found in %s", sqlstore.DefaultTable)
	}
}

func testMissingTable(t *testing.T, e env) {
	url := e.url(t)
	_, err := sqlstore.Open(ctx(t), url, sqlstore.Options{Table: "no_such_table"})
	if err == nil {
		t.Fatal("Open of a missing table without CreateTable succeeded")
	}
	if !strings.Contains(err.Error(), `"no_such_table"`) || !strings.Contains(err.Error(), "CreateTable") {
		t.Errorf("error does not name the table and the way out: %v", err)
	}
	if sqlstore.IsTransient(err) {
		t.Errorf("IsTransient(%v) = true, want false", err)
	}
	// A table that lacks a column is refused too.
	e.openURL(t, url, sqlstore.Options{Table: "has_columns"})
	_, err = sqlstore.Open(ctx(t), url, sqlstore.Options{Table: "has_columns", Columns: sqlstore.Columns{Version: "revision"}})
	if err == nil || !strings.Contains(err.Error(), "revision") {
		t.Errorf("Open with a missing column: %v, want an error naming it", err)
	}
}

func testInvalidRows(t *testing.T, e env) {
	s := e.open(t, sqlstore.Options{})
	for _, tc := range []struct {
		name string
		row  sqlstore.Row
		want string
	}{
		{"empty key", sqlstore.Row{Version: 1}, "empty key"},
		{"version 0", sqlstore.Row{Key: []byte("k")}, "version 0"},
		{"version over int64", sqlstore.Row{Key: []byte("k"), Version: math.MaxInt64 + 1}, "version 9223372036854775808"},
		{"idempotency key with NUL", sqlstore.Row{Key: []byte("k"), Version: 1, IdempotencyKey: "a\x00b"}, "idempotency key"},
		{"idempotency key not UTF-8", sqlstore.Row{Key: []byte("k"), Version: 1, IdempotencyKey: "\xff"}, "idempotency key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The bad row comes second: nothing of the batch is written.
			n, err := s.Write(ctx(t), []sqlstore.Row{put("good", "g", 1), tc.row})
			if !errors.Is(err, sqlstore.ErrInvalidRow) || !strings.Contains(err.Error(), tc.want) || n != 0 {
				t.Fatalf("Write = %d, %v; want ErrInvalidRow mentioning %q", n, err, tc.want)
			}
			if sqlstore.IsTransient(err) {
				t.Fatalf("IsTransient(%v) = true", err)
			}
			if _, ok := mustLoad(t, s, "good"); ok {
				t.Fatal("the valid row of a refused batch was written")
			}
		})
	}
	if n, err := s.Write(ctx(t), nil); n != 0 || err != nil {
		t.Fatalf("Write(nil) = %d, %v", n, err)
	}
}

func testApplySchemaTwice(t *testing.T, e env) {
	s := e.open(t, sqlstore.Options{})
	mustWrite(t, s, put("k", "v", 1))
	for range 2 {
		if err := s.ApplySchema(ctx(t)); err != nil {
			t.Fatalf("ApplySchema: %v", err)
		}
	}
	wantRow(t, s, "k", "v", 1, false)
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if !strings.HasPrefix(strings.TrimLeft(s.Schema(), "- "), "elcache") || !strings.Contains(s.Schema(), "CREATE TABLE IF NOT EXISTS") {
		t.Fatalf("Schema() = %q", s.Schema())
	}
}

func testClosed(t *testing.T, e env) {
	opts := sqlstore.Options{Table: "closed", CreateTable: true}
	s, err := sqlstore.Open(ctx(t), e.url(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Write(ctx(t), []sqlstore.Row{put("k", "v", 1)}); !errors.Is(err, sqlstore.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if _, _, err := s.Load(ctx(t), []byte("k")); !errors.Is(err, sqlstore.ErrClosed) {
		t.Errorf("Load after Close: %v", err)
	}
	if err := s.Ping(ctx(t)); !errors.Is(err, sqlstore.ErrClosed) || sqlstore.IsTransient(err) {
		t.Errorf("Ping after Close: %v", err)
	}
}
