package request

import (
	"errors"
	"fmt"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ErrInvalid: the request is malformed or over a limit. Every error of
// the package wraps it.
var ErrInvalid = errors.New("request: invalid argument")

// invalid returns an ErrInvalid error with a message.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Config is what a Validator checks against: the limits and the defaults
// of the node it serves.
type Config struct {
	// MaxKeyBytes is the largest key.
	MaxKeyBytes int
	// MaxValueBytes is the largest value.
	MaxValueBytes int
	// MaxTTL is the longest time to live.
	MaxTTL time.Duration
	// MaxBatch is the most items in a batch (MultiGet keys, MultiPut
	// entries).
	MaxBatch int
	// MaxPageSize is the largest Scan page; DefaultPageSize is the page
	// of a request that asks for 0.
	MaxPageSize     int
	DefaultPageSize int
	// DefaultLevel is the level of reads that do not choose one.
	DefaultLevel cachev1.Consistency
	// DefaultMode is the mode of writes that do not choose one.
	DefaultMode cachev1.WriteMode
	// DefaultDurability is SYNC or REPLICATED, the durability of writes
	// that do not choose one; UNSPECIFIED means SYNC.
	DefaultDurability cachev1.Durability
	// HasBackend: the node has a backing database, so that writes may
	// use a mode other than CACHE_ONLY.
	HasBackend bool
}

// Read is a validated ReadOptions.
type Read struct {
	Level        cachev1.Consistency
	MaxStaleness time.Duration
	Tokens       []*cachev1.SessionToken
	AllowStale   bool
}

// Write is a validated WriteOptions.
type Write struct {
	Mode           cachev1.WriteMode
	TTL            time.Duration
	IdempotencyKey string
	// Durability is the write's resolved durability, SYNC or REPLICATED:
	// the request's, else the node's default; always SYNC for
	// WRITE_THROUGH and WRITE_AROUND (see SyncOnly).
	Durability cachev1.Durability
}

// Validator checks requests against a Config.
type Validator struct {
	cfg Config
}

// New returns a Validator for cfg.
func New(cfg Config) Validator { return Validator{cfg: cfg} }

// Key checks a key; field names it in the error.
func (v Validator) Key(field string, key []byte) error {
	if len(key) == 0 {
		return invalid("%s is empty", field)
	}
	if len(key) > v.cfg.MaxKeyBytes {
		return invalid("%s is %d bytes, over the limit of %d", field, len(key), v.cfg.MaxKeyBytes)
	}
	return nil
}

// Value checks a value; field names it in the error.
func (v Validator) Value(field string, value []byte) error {
	if len(value) > v.cfg.MaxValueBytes {
		return invalid("%s is %d bytes, over the limit of %d", field, len(value), v.cfg.MaxValueBytes)
	}
	return nil
}

// TTL converts a TTL; nil or zero means no expiry.
func (v Validator) TTL(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, invalid("%s: %v", field, err)
	}
	ttl := d.AsDuration()
	if ttl < 0 {
		return 0, invalid("%s is negative (%v)", field, ttl)
	}
	if ttl > v.cfg.MaxTTL || d.Seconds > int64(v.cfg.MaxTTL/time.Second) {
		return 0, invalid("%s %v is over the limit of %v", field, d.AsDuration(), v.cfg.MaxTTL)
	}
	return ttl, nil
}

// ReadOptions validates a read's options; nil is the default level.
func (v Validator) ReadOptions(o *cachev1.ReadOptions) (Read, error) {
	r := Read{Level: v.cfg.DefaultLevel}
	if o == nil {
		return r, nil
	}
	if _, ok := cachev1.Consistency_name[int32(o.Consistency)]; !ok {
		return r, invalid("options.consistency: unknown value %d", o.Consistency)
	}
	if o.Consistency != cachev1.Consistency_CONSISTENCY_UNSPECIFIED {
		r.Level = o.Consistency
	}
	if o.MaxStaleness != nil {
		if r.Level != cachev1.Consistency_CONSISTENCY_BOUNDED {
			return r, invalid("options.max_staleness is only valid with CONSISTENCY_BOUNDED, not %v", r.Level)
		}
		if err := o.MaxStaleness.CheckValid(); err != nil {
			return r, invalid("options.max_staleness: %v", err)
		}
		r.MaxStaleness = o.MaxStaleness.AsDuration()
	}
	if r.Level == cachev1.Consistency_CONSISTENCY_BOUNDED && r.MaxStaleness <= 0 {
		return r, invalid("options.max_staleness must be positive with CONSISTENCY_BOUNDED")
	}
	if len(o.SessionTokens) > 0 && r.Level != cachev1.Consistency_CONSISTENCY_SESSION {
		return r, invalid("options.session_tokens are only valid with CONSISTENCY_SESSION, not %v", r.Level)
	}
	r.Tokens = o.SessionTokens
	r.AllowStale = o.AllowStale
	return r, nil
}

// WriteOptions validates a write's options; nil is the default mode and
// durability.
func (v Validator) WriteOptions(o *cachev1.WriteOptions) (Write, error) {
	w := Write{Mode: v.cfg.DefaultMode, Durability: v.cfg.DefaultDurability}
	if o == nil {
		w.Durability = w.resolvedDurability()
		return w, nil
	}
	if _, ok := cachev1.WriteMode_name[int32(o.Mode)]; !ok {
		return w, invalid("options.mode: unknown value %d", o.Mode)
	}
	if o.Mode != cachev1.WriteMode_WRITE_MODE_UNSPECIFIED {
		w.Mode = o.Mode
	}
	if w.Mode != cachev1.WriteMode_WRITE_MODE_CACHE_ONLY && !v.cfg.HasBackend {
		return w, invalid("options.mode %v needs a backing database, and this cluster has none (start it with --backend)", w.Mode)
	}
	if _, ok := cachev1.Durability_name[int32(o.Durability)]; !ok {
		return w, invalid("options.durability: unknown value %d (want DURABILITY_SYNC or DURABILITY_REPLICATED)", o.Durability)
	}
	if o.Durability != cachev1.Durability_DURABILITY_UNSPECIFIED {
		w.Durability = o.Durability
	}
	w.Durability = w.resolvedDurability()
	ttl, err := v.TTL("options.ttl", o.Ttl)
	if err != nil {
		return w, err
	}
	w.TTL = ttl
	if o.IdempotencyKey != "" {
		if err := checkUUIDv7(o.IdempotencyKey); err != nil {
			return w, err
		}
	}
	w.IdempotencyKey = o.IdempotencyKey
	return w, nil
}

// resolvedDurability is w.Durability, or SYNC when w.Mode is SyncOnly.
func (w Write) resolvedDurability() cachev1.Durability {
	if SyncOnly(w.Mode) || w.Durability == cachev1.Durability_DURABILITY_UNSPECIFIED {
		return cachev1.Durability_DURABILITY_SYNC
	}
	return w.Durability
}

// SyncOnly reports whether writes in mode are always SYNC. WRITE_THROUGH
// and WRITE_AROUND commit a fence whose index becomes the version of the
// database row: were the fence lost, the index could be given to another
// write, which the row's version would then refuse.
func SyncOnly(mode cachev1.WriteMode) bool {
	return mode == cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH || mode == cachev1.WriteMode_WRITE_MODE_WRITE_AROUND
}

// checkUUIDv7 accepts the canonical text form of a version 7 UUID.
func checkUUIDv7(s string) error {
	if len(s) != 36 {
		return invalid("options.idempotency_key %q is not a UUID (want 36 characters, got %d)", s, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return invalid("options.idempotency_key %q is not a UUID (want '-' at %d)", s, i)
			}
			continue
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return invalid("options.idempotency_key %q is not a UUID (bad character at %d)", s, i)
		}
	}
	if s[14] != '7' {
		return invalid("options.idempotency_key %q is a version %c UUID, want version 7", s, s[14])
	}
	switch s[19] {
	case '8', '9', 'a', 'b', 'A', 'B':
	default:
		return invalid("options.idempotency_key %q does not have the RFC 9562 variant", s)
	}
	return nil
}

// Write validates the key, value and options of a single-key write.
func (v Validator) Write(key, value []byte, o *cachev1.WriteOptions) (Write, error) {
	if err := v.Key("key", key); err != nil {
		return Write{}, err
	}
	if err := v.Value("value", value); err != nil {
		return Write{}, err
	}
	return v.WriteOptions(o)
}

// BatchLen checks the length n of a batch; field names it in the error.
func (v Validator) BatchLen(field string, n int) error {
	if n == 0 {
		return invalid("%s is empty", field)
	}
	if n > v.cfg.MaxBatch {
		return invalid("%s has %d items, over the limit of %d", field, n, v.cfg.MaxBatch)
	}
	return nil
}

// PageSize returns the size of a Scan page asked for as n.
func (v Validator) PageSize(n uint32) (int, error) {
	if n == 0 {
		return v.cfg.DefaultPageSize, nil
	}
	if int64(n) > int64(v.cfg.MaxPageSize) {
		return 0, invalid("page_size %d is over the limit of %d", n, v.cfg.MaxPageSize)
	}
	return int(n), nil
}
