package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/elcache/elcache/client"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// defaultMaxStaleness is the bound of "bounded" reads that give none.
const defaultMaxStaleness = time.Second

// elcacheLevels maps -consistency values to read levels.
var elcacheLevels = map[string]cachev1.Consistency{
	"":             cachev1.Consistency_CONSISTENCY_UNSPECIFIED, // the cluster's default
	"linearizable": cachev1.Consistency_CONSISTENCY_LINEARIZABLE,
	"lease":        cachev1.Consistency_CONSISTENCY_LEASE,
	"bounded":      cachev1.Consistency_CONSISTENCY_BOUNDED,
	"session":      cachev1.Consistency_CONSISTENCY_SESSION,
	"eventual":     cachev1.Consistency_CONSISTENCY_EVENTUAL,
}

// elcacheModes maps -mode values to write modes.
var elcacheModes = map[string]cachev1.WriteMode{
	"":              cachev1.WriteMode_WRITE_MODE_UNSPECIFIED, // the cluster's default
	"cache_only":    cachev1.WriteMode_WRITE_MODE_CACHE_ONLY,
	"write_through": cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH,
	"write_back":    cachev1.WriteMode_WRITE_MODE_WRITE_BACK,
	"write_around":  cachev1.WriteMode_WRITE_MODE_WRITE_AROUND,
}

// elcacheDurabilities maps -durability values to write durabilities.
var elcacheDurabilities = map[string]client.Durability{
	"":           client.DurabilityDefault, // the cluster's default
	"sync":       client.DurabilitySync,
	"replicated": client.DurabilityReplicated,
}

// parseLevel parses a read level: linearizable, lease, bounded[:DURATION]
// (default bound 1s), session, eventual, or "" for the cluster's default.
func parseLevel(s string) (cachev1.Consistency, time.Duration, error) {
	name, bound, hasBound := strings.Cut(s, ":")
	c, ok := elcacheLevels[name]
	if !ok {
		return 0, 0, fmt.Errorf("bench: unknown consistency %q (want linearizable, lease, bounded[:DURATION], session or eventual)", s)
	}
	if c != cachev1.Consistency_CONSISTENCY_BOUNDED {
		if hasBound {
			return 0, 0, fmt.Errorf("bench: consistency %q: only bounded takes a staleness bound", s)
		}
		return c, 0, nil
	}
	if !hasBound {
		return c, defaultMaxStaleness, nil
	}
	d, err := time.ParseDuration(bound)
	if err != nil || d <= 0 {
		return 0, 0, fmt.Errorf("bench: consistency %q: the staleness bound must be a positive duration such as 1s", s)
	}
	return c, d, nil
}

// parseMode parses a write mode: cache_only, write_through, write_back,
// write_around, or "" for the cluster's default.
func parseMode(s string) (cachev1.WriteMode, error) {
	m, ok := elcacheModes[s]
	if !ok {
		return 0, fmt.Errorf("bench: unknown write mode %q (want cache_only, write_through, write_back or write_around)", s)
	}
	return m, nil
}

// parseDurability parses a write durability: sync, replicated, or "" for
// the cluster's default.
func parseDurability(s string) (client.Durability, error) {
	d, ok := elcacheDurabilities[s]
	if !ok {
		return 0, fmt.Errorf("bench: unknown durability %q (want sync or replicated)", s)
	}
	return d, nil
}

// ElcacheTarget is an elcache cluster read at one consistency level and
// written in one write mode at one durability through the Go client,
// with or without the client's near cache.
type ElcacheTarget struct {
	name  string
	c     *client.Client
	near  bool // the client has a near cache
	level cachev1.Consistency
	bound time.Duration // of BOUNDED reads
}

var (
	_ versionedTarget = (*ElcacheTarget)(nil)
	_ boundedTarget   = (*ElcacheTarget)(nil)
	_ nearTarget      = (*ElcacheTarget)(nil)
)

// NewElcacheTarget connects to the cluster through seeds. level, mode and
// durability are as parseLevel, parseMode and parseDurability take them;
// unary sends every request as its own RPC instead of over the pipelined
// stream. configure, if not nil, adjusts the client's configuration before
// it connects (elcachectl sets its token and TLS there; WithNearCache gives
// it a near cache).
func NewElcacheTarget(ctx context.Context, seeds []string, level, mode, durability string, unary bool, configure func(*client.Config)) (Target, error) {
	c, bound, lerr := parseLevel(level)
	m, merr := parseMode(mode)
	d, derr := parseDurability(durability)
	if err := errors.Join(lerr, merr, derr); err != nil {
		return nil, err
	}
	cfg := client.DefaultConfig()
	cfg.Seeds = seeds
	cfg.DefaultConsistency = c
	cfg.DefaultMaxStaleness = bound
	cfg.DefaultWriteMode = m
	cfg.DefaultDurability = d
	cfg.Unary = unary
	if configure != nil {
		configure(&cfg)
	}
	cl, err := client.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: elcache: %w", err)
	}
	near := cfg.NearCache != nil
	return &ElcacheTarget{name: elcacheName(level, mode, durability, unary, near), c: cl, near: near, level: c, bound: bound}, nil
}

// WithNearCache returns configure (which may be nil) followed by giving
// the client a near cache of maxBytes (0: the client's default).
func WithNearCache(configure func(*client.Config), maxBytes int64) func(*client.Config) {
	return func(cfg *client.Config) {
		if configure != nil {
			configure(cfg)
		}
		cfg.NearCache = &client.NearCacheConfig{MaxBytes: maxBytes}
	}
}

// elcacheName names a target: "elcache/eventual",
// "elcache/bounded:1s/set:write_back", "elcache/set:cache_only/replicated",
// "elcache/default/unary", "elcache/eventual/near".
func elcacheName(level, mode, durability string, unary, near bool) string {
	parts := []string{"elcache"}
	if level != "" {
		parts = append(parts, level)
	}
	if mode != "" {
		parts = append(parts, "set:"+mode)
	}
	if durability != "" {
		parts = append(parts, durability)
	}
	if len(parts) == 1 {
		parts = append(parts, "default")
	}
	if unary {
		parts = append(parts, "unary")
	}
	if near {
		parts = append(parts, "near")
	}
	return strings.Join(parts, "/")
}

func (t *ElcacheTarget) Name() string { return t.name }

// Client is the target's client, for measurements beyond Get and Put
// (bench-compare's failover and memory runs).
func (t *ElcacheTarget) Client() *client.Client { return t.c }

// Get reads key; a missing key is not an error.
func (t *ElcacheTarget) Get(ctx context.Context, key string) error {
	_, err := t.c.Get(ctx, []byte(key))
	if errors.Is(err, client.ErrNotFound) {
		return nil
	}
	return err
}

func (t *ElcacheTarget) Put(ctx context.Context, key string, value []byte) error {
	_, err := t.c.Put(ctx, []byte(key), value)
	return err
}

// GetVersion reads key with its version (the log index of its write).
func (t *ElcacheTarget) GetVersion(ctx context.Context, key string) ([]byte, uint64, bool, error) {
	e, err := t.c.Get(ctx, []byte(key))
	if errors.Is(err, client.ErrNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	return e.Value, e.Version, true, nil
}

// PutVersion writes value under key and returns its version.
func (t *ElcacheTarget) PutVersion(ctx context.Context, key string, value []byte) (uint64, error) {
	r, err := t.c.Put(ctx, []byte(key), value)
	return r.Version, err
}

// StalenessBound is the staleness the target's reads promise: none at
// LINEARIZABLE and LEASE, the bound at BOUNDED; other levels (and the
// cluster's default) promise none.
func (t *ElcacheTarget) StalenessBound() (time.Duration, bool) {
	switch t.level {
	case cachev1.Consistency_CONSISTENCY_LINEARIZABLE, cachev1.Consistency_CONSISTENCY_LEASE:
		return 0, true
	case cachev1.Consistency_CONSISTENCY_BOUNDED:
		return t.bound, true
	}
	return 0, false
}

// NearCache returns the client's near cache counters, and false if it has
// no near cache.
func (t *ElcacheTarget) NearCache() (client.NearCounters, bool) {
	if !t.near {
		return client.NearCounters{}, false
	}
	return t.c.Counters().Near, true
}

func (t *ElcacheTarget) Close() error { return t.c.Close() }
