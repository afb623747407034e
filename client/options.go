package client

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/durationpb"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// ReadOption configures a read (Get, MultiGet, Scan). Later options win.
type ReadOption func(*readOptions)

type readOptions struct {
	consistency  cachev1.Consistency
	maxStaleness time.Duration
	sessions     []SessionToken
	allowStale   bool
}

// WithConsistency reads at level c instead of Config.DefaultConsistency.
// CONSISTENCY_BOUNDED also needs a staleness bound: use Bounded, or set
// Config.DefaultMaxStaleness.
func WithConsistency(c cachev1.Consistency) ReadOption {
	return func(o *readOptions) { o.consistency = c }
}

// Bounded reads at CONSISTENCY_BOUNDED: any replica may serve if its data is
// no older than maxStaleness, which must be positive.
func Bounded(maxStaleness time.Duration) ReadOption {
	return func(o *readOptions) {
		o.consistency = cachev1.Consistency_CONSISTENCY_BOUNDED
		o.maxStaleness = maxStaleness
	}
}

// WithSession reads at CONSISTENCY_SESSION: a replica serves once it has
// applied the token of the key's partition, which gives read-your-writes
// when the tokens come from earlier results (ReadMeta.Session,
// WriteMeta.Session). Reserved: the server may serve it at another level,
// reported in ReadMeta.Consistency.
func WithSession(tokens ...SessionToken) ReadOption {
	return func(o *readOptions) {
		o.consistency = cachev1.Consistency_CONSISTENCY_SESSION
		o.sessions = append(o.sessions[:0:0], tokens...)
	}
}

// AllowStale lets a read that misses, when the cluster cannot refill it
// from its backing database (the database fails or its circuit breaker is
// open), return the key's expired cached value if the cache still holds
// one. ReadMeta.Stale marks such answers.
func AllowStale() ReadOption {
	return func(o *readOptions) { o.allowStale = true }
}

// buildReadOptions applies opts over cfg's defaults and checks the result.
func buildReadOptions(cfg *Config, opts []ReadOption) (*cachev1.ReadOptions, error) {
	o := readOptions{consistency: cfg.DefaultConsistency, maxStaleness: cfg.DefaultMaxStaleness}
	for _, opt := range opts {
		opt(&o)
	}
	if _, ok := cachev1.Consistency_name[int32(o.consistency)]; !ok {
		return nil, fmt.Errorf("%w: unknown consistency %d", ErrInvalidArgument, o.consistency)
	}
	ro := &cachev1.ReadOptions{Consistency: o.consistency, AllowStale: o.allowStale}
	switch o.consistency {
	case cachev1.Consistency_CONSISTENCY_BOUNDED:
		if o.maxStaleness <= 0 {
			return nil, fmt.Errorf("%w: bounded read needs a positive max staleness, got %v", ErrInvalidArgument, o.maxStaleness)
		}
		ro.MaxStaleness = durationpb.New(o.maxStaleness)
	case cachev1.Consistency_CONSISTENCY_SESSION:
		for _, t := range o.sessions {
			ro.SessionTokens = append(ro.SessionTokens, t.proto())
		}
	}
	return ro, nil
}

// WriteOption configures a write (Put, Delete, CompareAndSet, MultiPut).
// Later options win.
type WriteOption func(*writeOptions)

type writeOptions struct {
	mode           cachev1.WriteMode
	durability     Durability
	ttl            time.Duration
	idempotencyKey string
	keySet         bool
}

// WithTTL makes written entries expire after d. Zero means never; negative
// is rejected. MultiPut entries may override it with KeyValue.TTL.
func WithTTL(d time.Duration) WriteOption {
	return func(o *writeOptions) { o.ttl = d }
}

// WithWriteMode writes in mode m instead of Config.DefaultWriteMode.
func WithWriteMode(m cachev1.WriteMode) WriteOption {
	return func(o *writeOptions) { o.mode = m }
}

// WithDurability writes at durability d instead of
// Config.DefaultDurability.
func WithDurability(d Durability) WriteOption {
	return func(o *writeOptions) { o.durability = d }
}

// Durability is when the cluster acknowledges a write: the point a write
// picks between latency and durability. Either way the write is committed
// in Raft on a quorum of its partition's replicas before the
// acknowledgement; the levels differ in whether they have synced it to
// disk. WriteMeta.Durability reports the level a write got.
type Durability int

const (
	// DurabilityDefault leaves the choice to the node: its --durability,
	// SYNC unless set.
	DurabilityDefault Durability = iota
	// DurabilitySync acknowledges a write once a quorum has it in its log
	// and fsynced. It survives any crash and power loss.
	DurabilitySync
	// DurabilityReplicated acknowledges a write once a quorum has it in
	// its log, written to the operating system but not yet fsynced; the
	// nodes fsync it within their sync interval (10ms by default). It
	// survives any process crash, kill -9 of every node included, and the
	// loss of a minority of machines; it can lose the last interval only
	// if a majority of a partition's machines lose power at once.
	// WRITE_THROUGH and WRITE_AROUND writes are always SYNC.
	DurabilityReplicated
)

// String returns "default", "sync" or "replicated".
func (d Durability) String() string {
	switch d {
	case DurabilityDefault:
		return "default"
	case DurabilitySync:
		return "sync"
	case DurabilityReplicated:
		return "replicated"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// proto returns d as the API's enum, and false if d is not a Durability.
func (d Durability) proto() (cachev1.Durability, bool) {
	switch d {
	case DurabilityDefault:
		return cachev1.Durability_DURABILITY_UNSPECIFIED, true
	case DurabilitySync:
		return cachev1.Durability_DURABILITY_SYNC, true
	case DurabilityReplicated:
		return cachev1.Durability_DURABILITY_REPLICATED, true
	}
	return 0, false
}

// durabilityFromProto is the inverse of Durability.proto; a value this
// client does not know is DurabilityDefault.
func durabilityFromProto(d cachev1.Durability) Durability {
	switch d {
	case cachev1.Durability_DURABILITY_SYNC:
		return DurabilitySync
	case cachev1.Durability_DURABILITY_REPLICATED:
		return DurabilityReplicated
	}
	return DurabilityDefault
}

// WithIdempotencyKey sends key, a UUIDv7 in canonical text form, instead of
// a fresh one. Retrying a write with the same key applies it once; reuse the
// key only to retry the same write. An empty key turns deduplication off.
func WithIdempotencyKey(key string) WriteOption {
	return func(o *writeOptions) { o.idempotencyKey, o.keySet = key, true }
}

// buildWriteOptions applies opts over cfg's defaults, checks the result and
// attaches a fresh UUIDv7 idempotency key unless one was given.
func buildWriteOptions(cfg *Config, opts []WriteOption) (*cachev1.WriteOptions, error) {
	o := writeOptions{mode: cfg.DefaultWriteMode, durability: cfg.DefaultDurability}
	for _, opt := range opts {
		opt(&o)
	}
	if _, ok := cachev1.WriteMode_name[int32(o.mode)]; !ok {
		return nil, fmt.Errorf("%w: unknown write mode %d", ErrInvalidArgument, o.mode)
	}
	durability, ok := o.durability.proto()
	if !ok {
		return nil, fmt.Errorf("%w: unknown durability %d", ErrInvalidArgument, o.durability)
	}
	if o.ttl < 0 {
		return nil, fmt.Errorf("%w: negative TTL %v", ErrInvalidArgument, o.ttl)
	}
	if !o.keySet {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("client: idempotency key: %w", err)
		}
		o.idempotencyKey = id.String()
	}
	wo := &cachev1.WriteOptions{Mode: o.mode, IdempotencyKey: o.idempotencyKey, Durability: durability}
	if o.ttl > 0 {
		wo.Ttl = durationpb.New(o.ttl)
	}
	return wo, nil
}
