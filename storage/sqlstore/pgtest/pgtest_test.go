package pgtest_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/elcache/elcache/storage/sqlstore/pgtest"
	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func exec(t *testing.T, srv *pgtest.Server, sql string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// TestServer checks the lifecycle: statements are counted, data survives a
// restart on the same port, an outage ends by itself.
func TestServer(t *testing.T) {
	srv := pgtest.Start(t)
	if err := exec(t, srv, "CREATE TABLE t (x int)"); err != nil {
		t.Fatal(err)
	}
	before := srv.Calls(t, "/* marker */")
	for range 3 {
		if err := exec(t, srv, "INSERT /* marker */ INTO t VALUES (1)"); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.Calls(t, "/* marker */") - before; got != 3 {
		t.Fatalf("Calls counted %d inserts, want 3", got)
	}

	port := srv.Port()
	srv.Stop()
	if err := exec(t, srv, "SELECT 1"); err == nil {
		t.Fatal("a stopped server answered")
	}
	srv.Restart()
	if srv.Port() != port {
		t.Fatalf("port changed from %d to %d", port, srv.Port())
	}
	if err := exec(t, srv, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatalf("after Restart: %v", err)
	}

	back := srv.StopFor(200 * time.Millisecond)
	if err := exec(t, srv, "SELECT 1"); err == nil {
		t.Fatal("a server in an outage answered")
	}
	select {
	case <-back:
	case <-time.After(time.Minute):
		t.Fatal("the server did not come back")
	}
	if err := exec(t, srv, "SELECT count(*) FROM t"); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

// TestCleanup checks that the end of a test stops its server and removes
// its directory.
func TestCleanup(t *testing.T) {
	var dataDir string
	var port int
	t.Run("server", func(t *testing.T) {
		srv := pgtest.Start(t)
		port = srv.Port()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dataDir); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := os.Stat(filepath.Dir(dataDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the server's directory %s is still there: %v", filepath.Dir(dataDir), err)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Errorf("something still listens on the server's port %d", port)
	}
}

// TestDelayedURL: queries through the delayed URL work, large results
// arrive whole, and every round trip takes at least the delay.
func TestDelayedURL(t *testing.T) {
	srv := pgtest.Start(t)
	const rtt = 20 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.DelayedURL(rtt))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("SELECT 1 = %d, %v", n, err)
	}
	for range 3 {
		start := time.Now()
		if err := conn.QueryRow(ctx, "SELECT 2").Scan(&n); err != nil || n != 2 {
			t.Fatalf("SELECT 2 = %d, %v", n, err)
		}
		if took := time.Since(start); took < rtt {
			t.Fatalf("a round trip took %v through a relay with a %v round-trip delay", took, rtt)
		}
	}
	var s string
	if err := conn.QueryRow(ctx, "SELECT repeat('x', 1000000)").Scan(&s); err != nil || len(s) != 1000000 {
		t.Fatalf("a 1 MB result came back as %d bytes, %v", len(s), err)
	}
}
