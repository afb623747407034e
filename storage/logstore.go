package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// errStableNotFound is returned by LogStore.Get and GetUint64 for a missing
// key. Its text breaks the "storage: " rule on purpose: hashicorp/raft tells
// a missing key from a failure by comparing err.Error() with "not found".
var errStableNotFound = errors.New("not found")

var (
	_ raft.LogStore    = (*LogStore)(nil)
	_ raft.StableStore = (*LogStore)(nil)
)

// LogStore is the raft.LogStore and raft.StableStore of one Raft group.
// Its log lives in the node's log engine (raftlog.go), shared by every
// group: StoreLogs returns once its entries are written, and, unless every
// one of them is marked REPLICATED (durability.go), once they are synced,
// in one fsync with whatever the other groups wrote meanwhile. Term and
// vote live in the DB's stable ('s') key space, each write a synced
// Pebble batch, so they are durable before Raft acts on them. It is safe
// for concurrent use.
//
// LogStore does not implement raft.MonotonicLogStore: entries are keyed by
// index, so gaps are harmless (GetLog of a missing index returns
// raft.ErrLogNotFound). Raft can then use a gap to mark the logs that
// precede a restored snapshot instead of deleting them all.
type LogStore struct {
	pdb   *pebble.DB
	eng   *logEngine
	group uint64
}

// LogStore returns the log and stable store of Raft group group.
func (d *DB) LogStore(group uint64) *LogStore {
	return &LogStore{pdb: d.pdb, eng: d.logs, group: group}
}

// FirstIndex returns the lowest stored log index, or 0 if there is none.
func (s *LogStore) FirstIndex() (uint64, error) {
	first, _, err := s.eng.bounds(s.group)
	return first, err
}

// LastIndex returns the highest stored log index, or 0 if there is none.
func (s *LogStore) LastIndex() (uint64, error) {
	_, last, err := s.eng.bounds(s.group)
	return last, err
}

// GetLog reads the entry at index into l. It returns raft.ErrLogNotFound,
// unwrapped as raft expects, if there is no such entry. l.Data and
// l.Extensions must not be modified.
func (s *LogStore) GetLog(index uint64, l *raft.Log) error {
	return s.eng.getLog(s.group, index, l)
}

// StoreLog stores one entry.
func (s *LogStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

// StoreLogs stores entries, replacing any entries at the same indexes. The
// indexes need not be contiguous. It returns once they are written and,
// unless all are REPLICATED, synced.
func (s *LogStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	pos, err := s.eng.storeLogs(s.group, logs)
	if err != nil {
		return fmt.Errorf("storage: group %d: store logs %d-%d: %w", s.group, logs[0].Index, logs[len(logs)-1].Index, err)
	}
	if !allReplicated(logs) {
		if err := s.eng.waitSynced(pos); err != nil {
			return fmt.Errorf("storage: group %d: store logs %d-%d: %w", s.group, logs[0].Index, logs[len(logs)-1].Index, err)
		}
	}
	return nil
}

// DeleteRange deletes the entries with indexes in [lo, hi].
func (s *LogStore) DeleteRange(lo, hi uint64) error {
	if err := s.eng.deleteRange(s.group, lo, hi); err != nil {
		return fmt.Errorf("storage: group %d: delete logs %d-%d: %w", s.group, lo, hi, err)
	}
	return nil
}

// Set stores val under key in one synced batch.
func (s *LogStore) Set(key, val []byte) error {
	if err := s.pdb.Set(groupKey(spaceStable, s.group, key), val, pebble.Sync); err != nil {
		return fmt.Errorf("storage: group %d: set %q: %w", s.group, key, err)
	}
	return nil
}

// Get returns the value under key. A missing key returns an error whose
// text is "not found", as raft expects.
func (s *LogStore) Get(key []byte) ([]byte, error) {
	v, closer, err := s.pdb.Get(groupKey(spaceStable, s.group, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errStableNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: group %d: get %q: %w", s.group, key, err)
	}
	out := append([]byte(nil), v...)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("storage: group %d: get %q: %w", s.group, key, err)
	}
	return out, nil
}

// SetUint64 stores val under key, big-endian, in one synced batch.
func (s *LogStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the uint64 under key. A missing key returns 0 and an
// error whose text is "not found", as raft expects.
func (s *LogStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: stable value %q of group %d is %d bytes, want 8", ErrCorrupt, key, s.group, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Log entry encoding, version 1:
//
//	version(1) flags(1) index(uvarint) term(uvarint) type(1)
//	[appendedAt(varint unix nanos) if flags&logHasAppendedAt]
//	len(uvarint) data  len(uvarint) extensions
//
// A zero AppendedAt is not stored, so it decodes as the zero time rather
// than the Unix epoch. Times outside the int64 nanosecond range (years
// 1678-2262) do not survive the round trip.
const (
	logVersion       byte = 1
	logHasAppendedAt byte = 1 << 0
)

// appendLog appends the encoding of l to b.
func appendLog(b []byte, l *raft.Log) []byte {
	var flags byte
	if !l.AppendedAt.IsZero() {
		flags |= logHasAppendedAt
	}
	b = append(b, logVersion, flags)
	b = binary.AppendUvarint(b, l.Index)
	b = binary.AppendUvarint(b, l.Term)
	b = append(b, byte(l.Type))
	if flags&logHasAppendedAt != 0 {
		b = binary.AppendVarint(b, l.AppendedAt.UnixNano())
	}
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	return append(b, l.Extensions...)
}

// decodeLog decodes an entry encoded by appendLog into l. l.Data and
// l.Extensions alias b. Malformed input returns an error wrapping
// ErrCorrupt and leaves l unchanged.
func decodeLog(b []byte, l *raft.Log) error {
	d := logDecoder{b: b}
	if v := d.byte(); v != logVersion && d.err == nil {
		return fmt.Errorf("%w: raft log: unknown version %d", ErrCorrupt, v)
	}
	flags := d.byte()
	if flags&^logHasAppendedAt != 0 && d.err == nil {
		return fmt.Errorf("%w: raft log: unknown flags %#x", ErrCorrupt, flags)
	}
	var out raft.Log
	out.Index = d.uvarint()
	out.Term = d.uvarint()
	out.Type = raft.LogType(d.byte())
	if flags&logHasAppendedAt != 0 {
		if ns := d.varint(); d.err == nil {
			out.AppendedAt = time.Unix(0, ns)
		}
	}
	out.Data = d.bytes()
	out.Extensions = d.bytes()
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: raft log: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	if d.err != nil {
		return d.err
	}
	*l = out
	return nil
}

// logDecoder reads the fields of an encoded entry. After the first error
// every read returns a zero value and err keeps that error.
type logDecoder struct {
	b   []byte
	err error
}

func (d *logDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: raft log: bad %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *logDecoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *logDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *logDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes reads a length-prefixed byte string; empty decodes as nil. The
// result's capacity is capped so appending to it cannot overwrite what
// follows.
func (d *logDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length")
		return nil
	}
	if n == 0 {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
