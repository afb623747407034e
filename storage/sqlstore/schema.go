package sqlstore

import (
	"fmt"
	"strings"
)

// Markers are SQL comments in the statements the Store runs, so that tests
// can count them in pg_stat_statements (pgtest.Server.Calls).
const (
	LoadMarker  = "elcache:load"
	WriteMarker = "elcache:write"
)

// Schema returns the DDL that creates the table with the default names in
// dialect d, or "" for an unknown dialect.
func Schema(d Dialect) string {
	s, err := SchemaFor(d, DefaultOptions())
	if err != nil {
		return ""
	}
	return s
}

// SchemaFor returns the DDL that creates the table named by opts in dialect
// d. The DDL is one CREATE TABLE IF NOT EXISTS statement, preceded by
// comment lines.
func SchemaFor(d Dialect, opts Options) (string, error) {
	if err := opts.Validate(); err != nil {
		return "", err
	}
	q := newQueries(d, opts.withDefaults())
	if q.ddl == "" {
		return "", fmt.Errorf("sqlstore: unknown dialect %q", d)
	}
	return q.ddl, nil
}

// queries holds the statements for one table in one dialect.
type queries struct {
	ddl    string // CREATE TABLE IF NOT EXISTS
	probe  string // selects every column, returns no row
	load   string // $1/?1: key -> value, version, deleted, idempotency key
	upsert string // see sqlite.go and postgres.go for the parameters
}

func newQueries(d Dialect, o Options) queries {
	t := quote(o.Table)
	c := o.Columns
	k, v, ver, del, ik, at := quote(c.Key), quote(c.Value), quote(c.Version), quote(c.Deleted), quote(c.IdempotencyKey), quote(c.UpdatedAt)
	all := strings.Join([]string{k, v, ver, del, ik, at}, ", ")
	// The load reads deleted and the idempotency key through COALESCE so
	// that a table created by hand with nullable columns still loads (a NULL
	// value scans as empty).
	load := func(falseLit, param string) string {
		return fmt.Sprintf(`SELECT /* %s */ %s, %s, COALESCE(%s, %s), COALESCE(%s, '') FROM %s WHERE %s = %s`,
			LoadMarker, v, ver, del, falseLit, ik, t, k, param)
	}
	set := fmt.Sprintf(`%[1]s = excluded.%[1]s, %[2]s = excluded.%[2]s, %[3]s = excluded.%[3]s, %[4]s = excluded.%[4]s, %[5]s = excluded.%[5]s`,
		v, ver, del, ik, at)
	probe := fmt.Sprintf(`SELECT %s FROM %s WHERE 1 = 0`, all, t)

	header := fmt.Sprintf("-- elcache's table in the backing database (%s): one row per key.\n"+
		"-- Rows only move to higher versions; deleted rows are tombstones.\n", d)
	col := func(name, typ string) string { return fmt.Sprintf("    %-*s %s", colWidth(c), quote(name), typ) }

	switch d {
	case Postgres:
		return queries{
			ddl: header + fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n%s\n);\n", t, strings.Join([]string{
				col(c.Key, "bytea PRIMARY KEY"),
				col(c.Value, "bytea NOT NULL"),
				col(c.Version, fmt.Sprintf("bigint NOT NULL CHECK (%s > 0)", ver)),
				col(c.Deleted, "boolean NOT NULL DEFAULT false"),
				col(c.IdempotencyKey, "text NOT NULL DEFAULT ''"),
				col(c.UpdatedAt, "timestamptz NOT NULL DEFAULT now()"),
			}, ",\n")),
			probe: probe,
			load:  load("false", "$1"),
			// The rows come as five arrays, one statement for the whole
			// batch. ON CONFLICT cannot touch a row twice in a statement:
			// the caller sends each key once.
			upsert: fmt.Sprintf(`INSERT /* %s */ INTO %s AS cur (%s) `+
				`SELECT u.k, u.v, u.ver, u.del, u.ik, now() FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::boolean[], $5::text[]) AS u(k, v, ver, del, ik) `+
				`ON CONFLICT (%s) DO UPDATE SET %s WHERE cur.%s < excluded.%s`,
				WriteMarker, t, all, k, set, ver, ver),
		}
	case SQLite:
		return queries{
			// WITHOUT ROWID: the key is the clustered primary key, with no
			// second b-tree. NOT NULL on the key: SQLite otherwise accepts
			// NULL in a primary key. updated_at is ISO 8601 UTC text.
			ddl: header + fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n%s\n) WITHOUT ROWID;\n", t, strings.Join([]string{
				col(c.Key, "BLOB NOT NULL PRIMARY KEY"),
				col(c.Value, "BLOB NOT NULL"),
				col(c.Version, fmt.Sprintf("INTEGER NOT NULL CHECK (%s > 0)", ver)),
				col(c.Deleted, fmt.Sprintf("INTEGER NOT NULL DEFAULT 0 CHECK (%s IN (0, 1))", del)),
				col(c.IdempotencyKey, "TEXT NOT NULL DEFAULT ''"),
				col(c.UpdatedAt, sqliteNow("TEXT NOT NULL DEFAULT (%s)")),
			}, ",\n")),
			probe: probe,
			load:  load("0", "?1"),
			upsert: fmt.Sprintf(`INSERT /* %s */ INTO %s AS cur (%s) VALUES (?1, ?2, ?3, ?4, ?5, %s) `+
				`ON CONFLICT (%s) DO UPDATE SET %s WHERE cur.%s < excluded.%s`,
				WriteMarker, t, all, sqliteNow("%s"), k, set, ver, ver),
		}
	}
	return queries{}
}

// sqliteNow puts SQLite's current UTC time, as ISO 8601 text with
// milliseconds, into format.
func sqliteNow(format string) string {
	return fmt.Sprintf(format, `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`)
}

// colWidth is the width of the longest quoted column name, to align the DDL.
func colWidth(c Columns) int {
	w := 0
	for _, n := range c.list() {
		w = max(w, len(n.name)+2)
	}
	return w
}
