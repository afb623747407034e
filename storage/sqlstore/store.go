package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Row is one key's row in the table.
type Row struct {
	Key   []byte
	Value []byte // empty for a tombstone
	// Version is the elcache version of the write that produced the row,
	// in [1, math.MaxInt64] (the column is a signed 64-bit integer).
	Version uint64
	// Deleted marks a tombstone: the key was deleted at Version.
	Deleted bool
	// IdempotencyKey is the UUIDv7 of the write that produced the row.
	IdempotencyKey string
}

// Store is a versioned key-value table in SQLite or PostgreSQL. It is safe
// for concurrent use.
type Store struct {
	dialect Dialect
	opts    Options
	q       queries
	be      backend

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// backend is one dialect's connection handling. Rows reaching write are
// valid, have distinct keys and are sorted by key.
type backend interface {
	load(ctx context.Context, key []byte) (Row, bool, error)
	write(ctx context.Context, rows []Row) (int, error)
	applySchema(ctx context.Context) error
	probe(ctx context.Context) error
	ping(ctx context.Context) error
	close() error
}

// Open connects to the database at url (see the package documentation for
// the forms) and checks the table: with opts.CreateTable it creates the
// table if missing, else it fails if the table or one of its columns is
// missing. Errors name the URL without its password.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	t, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	s := &Store{dialect: t.dialect, opts: opts, q: newQueries(t.dialect, opts)}
	switch t.dialect {
	case SQLite:
		s.be, err = openSQLite(ctx, t, opts, s.q)
	case Postgres:
		s.be, err = openPostgres(ctx, t, opts, s.q)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", t.safe, err)
	}
	if opts.CreateTable {
		err = s.be.applySchema(ctx)
	} else if err = s.be.probe(ctx); err != nil && !IsTransient(err) {
		err = fmt.Errorf("table %s is missing or lacks one of the columns %s (print the DDL with Schema, or set CreateTable): %w",
			quote(opts.Table), strings.Join(columnNames(opts.Columns), ", "), err)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlstore: open %s: %w", t.safe, err), s.be.close())
	}
	return s, nil
}

func columnNames(c Columns) []string {
	var out []string
	for _, n := range c.list() {
		out = append(out, n.name)
	}
	return out
}

// Dialect returns the database's dialect.
func (s *Store) Dialect() Dialect { return s.dialect }

// Schema returns the DDL of the Store's table.
func (s *Store) Schema() string { return s.q.ddl }

// ApplySchema creates the table if it does not exist. It never alters an
// existing table. In PostgreSQL, concurrent calls (several nodes starting at
// once) are serialized by an advisory lock.
func (s *Store) ApplySchema(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.be.applySchema(ctx); err != nil {
		return fmt.Errorf("sqlstore: create table %s: %w", quote(s.opts.Table), err)
	}
	return nil
}

// Load returns key's row, or found=false if the table has none. A tombstone
// is returned with Deleted set, so that the caller learns its version.
func (s *Store) Load(ctx context.Context, key []byte) (row Row, found bool, err error) {
	if s.closed.Load() {
		return Row{}, false, ErrClosed
	}
	row, found, err = s.be.load(ctx, key)
	if err != nil {
		return Row{}, false, fmt.Errorf("sqlstore: load from %s: %w", quote(s.opts.Table), err)
	}
	if !found {
		return Row{}, false, nil
	}
	if row.Version == 0 || row.Version > math.MaxInt64 {
		return Row{}, false, fmt.Errorf("sqlstore: load from %s: stored version %d is out of range", quote(s.opts.Table), int64(row.Version))
	}
	row.Key = bytes.Clone(key)
	if row.Value == nil {
		row.Value = []byte{}
	}
	return row, true, nil
}

// Write upserts rows in one transaction and returns how many of them
// changed the table. Each row replaces the stored row of its key only if the
// stored version is lower; an equal or older version is a no-op. So a
// replayed batch changes nothing, and a tombstone (Deleted, whose Value is
// ignored and stored empty) blocks every older put.
//
// Rows of one batch with the same key are reduced to the one with the
// highest version first (the first of equal ones); the others count as not
// applied. Rows with an empty key, a version of 0 or above math.MaxInt64, or
// an idempotency key that is not UTF-8 or holds a NUL are refused with
// ErrInvalidRow before anything is written. On error nothing is written.
func (s *Store) Write(ctx context.Context, rows []Row) (applied int, err error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	if len(rows) == 0 {
		return 0, nil
	}
	batch, err := prepareBatch(rows)
	if err != nil {
		return 0, err
	}
	n, err := s.be.write(ctx, batch)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: write to %s (a batch of %d): %w", quote(s.opts.Table), len(batch), err)
	}
	return n, nil
}

// prepareBatch validates rows and returns a copy with one row per key,
// sorted by key: the same lock order in every transaction, so that
// concurrent batches cannot deadlock on each other.
func prepareBatch(rows []Row) ([]Row, error) {
	batch := make([]Row, len(rows))
	for i, r := range rows {
		switch {
		case len(r.Key) == 0:
			return nil, fmt.Errorf("%w %d: empty key", ErrInvalidRow, i)
		case r.Version == 0 || r.Version > math.MaxInt64:
			return nil, fmt.Errorf("%w %d: version %d is not in [1, %d]", ErrInvalidRow, i, r.Version, int64(math.MaxInt64))
		case !utf8.ValidString(r.IdempotencyKey) || strings.IndexByte(r.IdempotencyKey, 0) >= 0:
			return nil, fmt.Errorf("%w %d: idempotency key %q is not UTF-8 text without NUL", ErrInvalidRow, i, r.IdempotencyKey)
		}
		if r.Deleted || r.Value == nil {
			r.Value = []byte{} // NOT NULL, and a tombstone keeps no value
		}
		batch[i] = r
	}
	slices.SortStableFunc(batch, func(a, b Row) int {
		if c := bytes.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		switch {
		case a.Version > b.Version:
			return -1
		case a.Version < b.Version:
			return 1
		}
		return 0
	})
	return slices.CompactFunc(batch, func(a, b Row) bool { return bytes.Equal(a.Key, b.Key) }), nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.be.ping(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping: %w", err)
	}
	return nil
}

// Close closes the connections. It is idempotent; operations after it
// return ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = s.be.close()
	})
	return s.closeErr
}
