package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/elcache/elcache/storage/sqlstore"
	"github.com/sony/gobreaker/v2"
)

// backingStore is the user's database as the node uses it: load one key,
// write a batch of version-guarded rows (a row only moves forward, so a
// replay or a reordered write is a no-op). *sqlstore.Store implements it.
type backingStore interface {
	Load(ctx context.Context, key []byte) (sqlstore.Row, bool, error)
	Write(ctx context.Context, rows []sqlstore.Row) (int, error)
	Close() error
}

// ErrBackend: the backing database failed or its circuit breaker is open.
var ErrBackend = errors.New("node: backing database unavailable")

// ErrRefused: the backing database, otherwise healthy, refused the rows
// for what they hold (a constraint or check of the table, a value it
// cannot store). Sending them again fails the same way.
var ErrRefused = errors.New("node: backing database refused the row")

// backend wraps the backing store with retries (exponential backoff with
// full jitter, for transient errors, within the caller's deadline), a
// circuit breaker (after consecutive failures, calls fail at once for a
// cool-down, then a few probe), and counters.
type backend struct {
	// cfg is the node's BackendConfig with its defaults filled in.
	cfg     BackendConfig
	store   backingStore
	breaker *gobreaker.CircuitBreaker[any]
	// transient reports whether an error may pass on retry.
	transient func(error) bool
	attempts  int
	baseDelay time.Duration
	maxDelay  time.Duration

	loads, loadErrors, writes, rowsWritten, writeErrors, rejected atomic.Uint64
}

// BackendConfig tunes the node's use of its backing database.
type BackendConfig struct {
	// Table is the table name (default elcache_entries). CreateTable creates
	// it at start if missing.
	Table       string
	CreateTable bool
	// Columns names the table's columns; an empty name takes the default
	// (key, value, version, deleted, idempotency_key, updated_at).
	Columns sqlstore.Columns
	// Attempts is how many times a failed transient call is tried in all
	// (default 4), with exponential backoff and full jitter from
	// RetryBase (default 20ms) up to RetryMax (default 1s).
	Attempts  int
	RetryBase time.Duration
	RetryMax  time.Duration
	// BreakerFailures consecutive failures open the circuit breaker
	// (default 5); it stays open BreakerCooldown (default 5s), then lets a
	// few calls probe the database.
	BreakerFailures uint32
	BreakerCooldown time.Duration
	// NegativeTTL caches "not in the database" for this long after a miss
	// (0, the default, turns negative caching off).
	NegativeTTL time.Duration
	// FlushInterval is how often a write-back partition leader flushes
	// dirty entries (default 50ms); FlushBatch is the most rows per
	// database transaction (default 256).
	FlushInterval time.Duration
	FlushBatch    int
	// MaxDirty bounds the write-back backlog per partition (default
	// 10000 entries): past it, write-back writes wait for the flusher (up
	// to their deadline) and then fail with ResourceExhausted.
	MaxDirty uint64
	// LoadTimeout bounds one refill's database load, whoever waits for it
	// (default 5s).
	LoadTimeout time.Duration
}

// withDefaults fills the zero fields of c.
func (c BackendConfig) withDefaults() BackendConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Attempts == 0 {
		c.Attempts = 4
	}
	def(&c.RetryBase, 20*time.Millisecond)
	def(&c.RetryMax, time.Second)
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 5
	}
	def(&c.BreakerCooldown, 5*time.Second)
	def(&c.FlushInterval, 50*time.Millisecond)
	if c.FlushBatch == 0 {
		c.FlushBatch = 256
	}
	if c.MaxDirty == 0 {
		c.MaxDirty = 10000
	}
	def(&c.LoadTimeout, 5*time.Second)
	return c
}

func newBackend(store backingStore, c BackendConfig, transient func(error) bool) *backend {
	c = c.withDefaults()
	b := &backend{cfg: c, store: store, transient: transient, attempts: c.Attempts, baseDelay: c.RetryBase, maxDelay: c.RetryMax}
	failures := c.BreakerFailures
	b.breaker = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        "backend",
		MaxRequests: 3,
		Timeout:     c.BreakerCooldown,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= failures },
		// A caller giving up is not the database's fault.
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled)
		},
		// A database that refuses one row for its contents is up: one bad
		// row must not cut every write off.
		IsSuccessful: func(err error) bool {
			return err == nil || sqlstore.IsRowError(err)
		},
	})
	return b
}

// call runs fn through the breaker, retrying transient failures with
// backoff and full jitter while ctx allows.
func (b *backend) call(ctx context.Context, what string, fn func(context.Context) error) error {
	var err error
	for attempt := 0; attempt < b.attempts; attempt++ {
		if attempt > 0 {
			d := min(b.maxDelay, b.baseDelay<<(attempt-1))
			d = time.Duration(rand.Int64N(int64(d) + 1))
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
				break
			}
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return fmt.Errorf("%w: %s: %v (last error: %v)", ErrBackend, what, ctx.Err(), err)
			}
		}
		_, err = b.breaker.Execute(func() (any, error) { return nil, fn(ctx) })
		if err == nil {
			return nil
		}
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			b.rejected.Add(1)
			return fmt.Errorf("%w: %s: circuit breaker open after repeated failures", ErrBackend, what)
		}
		if !b.transient(err) || ctx.Err() != nil {
			break
		}
	}
	if sqlstore.IsRowError(err) {
		return fmt.Errorf("%w: %s: %v", ErrRefused, what, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrBackend, what, err)
}

// load reads key's row.
func (b *backend) load(ctx context.Context, key []byte) (row sqlstore.Row, found bool, err error) {
	b.loads.Add(1)
	err = b.call(ctx, "load", func(ctx context.Context) error {
		row, found, err = b.store.Load(ctx, key)
		return err
	})
	if err != nil {
		b.loadErrors.Add(1)
	}
	return row, found, err
}

// write stores rows in one transaction.
func (b *backend) write(ctx context.Context, rows []sqlstore.Row) error {
	b.writes.Add(1)
	err := b.call(ctx, "write", func(ctx context.Context) error {
		_, err := b.store.Write(ctx, rows)
		return err
	})
	if err != nil {
		b.writeErrors.Add(1)
		return err
	}
	b.rowsWritten.Add(uint64(len(rows)))
	return nil
}

// openBackend connects to the backing database named by the config.
func (n *Node) openBackend() error {
	c := n.cfg.Backing
	opts := sqlstore.Options{Table: c.Table, Columns: c.Columns, CreateTable: c.CreateTable}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := sqlstore.Open(ctx, n.cfg.Backend, opts)
	if err != nil {
		return fmt.Errorf("node: backing database: %w", err)
	}
	n.backend = newBackend(store, c, sqlstore.IsTransient)
	return nil
}
