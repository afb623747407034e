package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// stateLen is the encoded size of a partition's state record:
// applied(8) keys(8) bytes(8) dirty(8) expiring(8).
const stateLen = 40

// State is a partition's durable bookkeeping, written in the same batch as
// the entries it describes.
type State struct {
	// Applied is the Raft index of the last command applied.
	Applied uint64
	// Keys counts the stored entries (expired ones included until they are
	// removed), not tombstones; Bytes is the accounted size of all entries,
	// tombstones included; Dirty counts dirty entries and tombstones.
	Keys, Bytes, Dirty uint64
	// Expiring counts the entries that have a TTL: the reaper skips a
	// partition that has none.
	Expiring uint64
}

func (s State) encode() []byte {
	b := make([]byte, stateLen)
	binary.BigEndian.PutUint64(b[0:], s.Applied)
	binary.BigEndian.PutUint64(b[8:], s.Keys)
	binary.BigEndian.PutUint64(b[16:], s.Bytes)
	binary.BigEndian.PutUint64(b[24:], s.Dirty)
	binary.BigEndian.PutUint64(b[32:], s.Expiring)
	return b
}

func decodeState(b []byte) (State, error) {
	if len(b) != stateLen {
		return State{}, fmt.Errorf("%w: partition state is %d bytes, want %d", ErrCorrupt, len(b), stateLen)
	}
	return State{
		Applied:  binary.BigEndian.Uint64(b[0:]),
		Keys:     binary.BigEndian.Uint64(b[8:]),
		Bytes:    binary.BigEndian.Uint64(b[16:]),
		Dirty:    binary.BigEndian.Uint64(b[24:]),
		Expiring: binary.BigEndian.Uint64(b[32:]),
	}, nil
}

// Partition is the stored state of one partition: its entries and its
// bookkeeping. Writes go through a Batch and must come from one goroutine at
// a time (the partition's state machine); reads are safe from any goroutine.
type Partition struct {
	db       *DB
	id       uint32
	prefix   []byte
	end      []byte
	stateKey []byte

	// state is the last committed State; it is replaced whole on commit.
	state atomic.Pointer[State]
	// dirty indexes the dirty entries.
	dirty dirtySet
}

// Partition opens partition id, loading its state.
func (d *DB) Partition(id uint32) (*Partition, error) {
	p := &Partition{db: d, id: id, prefix: dataPrefix(id), stateKey: metaKey(id, "state")}
	p.end = prefixEnd(p.prefix)
	raw, ok, err := d.get(p.stateKey)
	if err != nil {
		return nil, fmt.Errorf("storage: partition %d: %w", id, err)
	}
	st := State{}
	if ok {
		if st, err = decodeState(raw); err != nil {
			return nil, fmt.Errorf("storage: partition %d: %w", id, err)
		}
	}
	p.state.Store(&st)
	if err := p.rebuildDirty(); err != nil {
		return nil, fmt.Errorf("storage: partition %d: %w", id, err)
	}
	return p, nil
}

// ID returns the partition number.
func (p *Partition) ID() uint32 { return p.id }

// State returns the last committed state.
func (p *Partition) State() State { return *p.state.Load() }

// Get returns the entry of key, or false if it is absent, a tombstone or
// expired at now (Unix nanoseconds).
func (p *Partition) Get(key []byte, now int64) (Entry, bool, error) {
	e, ok, err := p.Lookup(key)
	if err != nil || !ok || e.Tombstone() || e.Expired(now) {
		return Entry{}, false, err
	}
	return e, true, nil
}

// Lookup returns the stored entry of key as it is: tombstones and expired
// entries included.
func (p *Partition) Lookup(key []byte) (Entry, bool, error) {
	// The key is built on the stack for the row cache, and copied for
	// Pebble, which keeps it, only on a miss.
	var kb [64]byte
	k := appendDataKey(kb[:0], p.id, key)
	rows := p.db.rows
	var gen uint64
	if rows != nil {
		raw, g, ok := rows.get(k)
		if ok {
			e, err := DecodeEntry(key, raw)
			return e, err == nil, err
		}
		gen = g
	}
	raw, closer, err := p.db.pdb.Get(append([]byte(nil), k...))
	if errors.Is(err, pebble.ErrNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	defer closer.Close()
	e, err := DecodeEntry(key, raw)
	if err != nil {
		return Entry{}, false, err
	}
	if rows != nil {
		rows.fill(k, raw, gen)
	}
	return e, true, nil
}

// ScanOptions select the entries a scan returns.
type ScanOptions struct {
	// After is the key the previous page ended at; the scan starts after it.
	After []byte
	// Prefix restricts the scan to keys with this prefix.
	Prefix []byte
	// Limit is the maximum number of entries returned (must be positive).
	Limit int
	// Now hides entries expired at this time (Unix nanoseconds).
	Now int64
	// KeysOnly leaves values out.
	KeysOnly bool
}

// Scan returns up to opts.Limit live entries in key order, and whether more
// may follow.
func (p *Partition) Scan(opts ScanOptions) ([]Entry, bool, error) {
	if opts.Limit <= 0 {
		return nil, false, errors.New("storage: scan limit must be positive")
	}
	lower := dataKey(p.id, opts.Prefix)
	upper := p.end
	if len(opts.Prefix) > 0 {
		upper = prefixEnd(lower)
	}
	if opts.After != nil {
		after := append(dataKey(p.id, opts.After), 0)
		if bytes.Compare(after, lower) > 0 {
			lower = after
		}
	}
	it, err := p.db.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	var out []Entry
	for valid := it.First(); valid; valid = it.Next() {
		if len(out) == opts.Limit {
			return out, true, nil
		}
		raw, err := it.ValueAndErr()
		if err != nil {
			return nil, false, err
		}
		e, err := DecodeEntry(it.Key()[len(p.prefix):], raw)
		if err != nil {
			return nil, false, err
		}
		if e.Expired(opts.Now) || e.Tombstone() {
			continue
		}
		if opts.KeysOnly {
			e.Value = nil
		}
		out = append(out, e)
	}
	return out, false, it.Error()
}

// Sample returns about n entries from random places of the partition, for
// eviction. It reads runs of a few adjacent keys from random seek points.
// Tombstones are skipped: they are fences, not evictable data.
func (p *Partition) Sample(rng *rand.Rand, n int) ([]Entry, error) {
	const run = 4
	it, err := p.db.pdb.NewIter(&pebble.IterOptions{LowerBound: p.prefix, UpperBound: p.end})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	if n <= 0 || !it.First() {
		return nil, it.Error()
	}
	first := append([]byte(nil), it.Key()...)
	it.Last()
	last := append([]byte(nil), it.Key()...)
	var out []Entry
	seen := make(map[string]bool, n)
	for tries := 0; len(out) < n && tries < n; tries++ {
		valid := seekRandom(it, rng, first, last)
		for i := 0; valid && i < run && len(out) < n; i, valid = i+1, it.Next() {
			if seen[string(it.Key())] {
				break
			}
			seen[string(it.Key())] = true
			raw, err := it.ValueAndErr()
			if err != nil {
				return nil, err
			}
			e, err := DecodeEntry(it.Key()[len(p.prefix):], raw)
			if err != nil {
				return nil, err
			}
			if e.Tombstone() {
				continue
			}
			out = append(out, e)
		}
	}
	return out, it.Error()
}

// seekRandom positions it at a random key between first and last, the
// smallest and largest keys of its range. Seeking to random bytes would
// almost always land on the first key, since real keys share leading bytes
// ("user:..."), so it walks down the key trie instead: where the keys under
// the current prefix branch, it picks a byte uniformly between the smallest
// and the largest next byte present. It reports whether it is positioned.
func seekRandom(it *pebble.Iterator, rng *rand.Rand, first, last []byte) bool {
	const maxDepth = 16
	lo, hi := first, last
	atHi := false // it is positioned at hi
	for depth := 0; ; depth++ {
		c := 0
		for c < len(lo) && c < len(hi) && lo[c] == hi[c] {
			c++
		}
		if c == len(hi) {
			// A single key under the prefix: hi is a prefix of lo only if
			// they are equal.
			return atHi || it.SeekGE(lo)
		}
		minB := -1 // lo ends at c: -1 stands for lo itself
		if c < len(lo) {
			minB = int(lo[c])
		}
		b := minB + rng.IntN(int(hi[c])-minB+1)
		if b < 0 {
			return it.SeekGE(lo)
		}
		// hi >= seek, so the seek lands under lo[:c]; the key it finds is
		// the smallest under its own first c+1 bytes.
		if !it.SeekGE(append(lo[:c:c], byte(b))) {
			return false
		}
		if depth == maxDepth {
			return true
		}
		lo = append([]byte(nil), it.Key()...)
		if !it.SeekLT(prefixEnd(lo[:c+1])) {
			return false
		}
		hi, atHi = it.Key(), true
	}
}

// Expired walks up to budget entries starting after cursor and returns the
// ones expired at now that are not dirty, with the cursor to continue from
// (nil once the walk wrapped around the end of the partition).
func (p *Partition) Expired(cursor []byte, now int64, budget int) ([]Entry, []byte, error) {
	lower := p.prefix
	if cursor != nil {
		lower = append(dataKey(p.id, cursor), 0)
	}
	it, err := p.db.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: p.end})
	if err != nil {
		return nil, nil, err
	}
	defer it.Close()
	var out []Entry
	var last []byte
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n == budget {
			return out, last, it.Error()
		}
		n++
		raw, err := it.ValueAndErr()
		if err != nil {
			return nil, nil, err
		}
		last = append(last[:0], it.Key()[len(p.prefix):]...)
		if len(raw) < entryHeaderLen {
			return nil, nil, fmt.Errorf("%w: entry of %d bytes", ErrCorrupt, len(raw))
		}
		exp := int64(binary.BigEndian.Uint64(raw[10:]))
		if exp == 0 || exp > now || raw[1]&FlagDirty != 0 {
			continue
		}
		e, err := DecodeEntry(last, raw)
		if err != nil {
			return nil, nil, err
		}
		e.Value = nil
		out = append(out, e)
	}
	return out, nil, it.Error()
}

// Batch is a set of writes to one partition that commits atomically with the
// partition's new State. Reads through the batch see its own writes.
type Batch struct {
	p     *Partition
	b     *pebble.Batch
	state State
	dirty map[string]uint64 // see noteDirty
	rows  []rowWrite        // see noteRow
}

// rowWrite is a batch's write of one key: its stored form, nil when
// deleted.
type rowWrite struct {
	key, raw []byte
}

// NewBatch starts a batch. Only the partition's state machine writes, one
// batch at a time.
func (p *Partition) NewBatch() *Batch {
	return &Batch{p: p, b: p.db.pdb.NewIndexedBatch(), state: p.State()}
}

// Get returns the stored entry of key, expired or not, seeing the batch's
// own writes.
func (b *Batch) Get(key []byte) (Entry, bool, error) {
	v, closer, err := b.b.Get(dataKey(b.p.id, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	defer closer.Close()
	e, err := DecodeEntry(key, v)
	return e, err == nil, err
}

// Put stores e, replacing any entry of the same key.
func (b *Batch) Put(e Entry) error {
	old, ok, err := b.Get(e.Key)
	if err != nil {
		return err
	}
	if ok {
		b.account(old, -1)
	}
	b.account(e, 1)
	if e.Dirty() {
		b.noteDirty(e.Key, e.Version)
	} else if ok && old.Dirty() {
		b.noteDirty(e.Key, 0)
	}
	k, raw := dataKey(b.p.id, e.Key), e.appendEncoded(nil)
	b.noteRow(k, raw)
	return b.b.Set(k, raw, nil)
}

// Delete removes key and returns the entry it held, if any.
func (b *Batch) Delete(key []byte) (Entry, bool, error) {
	old, ok, err := b.Get(key)
	if err != nil || !ok {
		return Entry{}, false, err
	}
	b.account(old, -1)
	if old.Dirty() {
		b.noteDirty(key, 0)
	}
	k := dataKey(b.p.id, key)
	b.noteRow(k, nil)
	return old, true, b.b.Delete(k, nil)
}

// noteRow remembers a write for the row cache, which learns it after the
// commit.
func (b *Batch) noteRow(k, raw []byte) {
	if b.p.db.rows != nil {
		b.rows = append(b.rows, rowWrite{key: k, raw: raw})
	}
}

func (b *Batch) account(e Entry, sign int) {
	d := uint64(sign) // wraps to subtract when sign is -1
	if !e.Tombstone() {
		b.state.Keys += d
	}
	b.state.Bytes += d * e.Size()
	if e.Dirty() {
		b.state.Dirty += d
	}
	if e.ExpireAt != 0 {
		b.state.Expiring += d
	}
}

// GetMeta returns a named metadata value of the partition, seeing the
// batch's own writes.
func (b *Batch) GetMeta(name string) ([]byte, bool, error) {
	v, closer, err := b.b.Get(metaKey(b.p.id, name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), true, nil
}

// PutMeta stores a named metadata value of the partition.
func (b *Batch) PutMeta(name string, value []byte) error {
	return b.b.Set(metaKey(b.p.id, name), value, nil)
}

// DeleteMeta removes a named metadata value.
func (b *Batch) DeleteMeta(name string) error {
	return b.b.Delete(metaKey(b.p.id, name), nil)
}

// Commit writes the batch with applied as the partition's applied index.
// The write is not synced: the Raft log is, and restart replays the entries
// after the durable applied index.
func (b *Batch) Commit(applied uint64) error {
	b.state.Applied = applied
	if err := b.b.Set(b.p.stateKey, b.state.encode(), nil); err != nil {
		return err
	}
	if err := b.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("storage: partition %d commit: %w", b.p.id, err)
	}
	// The row cache learns the writes before the applied index moves, so
	// that a read waiting for this index finds them there.
	for _, w := range b.rows {
		b.p.db.rows.written(w.key, w.raw)
	}
	st := b.state
	b.p.state.Store(&st)
	b.p.applyDirty(b.dirty)
	return nil
}

// Close releases the batch; it discards it if it was not committed.
func (b *Batch) Close() error { return b.b.Close() }

// MetaScan returns the partition's metadata values whose names start with
// prefix, in name order, at most limit of them, as last committed.
func (p *Partition) MetaScan(prefix string, limit int) ([][2][]byte, error) {
	return metaScan(p.db.pdb, p.id, prefix, limit)
}
