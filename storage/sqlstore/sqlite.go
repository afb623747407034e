package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// sqliteReaders is the number of read connections; WAL lets them read
// while the writer writes.
const sqliteReaders = 4

// sqliteDB keeps one write connection, so that writes queue in the process
// instead of failing with SQLITE_BUSY, and a few read-only connections.
type sqliteDB struct {
	q       queries
	w, r    *sql.DB
	upsert  *sql.Stmt // on w
	loadStm *sql.Stmt // on r
}

var _ backend = (*sqliteDB)(nil)

func openSQLite(ctx context.Context, t target, o Options, q queries) (_ *sqliteDB, err error) {
	dir := filepath.Dir(t.path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("directory %s does not exist", dir)
	}
	// The pragmas run on every new connection. synchronous=FULL syncs the
	// WAL at every commit: an acknowledged write survives power loss.
	// _txlock=immediate takes the write lock at BEGIN, so a transaction
	// never fails halfway to upgrade its lock.
	params := url.Values{}
	params.Set("_txlock", "immediate")
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	params.Add("_pragma", "synchronous(FULL)")
	wParams := url.Values{"_pragma": append([]string{"journal_mode(WAL)"}, params["_pragma"]...), "_txlock": params["_txlock"]}
	rParams := url.Values{"_pragma": append([]string{"query_only(1)"}, params["_pragma"]...)}

	s := &sqliteDB{q: q}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.close())
		}
	}()
	// The writer opens first: it turns WAL on (a persistent setting of the
	// file) before the read-only connections open.
	if s.w, err = sql.Open("sqlite", t.path+"?"+wParams.Encode()); err != nil {
		return nil, err
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, err
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("sqlite could not turn on WAL mode (journal_mode is %q)", mode)
	}
	if s.r, err = sql.Open("sqlite", t.path+"?"+rParams.Encode()); err != nil {
		return nil, err
	}
	s.r.SetMaxOpenConns(sqliteReaders)
	s.r.SetMaxIdleConns(sqliteReaders)
	s.r.SetConnMaxIdleTime(0)
	if err := s.r.PingContext(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// prepare prepares the statements once the table exists.
func (s *sqliteDB) prepare(ctx context.Context) error {
	if s.upsert != nil {
		return nil
	}
	up, err := s.w.PrepareContext(ctx, s.q.upsert)
	if err != nil {
		return err
	}
	ld, err := s.r.PrepareContext(ctx, s.q.load)
	if err != nil {
		return errors.Join(err, up.Close())
	}
	s.upsert, s.loadStm = up, ld
	return nil
}

func (s *sqliteDB) applySchema(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, s.q.ddl); err != nil {
		return err
	}
	return s.prepare(ctx)
}

func (s *sqliteDB) probe(ctx context.Context) error {
	rows, err := s.r.QueryContext(ctx, s.q.probe)
	if err != nil {
		return err
	}
	if err := rows.Close(); err != nil {
		return err
	}
	return s.prepare(ctx)
}

func (s *sqliteDB) load(ctx context.Context, key []byte) (Row, bool, error) {
	var r Row
	err := s.loadStm.QueryRowContext(ctx, key).Scan(&r.Value, &r.Version, &r.Deleted, &r.IdempotencyKey)
	if errors.Is(err, sql.ErrNoRows) {
		return Row{}, false, nil
	}
	return r, err == nil, err
}

func (s *sqliteDB) write(ctx context.Context, rows []Row) (applied int, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	stmt := tx.StmtContext(ctx, s.upsert)
	for _, r := range rows {
		res, err := stmt.ExecContext(ctx, r.Key, r.Value, int64(r.Version), r.Deleted, r.IdempotencyKey)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		applied += int(n)
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return applied, nil
}

// ignoreDone drops the error of a rollback after the transaction already
// ended (the context was cancelled, or the commit failed).
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

func (s *sqliteDB) ping(ctx context.Context) error {
	return errors.Join(s.w.PingContext(ctx), s.r.PingContext(ctx))
}

func (s *sqliteDB) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.upsert, s.loadStm} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, db := range []*sql.DB{s.r, s.w} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}
