package request

import (
	"math"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Mutation is a validated MutateRequest: its write options, and its
// expiry as the leader resolves it.
type Mutation struct {
	Write
	// ExpireAt is the absolute expiry of an ACTION_AT change (Unix
	// nanoseconds); After the duration of an ACTION_AFTER change, which the
	// leader turns into an instant on its clock.
	ExpireAt int64
	After    time.Duration
}

// CacheHolds reports whether, in mode, the cache holds a key's current
// value, which a write conditioned on it (CompareAndSet, Mutate, MultiPut
// only_if_absent) needs: CACHE_ONLY and WRITE_BACK. In WRITE_THROUGH and
// WRITE_AROUND the database does.
func CacheHolds(mode cachev1.WriteMode) bool {
	return mode == cachev1.WriteMode_WRITE_MODE_CACHE_ONLY || mode == cachev1.WriteMode_WRITE_MODE_WRITE_BACK
}

// Mutate validates a MutateRequest. Only modes CACHE_ONLY and WRITE_BACK
// can mutate: the cache holds the current value in no other mode.
func (v Validator) Mutate(req *cachev1.MutateRequest) (Mutation, error) {
	var m Mutation
	if err := v.Key("key", req.Key); err != nil {
		return m, err
	}
	w, err := v.WriteOptions(req.Options)
	if err != nil {
		return m, err
	}
	m.Write = w
	if w.TTL != 0 {
		return m, invalid("options.ttl is not valid on Mutate: say what happens to the expiry in expiry")
	}
	if !CacheHolds(w.Mode) {
		return m, invalid("Mutate supports options.mode CACHE_ONLY and WRITE_BACK, not %v: in that mode the database, not the cache, holds the current value", w.Mode)
	}
	if _, ok := cachev1.MutateRequest_Condition_name[int32(req.Condition)]; !ok {
		return m, invalid("condition: unknown value %d", req.Condition)
	}
	switch c := req.Change.(type) {
	case *cachev1.MutateRequest_Set:
		if err := v.Value("set", c.Set); err != nil {
			return m, err
		}
	case *cachev1.MutateRequest_Append:
		if err := v.Value("append", c.Append); err != nil {
			return m, err
		}
	case *cachev1.MutateRequest_SetRange:
		if c.SetRange == nil {
			return m, invalid("set_range is empty: it needs an offset and a value")
		}
		if c.SetRange.Offset > uint64(v.cfg.MaxValueBytes) || uint64(len(c.SetRange.Value)) > uint64(v.cfg.MaxValueBytes)-c.SetRange.Offset {
			return m, invalid("set_range: offset %d plus %d bytes is over the value limit of %d", c.SetRange.Offset, len(c.SetRange.Value), v.cfg.MaxValueBytes)
		}
	case *cachev1.MutateRequest_IncrByFloat:
		if math.IsNaN(c.IncrByFloat) || math.IsInf(c.IncrByFloat, 0) {
			return m, invalid("incr_by_float must be a finite number, got %v", c.IncrByFloat)
		}
	case *cachev1.MutateRequest_Delete:
		if !c.Delete {
			return m, invalid("delete must be true when set")
		}
	}
	e := req.Expiry
	if e == nil {
		return m, nil
	}
	if _, ok := cachev1.ExpiryChange_Only_name[int32(e.Only)]; !ok {
		return m, invalid("expiry.only: unknown value %d", e.Only)
	}
	switch e.Action {
	case cachev1.ExpiryChange_ACTION_DEFAULT, cachev1.ExpiryChange_ACTION_KEEP, cachev1.ExpiryChange_ACTION_PERSIST:
		if e.At != nil || e.After != nil {
			return m, invalid("expiry.at and expiry.after are only valid with ACTION_AT and ACTION_AFTER")
		}
	case cachev1.ExpiryChange_ACTION_AT:
		if e.At == nil {
			return m, invalid("expiry.at is required with ACTION_AT")
		}
		if err := e.At.CheckValid(); err != nil {
			return m, invalid("expiry.at: %v", err)
		}
		at := e.At.AsTime()
		if time.Until(at) > v.cfg.MaxTTL {
			return m, invalid("expiry.at %v is more than the longest time to live (%v) away", at, v.cfg.MaxTTL)
		}
		m.ExpireAt = max(at.UnixNano(), 1) // 0 means never: an instant long past still expires
	case cachev1.ExpiryChange_ACTION_AFTER:
		if e.After == nil {
			return m, invalid("expiry.after is required with ACTION_AFTER")
		}
		if err := e.After.CheckValid(); err != nil {
			return m, invalid("expiry.after: %v", err)
		}
		d := e.After.AsDuration()
		if d > v.cfg.MaxTTL || e.After.Seconds > int64(v.cfg.MaxTTL/time.Second) {
			return m, invalid("expiry.after %v is over the limit of %v", d, v.cfg.MaxTTL)
		}
		// Zero or negative: the key expires at once, as in Redis.
		m.After = max(d, time.Nanosecond)
	default:
		return m, invalid("expiry.action: unknown value %d", e.Action)
	}
	if e.Only != cachev1.ExpiryChange_ONLY_ALWAYS && e.Action != cachev1.ExpiryChange_ACTION_AT &&
		e.Action != cachev1.ExpiryChange_ACTION_AFTER && e.Action != cachev1.ExpiryChange_ACTION_PERSIST {
		return m, invalid("expiry.only needs an expiry change (ACTION_AT, ACTION_AFTER or ACTION_PERSIST)")
	}
	return m, nil
}
