package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/elcache/elcache/storage/sqlstore"
)

// runSchema is `elcache schema`: it prints the DDL of the backing table
// for a database URL, or (--apply) creates the table there.
func runSchema(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("elcache schema", flag.ContinueOnError)
	fs.SetOutput(stderr)
	backend := fs.String("backend", "", "backing database URL (sqlite:///path or postgres://...)")
	table := fs.String("table", sqlstore.DefaultTable, "table name")
	columns := fs.String("columns", "", "column names that differ from the defaults, as comma-separated role=name pairs "+
		"(roles: "+columnRoleList()+"), e.g. key=cache_key,value=payload; the node's --backend-columns")
	apply := fs.Bool("apply", false, "create the table in the database instead of printing the DDL")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: elcache schema --backend URL [--table NAME] [--columns ROLE=NAME,...] [--apply]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *backend == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	dialect, err := sqlstore.DialectOf(*backend)
	if err != nil {
		fmt.Fprintf(stderr, "elcache schema: %v\n", err)
		return 2
	}
	cols, err := parseColumns(*columns)
	if err != nil {
		fmt.Fprintf(stderr, "elcache schema: --columns %q: %v\n", *columns, err)
		return 2
	}
	opts := sqlstore.Options{Table: *table, Columns: cols, CreateTable: *apply}
	if !*apply {
		ddl, err := sqlstore.SchemaFor(dialect, opts)
		if err != nil {
			fmt.Fprintf(stderr, "elcache schema: %v\n", err)
			return 2
		}
		fmt.Fprint(stdout, ddl)
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlstore.Open(ctx, *backend, opts)
	if err != nil {
		fmt.Fprintf(stderr, "elcache schema: %v\n", err)
		return 1
	}
	defer s.Close()
	fmt.Fprintf(stdout, "table %s is ready in %s\n", *table, sqlstore.Redact(*backend))
	return 0
}
