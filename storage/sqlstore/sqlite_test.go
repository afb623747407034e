package sqlstore_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/storage/sqlstore"
)

// TestSQLiteBusy holds the write lock from another connection: a Write
// fails with a transient error after BusyTimeout, then succeeds once the
// lock is released.
func TestSQLiteBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	s := sqliteEnv().openURL(t, "sqlite://"+path, sqlstore.Options{BusyTimeout: 50 * time.Millisecond})
	mustWrite(t, s, put("k", "v1", 1))

	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	if _, err := other.Exec("BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Write(ctx(t), []sqlstore.Row{put("k", "v2", 2)})
	if err == nil || !sqlstore.IsTransient(err) {
		t.Fatalf("Write while another connection holds the lock: %v, want a transient error", err)
	}
	// Readers are not blocked by a writer in WAL mode.
	wantRow(t, s, "k", "v1", 1, false)
	if _, err := other.Exec("COMMIT"); err != nil {
		t.Fatal(err)
	}
	if n := mustWrite(t, s, put("k", "v2", 2)); n != 1 {
		t.Fatalf("applied %d, want 1", n)
	}
	wantRow(t, s, "k", "v2", 2, false)
}

// TestSQLiteSettings checks the durability settings and the relative URL
// form.
func TestSQLiteSettings(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("sub", 0o755); err != nil {
		t.Fatal(err)
	}
	s := sqliteEnv().openURL(t, "sqlite://sub/rel.db", sqlstore.Options{Table: "settings"})
	mustWrite(t, s, put("k", "v", 1))
	if _, err := os.Stat(filepath.Join(dir, "sub", "rel.db-wal")); err != nil {
		t.Errorf("no WAL file beside the database: %v", err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "sub", "rel.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var at string
	if err := db.QueryRow(`SELECT updated_at FROM settings`).Scan(&at); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", at); err != nil {
		t.Errorf("updated_at %q is not ISO 8601 UTC: %v", at, err)
	}
	// A missing directory is named in the error.
	_, err = sqlstore.Open(ctx(t), "sqlite:///no/such/dir/x.db", sqlstore.Options{CreateTable: true})
	if err == nil || !strings.Contains(err.Error(), "/no/such/dir") {
		t.Errorf("Open in a missing directory: %v", err)
	}
}
