package node

import (
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// readOpts is a validated ReadOptions.
type readOpts struct {
	level        cachev1.Consistency
	maxStaleness time.Duration
	tokens       []*cachev1.SessionToken
	allowStale   bool
}

// writeOpts is a validated WriteOptions.
type writeOpts struct {
	mode    cachev1.WriteMode
	ttl     time.Duration
	idemKey string
	// durability is the write's resolved durability, SYNC or REPLICATED:
	// the request's, else the node's default; always SYNC for
	// WRITE_THROUGH and WRITE_AROUND (see syncOnly).
	durability cachev1.Durability
}

// validator checks requests against the configured limits.
type validator struct {
	limits        Limits
	defaultLevel  cachev1.Consistency
	hasBackend    bool
	defaultWriter cachev1.WriteMode
	// defaultDurability is SYNC or REPLICATED.
	defaultDurability cachev1.Durability
}

func (v validator) key(field string, key []byte) error {
	if len(key) == 0 {
		return invalid("%s is empty", field)
	}
	if len(key) > v.limits.MaxKeyBytes {
		return invalid("%s is %d bytes, over the limit of %d", field, len(key), v.limits.MaxKeyBytes)
	}
	return nil
}

func (v validator) value(field string, value []byte) error {
	if len(value) > v.limits.MaxValueBytes {
		return invalid("%s is %d bytes, over the limit of %d", field, len(value), v.limits.MaxValueBytes)
	}
	return nil
}

// ttl converts a TTL; nil or zero means no expiry.
func (v validator) ttl(field string, d *durationpb.Duration) (time.Duration, error) {
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
	if ttl > v.limits.MaxTTL || d.Seconds > int64(v.limits.MaxTTL/time.Second) {
		return 0, invalid("%s %v is over the limit of %v", field, d.AsDuration(), v.limits.MaxTTL)
	}
	return ttl, nil
}

func (v validator) readOptions(o *cachev1.ReadOptions) (readOpts, error) {
	r := readOpts{level: v.defaultLevel}
	if o == nil {
		return r, nil
	}
	if _, ok := cachev1.Consistency_name[int32(o.Consistency)]; !ok {
		return r, invalid("options.consistency: unknown value %d", o.Consistency)
	}
	if o.Consistency != cachev1.Consistency_CONSISTENCY_UNSPECIFIED {
		r.level = o.Consistency
	}
	if o.MaxStaleness != nil {
		if r.level != cachev1.Consistency_CONSISTENCY_BOUNDED {
			return r, invalid("options.max_staleness is only valid with CONSISTENCY_BOUNDED, not %v", r.level)
		}
		if err := o.MaxStaleness.CheckValid(); err != nil {
			return r, invalid("options.max_staleness: %v", err)
		}
		r.maxStaleness = o.MaxStaleness.AsDuration()
	}
	if r.level == cachev1.Consistency_CONSISTENCY_BOUNDED && r.maxStaleness <= 0 {
		return r, invalid("options.max_staleness must be positive with CONSISTENCY_BOUNDED")
	}
	if len(o.SessionTokens) > 0 && r.level != cachev1.Consistency_CONSISTENCY_SESSION {
		return r, invalid("options.session_tokens are only valid with CONSISTENCY_SESSION, not %v", r.level)
	}
	r.tokens = o.SessionTokens
	r.allowStale = o.AllowStale
	return r, nil
}

func (v validator) writeOptions(o *cachev1.WriteOptions) (writeOpts, error) {
	w := writeOpts{mode: v.defaultWriter, durability: v.defaultDurability}
	if o == nil {
		w.durability = w.resolvedDurability()
		return w, nil
	}
	if _, ok := cachev1.WriteMode_name[int32(o.Mode)]; !ok {
		return w, invalid("options.mode: unknown value %d", o.Mode)
	}
	if o.Mode != cachev1.WriteMode_WRITE_MODE_UNSPECIFIED {
		w.mode = o.Mode
	}
	if w.mode != cachev1.WriteMode_WRITE_MODE_CACHE_ONLY && !v.hasBackend {
		return w, invalid("options.mode %v needs a backing database, and this cluster has none (start it with --backend)", w.mode)
	}
	if _, ok := cachev1.Durability_name[int32(o.Durability)]; !ok {
		return w, invalid("options.durability: unknown value %d (want DURABILITY_SYNC or DURABILITY_REPLICATED)", o.Durability)
	}
	if o.Durability != cachev1.Durability_DURABILITY_UNSPECIFIED {
		w.durability = o.Durability
	}
	w.durability = w.resolvedDurability()
	ttl, err := v.ttl("options.ttl", o.Ttl)
	if err != nil {
		return w, err
	}
	w.ttl = ttl
	if o.IdempotencyKey != "" {
		if err := checkUUIDv7(o.IdempotencyKey); err != nil {
			return w, err
		}
	}
	w.idemKey = o.IdempotencyKey
	return w, nil
}

// resolvedDurability is w.durability, or SYNC when w.mode is syncOnly.
func (w writeOpts) resolvedDurability() cachev1.Durability {
	if syncOnly(w.mode) || w.durability == cachev1.Durability_DURABILITY_UNSPECIFIED {
		return cachev1.Durability_DURABILITY_SYNC
	}
	return w.durability
}

// syncOnly reports whether writes in mode are always SYNC. WRITE_THROUGH
// and WRITE_AROUND commit a fence whose index becomes the version of the
// database row: were the fence lost, the index could be given to another
// write, which the row's version would then refuse.
func syncOnly(mode cachev1.WriteMode) bool {
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

// write validates the key, value and options of a single-key write.
func (v validator) write(key, value []byte, o *cachev1.WriteOptions) (writeOpts, error) {
	if err := v.key("key", key); err != nil {
		return writeOpts{}, err
	}
	if err := v.value("value", value); err != nil {
		return writeOpts{}, err
	}
	return v.writeOptions(o)
}

func (v validator) batchLen(field string, n int) error {
	if n == 0 {
		return invalid("%s is empty", field)
	}
	if n > v.limits.MaxBatch {
		return invalid("%s has %d items, over the limit of %d", field, n, v.limits.MaxBatch)
	}
	return nil
}

func (v validator) pageSize(n uint32) (int, error) {
	if n == 0 {
		return v.limits.DefaultPageSize, nil
	}
	if int64(n) > int64(v.limits.MaxPageSize) {
		return 0, invalid("page_size %d is over the limit of %d", n, v.limits.MaxPageSize)
	}
	return int(n), nil
}
