// Package request turns the Cache service's requests into checked, typed
// options before a node acts on them: a Validator holds the node's limits
// and defaults (Config) and is the one place every request limit is
// enforced (DESIGN.md "Limits").
//
// What it checks:
//
//   - Keys (Key): not empty, at most Config.MaxKeyBytes.
//   - Values (Value): at most Config.MaxValueBytes; an empty value is fine.
//   - Times to live (TTL): a valid protobuf duration, not negative, at most
//     Config.MaxTTL; nil or zero means no expiry.
//   - Read options (ReadOptions, giving a Read): a known consistency level
//     (UNSPECIFIED takes Config.DefaultLevel); max_staleness only with
//     BOUNDED, where it must be positive; session tokens only with SESSION.
//   - Write options (WriteOptions, giving a Write): a known mode
//     (UNSPECIFIED takes Config.DefaultMode), a mode other than CACHE_ONLY
//     only with a backing database; a known durability (UNSPECIFIED takes
//     Config.DefaultDurability, then SYNC), always SYNC for WRITE_THROUGH
//     and WRITE_AROUND (SyncOnly); the TTL as above; an idempotency key,
//     when given, in the canonical text form of a version 7 UUID with the
//     RFC 9562 variant.
//   - Batches (BatchLen): not empty, at most Config.MaxBatch items.
//   - Scan pages (PageSize): at most Config.MaxPageSize; 0 asks for
//     Config.DefaultPageSize.
//
// Every error wraps ErrInvalid ("request: invalid argument") and says what
// was wrong: the field, as the caller names it ("entries[3].ttl"), the
// value or its size, and the limit it broke. A node maps ErrInvalid to
// InvalidArgument and sends the message as it is. The package knows
// nothing of the node; it holds no state beyond its Config.
package request
