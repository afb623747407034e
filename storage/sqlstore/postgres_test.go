package sqlstore_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elcache/elcache/storage/sqlstore"
	"github.com/elcache/elcache/storage/sqlstore/pgtest"
)

// testCalls checks that PostgreSQL itself counts what the Store ran: one
// statement per Load, one per Write whatever the batch's size.
func testCalls(t *testing.T, e env, srv *pgtest.Server) {
	s := e.open(t, sqlstore.Options{})
	loads, writes := srv.Calls(t, sqlstore.LoadMarker), srv.Calls(t, sqlstore.WriteMarker)
	for i := range 3 {
		mustLoad(t, s, fmt.Sprint(i))
	}
	var batch []sqlstore.Row
	for i := range 300 {
		batch = append(batch, put(fmt.Sprint(i), "v", 1))
	}
	mustWrite(t, s, batch...)
	mustWrite(t, s, put("x", "v", 1))
	if got := srv.Calls(t, sqlstore.LoadMarker) - loads; got != 3 {
		t.Errorf("3 Loads ran %d load statements", got)
	}
	if got := srv.Calls(t, sqlstore.WriteMarker) - writes; got != 2 {
		t.Errorf("2 Writes (300 rows and 1) ran %d write statements", got)
	}
}

// testConcurrentCreate opens one new table from several stores at once, as
// the nodes of a cluster starting together do.
func testConcurrentCreate(t *testing.T, e env) {
	table := fmt.Sprintf("raced_%d", tableSeq.Add(1))
	var wg sync.WaitGroup
	stores := make([]*sqlstore.Store, 6)
	for i := range stores {
		wg.Go(func() {
			s, err := sqlstore.Open(ctx(t), e.url(t), sqlstore.Options{Table: table, CreateTable: true})
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
				return
			}
			stores[i] = s
		})
	}
	wg.Wait()
	for _, s := range stores {
		if s != nil {
			s.Close()
		}
	}
}

func testPostgresOpenErrors(t *testing.T, srv *pgtest.Server) {
	// Nothing listens on a port just freed: connection refused, transient.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, tc := range []struct {
		name, url string
		transient bool
		want      string
	}{
		{"refused", "postgres://elcache:s3cret@" + closed + "/db?sslmode=disable&connect_timeout=5", true, "xxxxx"},
		{"unknown database", strings.Replace(srv.URL(), "elcache_test", "no_such_db", 1), false, "no_such_db"},
		{"unknown user", strings.Replace(srv.URL(), "postgres@", "nobody:pw@", 1), false, "nobody"},
		{"bad parameter", srv.URL() + "&sslmode=sometimes", false, "sslmode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sqlstore.Open(ctx(t), tc.url, sqlstore.Options{CreateTable: true})
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if got := sqlstore.IsTransient(err); got != tc.transient {
				t.Errorf("IsTransient = %v, want %v: %v", got, tc.transient, err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), ":pw@") {
				t.Errorf("error should mention %q and no password: %v", tc.want, err)
			}
		})
	}
}

// testKeyOverIndexLimit documents a PostgreSQL limit: a B-tree entry holds
// at most about 2.7 KB, so incompressible keys longer than that are refused
// (a permanent error).
func testKeyOverIndexLimit(t *testing.T, e env) {
	s := e.open(t, sqlstore.Options{})
	// The longest key the node allows with PostgreSQL fits, even random.
	key := make([]byte, sqlstore.Postgres.MaxKeyBytes())
	rand.Read(key)
	mustWrite(t, s, sqlstore.Row{Key: key, Value: []byte("v"), Version: 1})
	if r, ok, err := s.Load(ctx(t), key); err != nil || !ok || r.Version != 1 {
		t.Fatalf("a random key of %d bytes: load %+v, %v, %v", len(key), r, ok, err)
	}
	key = make([]byte, 4<<10)
	rand.Read(key)
	_, err := s.Write(ctx(t), []sqlstore.Row{{Key: key, Value: []byte("v"), Version: 1}})
	if err == nil {
		t.Skip("this PostgreSQL accepted a 4 KiB random key")
	}
	if sqlstore.IsTransient(err) || !sqlstore.IsRowError(err) {
		t.Fatalf("IsTransient(%v) = %v, IsRowError = %v; want a permanent row error", err, sqlstore.IsTransient(err), sqlstore.IsRowError(err))
	}
	t.Logf("a 4 KiB key: %v", err)
	// Repetitive keys compress and fit.
	key = bytes.Repeat([]byte("k"), 8<<10)
	if _, err := s.Write(ctx(t), []sqlstore.Row{{Key: key, Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatalf("a compressible 8 KiB key: %v", err)
	}
}

// testOutage stops the database under a Store: its operations fail with
// transient errors, then succeed once the database is back, through the
// same Store.
func testOutage(t *testing.T, e env, srv *pgtest.Server) {
	s := e.open(t, sqlstore.Options{})
	mustWrite(t, s, put("k", "v1", 1))

	srv.Stop()
	_, err := s.Write(ctx(t), []sqlstore.Row{put("k", "v2", 2)})
	if err == nil || !sqlstore.IsTransient(err) {
		t.Fatalf("Write while stopped: %v, want a transient error", err)
	}
	_, _, err = s.Load(ctx(t), []byte("k"))
	if err == nil || !sqlstore.IsTransient(err) {
		t.Fatalf("Load while stopped: %v, want a transient error", err)
	}
	if err := s.Ping(ctx(t)); err == nil || !sqlstore.IsTransient(err) {
		t.Fatalf("Ping while stopped: %v, want a transient error", err)
	}
	srv.Restart()
	retryWrite(t, s, put("k", "v2", 2))
	wantRow(t, s, "k", "v2", 2, false)

	// An outage that ends by itself, as a flusher sees it: retry transient
	// errors until the write lands.
	back := srv.StopFor(300 * time.Millisecond)
	failures := retryWrite(t, s, put("k", "v3", 3))
	<-back
	wantRow(t, s, "k", "v3", 3, false)
	if failures == 0 {
		t.Errorf("no Write failed during the outage")
	}
}

// retryWrite writes until the write succeeds, for at most 30s, failing on
// a permanent error; it returns the number of failed attempts.
func retryWrite(t *testing.T, s *sqlstore.Store, r sqlstore.Row) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for failures := 0; ; failures++ {
		n, err := s.Write(ctx(t), []sqlstore.Row{r})
		if err == nil {
			if n != 1 {
				t.Fatalf("Write applied %d, want 1", n)
			}
			return failures
		}
		if !sqlstore.IsTransient(err) {
			t.Fatalf("Write: permanent error: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Write still failing after 30s: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // a retry backoff
	}
}
