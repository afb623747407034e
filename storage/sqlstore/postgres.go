package sqlstore

import (
	"context"
	"errors"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgDB is a pgx connection pool. pgx prepares each statement once per
// connection and caches it.
type pgDB struct {
	q     queries
	table string
	pool  *pgxpool.Pool
}

var _ backend = (*pgDB)(nil)

func openPostgres(ctx context.Context, t target, o Options, q queries) (*pgDB, error) {
	cfg, err := pgxpool.ParseConfig(t.conn)
	if err != nil {
		// pgx redacts the URL in its message on a best-effort basis; the
		// message is rebuilt from the redacted text to be sure.
		return nil, errors.New(Redact(err.Error()))
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "elcache"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	db := &pgDB{q: q, table: o.Table, pool: pool}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// applySchema creates the table under a transaction-scoped advisory lock:
// concurrent CREATE TABLE IF NOT EXISTS of one table can otherwise fail
// with a unique violation in the catalog.
func (d *pgDB) applySchema(ctx context.Context) error {
	h := fnv.New64a()
	h.Write([]byte("elcache.sqlstore.schema:" + d.table))
	lockID := int64(h.Sum64())
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, d.q.ddl)
		return err
	})
}

func (d *pgDB) probe(ctx context.Context) error {
	rows, err := d.pool.Query(ctx, d.q.probe)
	if err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

func (d *pgDB) load(ctx context.Context, key []byte) (Row, bool, error) {
	var r Row
	var version int64
	err := d.pool.QueryRow(ctx, d.q.load, key).Scan(&r.Value, &version, &r.Deleted, &r.IdempotencyKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return Row{}, false, nil
	}
	if err != nil {
		return Row{}, false, err
	}
	r.Version = uint64(version) // Store.Load rejects values out of range
	return r, true, nil
}

// write sends the batch as five arrays in one statement, which is one
// round trip and one transaction whatever the batch's size.
func (d *pgDB) write(ctx context.Context, rows []Row) (int, error) {
	keys := make([][]byte, len(rows))
	values := make([][]byte, len(rows))
	versions := make([]int64, len(rows))
	deleted := make([]bool, len(rows))
	idem := make([]string, len(rows))
	for i, r := range rows {
		keys[i], values[i], versions[i], deleted[i], idem[i] = r.Key, r.Value, int64(r.Version), r.Deleted, r.IdempotencyKey
	}
	tag, err := d.pool.Exec(ctx, d.q.upsert, keys, values, versions, deleted, idem)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

func (d *pgDB) ping(ctx context.Context) error { return d.pool.Ping(ctx) }

func (d *pgDB) close() error {
	d.pool.Close()
	return nil
}
