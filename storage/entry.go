package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Flag bits of an entry.
const (
	// FlagDirty marks a write-back entry that has not reached the backing
	// database yet. Dirty entries are never evicted and never expire before
	// they are flushed.
	FlagDirty uint8 = 1 << 0
	// FlagTombstone marks an absent key: reads do not see it. It remembers
	// the version of the key's last write or removal, so that a refill that
	// loaded an older row from the backing database cannot store it (a
	// fence), and, when also dirty, a write-back delete that has not reached
	// the database yet. Clean tombstones carry an expiry and are reaped.
	FlagTombstone uint8 = 1 << 1
	// FlagNegative marks a tombstone stored by a refill that found no row
	// in the database: until it expires, a miss need not load again.
	FlagNegative uint8 = 1 << 2
)

// entryFormat is the first byte of an encoded entry; entryFormatIdem
// marks one that also holds an idempotency key (length u16, then the
// key) between the header and the value. The header is the same in both.
const (
	entryFormat     byte = 1
	entryFormatIdem byte = 2
)

// entryHeaderLen is the encoded size of an entry without its value:
// format(1) flags(1) version(8) expireAt(8) writtenAt(8).
const entryHeaderLen = 26

// ErrCorrupt is returned when stored bytes cannot be decoded.
var ErrCorrupt = errors.New("storage: corrupt entry")

// Entry is a stored value and its metadata.
type Entry struct {
	Key   []byte
	Value []byte
	// Version is the Raft index of the command that wrote this value, so a
	// key's versions only grow, also across deletes.
	Version uint64
	// ExpireAt is the expiry in Unix nanoseconds; 0 means never.
	ExpireAt int64
	// WrittenAt is the leader's clock when the write was proposed, in Unix
	// nanoseconds. Eviction uses it when a key has not been read.
	WrittenAt int64
	Flags     uint8
	// IdemKey is the idempotency key of the write that produced a dirty
	// (write-back) entry, carried to the database row when it is flushed.
	// Empty otherwise.
	IdemKey string
}

// Dirty reports whether the entry waits for a write-back flush.
func (e Entry) Dirty() bool { return e.Flags&FlagDirty != 0 }

// Tombstone reports whether the entry stands for an absent key.
func (e Entry) Tombstone() bool { return e.Flags&FlagTombstone != 0 }

// Expired reports whether the entry has expired at now (Unix nanoseconds).
func (e Entry) Expired(now int64) bool { return e.ExpireAt != 0 && e.ExpireAt <= now }

// Size is the number of bytes the entry accounts for against capacity.
func (e Entry) Size() uint64 {
	return uint64(len(e.Key) + len(e.Value) + len(e.IdemKey) + entryHeaderLen + 5)
}

// appendEncoded appends the stored form of e (without its key) to dst.
func (e Entry) appendEncoded(dst []byte) []byte {
	var h [entryHeaderLen]byte
	h[0] = entryFormat
	h[1] = e.Flags
	binary.BigEndian.PutUint64(h[2:], e.Version)
	binary.BigEndian.PutUint64(h[10:], uint64(e.ExpireAt))
	binary.BigEndian.PutUint64(h[18:], uint64(e.WrittenAt))
	idem := e.IdemKey[:min(len(e.IdemKey), 1<<16-1)]
	if idem != "" {
		h[0] = entryFormatIdem
	}
	dst = append(dst, h[:]...)
	if idem != "" {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(idem)))
		dst = append(dst, idem...)
	}
	return append(dst, e.Value...)
}

// DecodeEntry decodes the stored form of an entry. The value is copied, so
// b may be reused by the caller.
func DecodeEntry(key, b []byte) (Entry, error) {
	if len(b) < entryHeaderLen {
		return Entry{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrCorrupt, len(b), entryHeaderLen)
	}
	if b[0] != entryFormat && b[0] != entryFormatIdem {
		return Entry{}, fmt.Errorf("%w: unknown format %d", ErrCorrupt, b[0])
	}
	e := Entry{
		Key:       append([]byte(nil), key...),
		Flags:     b[1],
		Version:   binary.BigEndian.Uint64(b[2:]),
		ExpireAt:  int64(binary.BigEndian.Uint64(b[10:])),
		WrittenAt: int64(binary.BigEndian.Uint64(b[18:])),
	}
	rest := b[entryHeaderLen:]
	if b[0] == entryFormatIdem {
		// A key of length 0 is never written (format 1 is used instead).
		if len(rest) < 2 || binary.BigEndian.Uint16(rest) == 0 || len(rest)-2 < int(binary.BigEndian.Uint16(rest)) {
			return Entry{}, fmt.Errorf("%w: bad idempotency key in the entry", ErrCorrupt)
		}
		n := int(binary.BigEndian.Uint16(rest))
		e.IdemKey = string(rest[2 : 2+n])
		rest = rest[2+n:]
	}
	e.Value = append([]byte{}, rest...)
	return e, nil
}
