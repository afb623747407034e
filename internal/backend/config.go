package backend

import (
	"errors"
	"fmt"
	"time"

	"github.com/elcache/elcache/storage/sqlstore"
)

// Config tunes a node's use of its backing database. A zero field takes
// its default (DefaultConfig).
type Config struct {
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

// DefaultConfig returns the default configuration, without CreateTable.
// Table and Columns stay empty: the store takes its own defaults for them
// (sqlstore.DefaultOptions).
func DefaultConfig() Config {
	return Config{
		Attempts:        4,
		RetryBase:       20 * time.Millisecond,
		RetryMax:        time.Second,
		BreakerFailures: 5,
		BreakerCooldown: 5 * time.Second,
		FlushInterval:   50 * time.Millisecond,
		FlushBatch:      256,
		MaxDirty:        10000,
		LoadTimeout:     5 * time.Second,
	}
}

// WithDefaults returns c with every zero field set to its default
// (DefaultConfig). NegativeTTL stays as it is: zero turns negative caching
// off; Table and Columns are the store's to default.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	def := func(f *time.Duration, v time.Duration) {
		if *f == 0 {
			*f = v
		}
	}
	if c.Attempts == 0 {
		c.Attempts = d.Attempts
	}
	def(&c.RetryBase, d.RetryBase)
	def(&c.RetryMax, d.RetryMax)
	if c.BreakerFailures == 0 {
		c.BreakerFailures = d.BreakerFailures
	}
	def(&c.BreakerCooldown, d.BreakerCooldown)
	def(&c.FlushInterval, d.FlushInterval)
	if c.FlushBatch == 0 {
		c.FlushBatch = d.FlushBatch
	}
	if c.MaxDirty == 0 {
		c.MaxDirty = d.MaxDirty
	}
	def(&c.LoadTimeout, d.LoadTimeout)
	return c
}

// Validate reports every problem with c: a table or column name the
// database cannot take, and a negative count or duration (zero takes the
// default).
func (c Config) Validate() error {
	var errs []error
	if err := (sqlstore.Options{Table: c.Table, Columns: c.Columns}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("backend: %w", err))
	}
	negative := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("backend: %s is %d, must not be negative", name, v))
		}
	}
	negative("Attempts", int64(c.Attempts))
	negative("FlushBatch", int64(c.FlushBatch))
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"RetryBase", c.RetryBase}, {"RetryMax", c.RetryMax}, {"BreakerCooldown", c.BreakerCooldown},
		{"NegativeTTL", c.NegativeTTL}, {"FlushInterval", c.FlushInterval}, {"LoadTimeout", c.LoadTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("backend: %s is %v, must not be negative", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}
