package backend

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

// ErrUnavailable: the backing database failed or its circuit breaker is
// open.
var ErrUnavailable = errors.New("backend: backing database unavailable")

// ErrRefused: the backing database, otherwise healthy, refused the rows
// for what they hold (a constraint or check of the table, a value it
// cannot store). Sending them again fails the same way.
var ErrRefused = errors.New("backend: backing database refused the row")

// Database is the user's database as the node uses it: load one key,
// write a batch of version-guarded rows (a row only moves forward, so a
// replay or a reordered write is a no-op). *sqlstore.Store implements it.
type Database interface {
	Load(ctx context.Context, key []byte) (sqlstore.Row, bool, error)
	Write(ctx context.Context, rows []sqlstore.Row) (int, error)
	Close() error
}

var _ Database = (*sqlstore.Store)(nil)

// Client wraps a Database with retries (exponential backoff with full
// jitter, for transient errors, within the caller's deadline), a circuit
// breaker (after consecutive failures, calls fail at once for a
// cool-down, then a few probe), and counters. It is safe for concurrent
// use.
type Client struct {
	// cfg is the Config given to New with its defaults filled in.
	cfg     Config
	db      Database
	breaker *gobreaker.CircuitBreaker[any]
	// transient reports whether an error may pass on retry.
	transient func(error) bool

	loads, loadErrors, writes, rowsWritten, writeErrors, rejected atomic.Uint64
}

// Stats counts a Client's calls since New.
type Stats struct {
	// Loads and Writes count calls to Load and Write; LoadErrors and
	// WriteErrors those that failed; RowsWritten the rows of the writes
	// that succeeded.
	Loads, LoadErrors, Writes, WriteErrors, RowsWritten uint64
	// Rejected counts calls the open circuit breaker failed at once.
	Rejected uint64
}

// New returns a Client of db configured by cfg (zero fields take their
// defaults). transient reports whether an error may pass on retry
// (sqlstore.IsTransient for a *sqlstore.Store). New does not close db
// when cfg is not valid.
func New(db Database, cfg Config, transient func(error) bool) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	c := &Client{cfg: cfg, db: db, transient: transient}
	failures := cfg.BreakerFailures
	c.breaker = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        "backend",
		MaxRequests: 3,
		Timeout:     cfg.BreakerCooldown,
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
	return c, nil
}

// Config returns the client's configuration, its defaults filled in.
func (c *Client) Config() Config { return c.cfg }

// State returns the circuit breaker's state.
func (c *Client) State() gobreaker.State { return c.breaker.State() }

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Loads: c.loads.Load(), LoadErrors: c.loadErrors.Load(),
		Writes: c.writes.Load(), WriteErrors: c.writeErrors.Load(), RowsWritten: c.rowsWritten.Load(),
		Rejected: c.rejected.Load(),
	}
}

// Close closes the database.
func (c *Client) Close() error { return c.db.Close() }

// retryCap is the longest wait before try attempt+1 (attempt >= 1): base
// doubled for each earlier retry, up to most. The doubling stops at most,
// so no number of attempts overflows it.
func retryCap(attempt int, base, most time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < most; i++ {
		d <<= 1
	}
	return min(d, most)
}

// call runs fn through the breaker, retrying transient failures with
// backoff and full jitter while ctx allows.
func (c *Client) call(ctx context.Context, what string, fn func(context.Context) error) error {
	var err error
	for attempt := 0; attempt < c.cfg.Attempts; attempt++ {
		if attempt > 0 {
			d := time.Duration(rand.Int64N(int64(retryCap(attempt, c.cfg.RetryBase, c.cfg.RetryMax)) + 1))
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
				break
			}
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return fmt.Errorf("%w: %s: %v (last error: %v)", ErrUnavailable, what, ctx.Err(), err)
			}
		}
		_, err = c.breaker.Execute(func() (any, error) { return nil, fn(ctx) })
		if err == nil {
			return nil
		}
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			c.rejected.Add(1)
			return fmt.Errorf("%w: %s: circuit breaker open after repeated failures", ErrUnavailable, what)
		}
		if !c.transient(err) || ctx.Err() != nil {
			break
		}
	}
	if sqlstore.IsRowError(err) {
		return fmt.Errorf("%w: %s: %v", ErrRefused, what, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
}

// Load reads key's row.
func (c *Client) Load(ctx context.Context, key []byte) (row sqlstore.Row, found bool, err error) {
	c.loads.Add(1)
	err = c.call(ctx, "load", func(ctx context.Context) error {
		row, found, err = c.db.Load(ctx, key)
		return err
	})
	if err != nil {
		c.loadErrors.Add(1)
	}
	return row, found, err
}

// Write stores rows in one transaction.
func (c *Client) Write(ctx context.Context, rows []sqlstore.Row) error {
	c.writes.Add(1)
	err := c.call(ctx, "write", func(ctx context.Context) error {
		_, err := c.db.Write(ctx, rows)
		return err
	})
	if err != nil {
		c.writeErrors.Add(1)
		return err
	}
	c.rowsWritten.Add(uint64(len(rows)))
	return nil
}
