package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/elcache/elcache/storage/sqlstore"
)

// `elcache schema --columns` prints and creates the table under the given
// column names.
func TestSchemaColumns(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "backing.db")
	schema := func(args ...string) (code int, stdout, stderr string) {
		var out, errOut strings.Builder
		code = runSchema(args, &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, ddl, stderr := schema("--backend", url, "--table", "cache_rows", "--columns", "key=cache_key,value=payload")
	if code != 0 {
		t.Fatalf("schema exited %d: %s", code, stderr)
	}
	for _, want := range []string{`CREATE TABLE IF NOT EXISTS "cache_rows"`, `"cache_key"`, `"payload"`, `"version"`} {
		if !strings.Contains(ddl, want) {
			t.Errorf("DDL lacks %s:\n%s", want, ddl)
		}
	}
	if strings.Contains(ddl, `"key"`) || strings.Contains(ddl, `"value"`) {
		t.Errorf("DDL still names the default key or value column:\n%s", ddl)
	}

	code, _, stderr = schema("--backend", url, "--columns", "key=cache_key,primary=id")
	if code != 2 || !strings.Contains(stderr, `--columns "key=cache_key,primary=id": unknown column role "primary"`) {
		t.Fatalf("schema with an unknown role exited %d: %s", code, stderr)
	}

	if code, _, stderr = schema("--backend", url, "--table", "cache_rows", "--columns", "key=cache_key,value=payload", "--apply"); code != 0 {
		t.Fatalf("schema --apply exited %d: %s", code, stderr)
	}
	// The table is there under those names: the store opens it without
	// creating it, and refuses it under the default names.
	cols := sqlstore.Columns{Key: "cache_key", Value: "payload"}
	s, err := sqlstore.Open(context.Background(), url, sqlstore.Options{Table: "cache_rows", Columns: cols})
	if err != nil {
		t.Fatalf("open the applied table: %v", err)
	}
	s.Close()
	if s, err := sqlstore.Open(context.Background(), url, sqlstore.Options{Table: "cache_rows"}); err == nil {
		s.Close()
		t.Fatal("the applied table also opens with the default column names")
	}
}
