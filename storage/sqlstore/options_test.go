package sqlstore_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/elcache/elcache/storage/sqlstore"
	"github.com/jackc/pgx/v5/pgconn"
)

var update = flag.Bool("update", false, "rewrite the testdata golden files")

func TestOptionsValidate(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, tc := range []struct {
		name string
		opts sqlstore.Options
		want []string // substrings of the error; none means valid
	}{
		{"zero value takes defaults", sqlstore.Options{}, nil},
		{"defaults", sqlstore.DefaultOptions(), nil},
		{"custom", sqlstore.Options{Table: "Cache_2", Columns: sqlstore.Columns{Key: "_k", Value: "v1"}}, nil},
		{"quote in table", sqlstore.Options{Table: `x"; DROP TABLE y; --`}, []string{"Table", "letters, digits and underscores"}},
		{"dot in table", sqlstore.Options{Table: "public.entries"}, []string{"Table"}},
		{"leading digit", sqlstore.Options{Table: "1x"}, []string{"starts with a digit"}},
		{"too long", sqlstore.Options{Table: long}, []string{"over the limit of 63"}},
		{"unicode", sqlstore.Options{Table: "tablé"}, []string{"Table"}},
		{"names differ only in case", sqlstore.Options{Columns: sqlstore.Columns{Key: "ID", Value: "id"}}, []string{`Columns.Key and Columns.Value are both "id"`}},
		{"every problem at once", sqlstore.Options{
			Table:       "a-b",
			Columns:     sqlstore.Columns{Key: "x y", Value: "version"},
			BusyTimeout: -1,
			MaxConns:    -2,
		}, []string{"Table", "Columns.Key", `Columns.Value and Columns.Version are both "version"`, "BusyTimeout", "MaxConns"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted the options")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			// Open reports the same, before connecting.
			_, openErr := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "x.db"), tc.opts)
			if openErr == nil || openErr.Error() != err.Error() {
				t.Errorf("Open: %v, want %v", openErr, err)
			}
		})
	}
}

func TestBadURLs(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want string
	}{
		{"", "no scheme"},
		{"/var/lib/elcache.db", "no scheme"},
		{"host=db user=u password=hunter2", "no scheme"},
		{"mysql://u:hunter2@db/x", `unknown scheme "mysql"`},
		{"sqlite://", "must name a file"},
		{"sqlite:///", "must name a file"},
		{"sqlite:///tmp/x.db?cache=shared", "no query parameters"},
		{"sqlite:///tmp/%zz.db", "bad escape"},
		{"postgres://u:hunter2@db:port/x", "invalid port"},
		{"postgres://u:hunter2@db:5432/x\x7f", "invalid control character"},
		{"postgres://u:hunt@er2@[::1/x", "missing ']'"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := sqlstore.Open(context.Background(), tc.url, sqlstore.Options{})
			if !errors.Is(err, sqlstore.ErrBadURL) {
				t.Fatalf("Open: %v, want ErrBadURL", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error lacks %q: %v", tc.want, err)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "er2") {
				t.Errorf("error shows the password: %v", err)
			}
			if sqlstore.IsTransient(err) {
				t.Errorf("IsTransient(%v) = true", err)
			}
			if _, err := sqlstore.DialectOf(tc.url); err == nil {
				t.Errorf("DialectOf accepted it")
			}
		})
	}
}

func TestDialectOf(t *testing.T) {
	for url, want := range map[string]sqlstore.Dialect{
		"sqlite:///var/lib/elcache/db.sqlite": sqlstore.SQLite,
		"SQLite://rel.db":                     sqlstore.SQLite,
		"postgres://u:p@db:5432/x":            sqlstore.Postgres,
		"postgresql://db/x?sslmode=require":   sqlstore.Postgres,
	} {
		if got, err := sqlstore.DialectOf(url); got != want || err != nil {
			t.Errorf("DialectOf(%q) = %q, %v; want %q", url, got, err, want)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@db:5432/x":              "postgres://u:xxxxx@db:5432/x",
		"postgres://u:se@c/ret@db/x":                 "postgres://u:xxxxx@db/x",
		"postgres://u@db/x":                          "postgres://u@db/x",
		"postgres://db/x?user=u&password=secret&a=b": "postgres://db/x?user=u&password=xxxxx&a=b",
		"host=db password='se cret' user=u":          "host=db password=xxxxx user=u",
		"host=db PASSWORD = secret":                  "host=db PASSWORD = xxxxx",
		"sqlite:///var/lib/x.db":                     "sqlite:///var/lib/x.db",
	} {
		if got := sqlstore.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSchema compares the DDL with testdata/schema_*.sql (go test -update
// rewrites them).
func TestSchema(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.SQLite} {
		got := sqlstore.Schema(d)
		path := filepath.Join("testdata", fmt.Sprintf("schema_%s.sql", d))
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("Schema(%s) differs from %s (go test -update rewrites it):\n%s", d, path, got)
		}
	}
	if got := sqlstore.Schema("oracle"); got != "" {
		t.Errorf("Schema(oracle) = %q, want empty", got)
	}
	if _, err := sqlstore.SchemaFor("oracle", sqlstore.Options{}); err == nil {
		t.Error("SchemaFor(oracle) succeeded")
	}
	if _, err := sqlstore.SchemaFor(sqlstore.Postgres, sqlstore.Options{Table: "bad name"}); err == nil {
		t.Error("SchemaFor with a bad table name succeeded")
	}
}

func TestIsTransient(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("sqlstore: write: %w", err) }
	pg := func(code string) error { return wrap(&pgconn.PgError{Code: code}) }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"connection refused", wrap(refused), true},
		{"connection reset", wrap(syscall.ECONNRESET), true},
		{"unexpected EOF", wrap(io.ErrUnexpectedEOF), true},
		{"deadline", wrap(context.DeadlineExceeded), true},
		{"cancelled", wrap(context.Canceled), false},
		{"serialization failure", pg("40001"), true},
		{"deadlock", pg("40P01"), true},
		{"admin shutdown", pg("57P01"), true},
		{"starting up", pg("57P03"), true},
		{"connection failure", pg("08006"), true},
		{"too many connections", pg("53300"), true},
		{"syntax error", pg("42601"), false},
		{"undefined table", pg("42P01"), false},
		{"permission denied", pg("42501"), false},
		{"bad password", pg("28P01"), false},
		{"unique violation", pg("23505"), false},
		{"invalid row", wrap(sqlstore.ErrInvalidRow), false},
		{"closed", sqlstore.ErrClosed, false},
	} {
		if got := sqlstore.IsTransient(tc.err); got != tc.want {
			t.Errorf("%s: IsTransient(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
