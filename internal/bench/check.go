package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// The read check (RunConfig.Check): every value the run writes names its
// write, and every read is checked against the writes the run saw
// acknowledged. The check needs a target that reports each key's version,
// the order in which the system applied the key's writes (elcache's log
// index): two writes of one key in flight at once may be applied in
// either order, so the order the run issued them in proves nothing.
//
// A read at a level with a staleness bound d (LINEARIZABLE and LEASE: 0;
// BOUNDED(d): d) that began at S is stale if it returns a version older
// than one the run saw acknowledged at or before S-d, or no value when
// one was. Acknowledgements are timed after the write returns, so a
// timing error makes the check miss a stale read, never invent one. A
// read is wrong, at any level, if its value was written by this run to
// another key, or at another version than the one the read reports. A
// value this run did not write (the key's value before the run's first
// write of it, which a read within the bound may still return) is held
// to the bound only.

// versionedTarget is a Target whose reads and writes report versions.
type versionedTarget interface {
	Target
	// GetVersion reads key: its value, which the caller may keep, and
	// version; found is false for a missing key.
	GetVersion(ctx context.Context, key string) (value []byte, version uint64, found bool, err error)
	// PutVersion writes value under key and returns the version the
	// system applied it at.
	PutVersion(ctx context.Context, key string, value []byte) (uint64, error)
}

// boundedTarget is a Target whose reads promise a staleness bound.
type boundedTarget interface {
	// StalenessBound is how stale a read may be, and false if its level
	// promises none (EVENTUAL, SESSION, the cluster's default).
	StalenessBound() (time.Duration, bool)
}

// checkHeader is the bytes of a checked value that name its write: the
// run's nonce (4), the key's index (4) and the write's id (8).
const checkHeader = 16

// checkKeep is how long past a read's bound a key's acknowledgements are
// kept one by one: a read that began longer ago than that is checked
// against less (never wrongly).
const checkKeep = time.Second

// checker checks one run's reads. It is shared by the run's workers.
type checker struct {
	nonce   uint32
	bound   time.Duration
	bounded bool // reads promise bound
	start   time.Time
	nextID  atomic.Uint64
	writes  writeLog
	keys    []keyAcks // by key index

	mu    sync.Mutex
	first string // the first violation, described
}

// keyAcks is the acknowledged writes of one key, oldest first, without
// those no read can need any more (the newest of those stays: its max
// covers them).
type keyAcks struct {
	mu   sync.Mutex
	acks []keyAck
}

// keyAck is one acknowledgement: when the run saw it (since the check
// began) and the highest version acknowledged by then.
type keyAck struct {
	at  time.Duration
	max uint64
}

// checkOutcome is what checking one read found.
type checkOutcome int

const (
	checkOK checkOutcome = iota
	checkStale
	checkWrong
	numCheckOutcomes
)

// newChecker checks reads of keys keys against t's promise, or fails if
// t cannot be checked.
func newChecker(t Target, keys int) (*checker, error) {
	if _, ok := t.(versionedTarget); !ok {
		return nil, errors.New("bench: the read check needs a target that reports versions (elcache)")
	}
	c := &checker{nonce: rand.Uint32(), start: time.Now(), keys: make([]keyAcks, keys)}
	if b, ok := t.(boundedTarget); ok {
		c.bound, c.bounded = b.StalenessBound()
	}
	return c, nil
}

// put stamps value as a new write of key idx, writes it and records its
// acknowledgement.
func (c *checker) put(ctx context.Context, t versionedTarget, key string, idx int, value []byte) error {
	id := c.nextID.Add(1)
	binary.LittleEndian.PutUint32(value[0:], c.nonce)
	binary.LittleEndian.PutUint32(value[4:], uint32(idx))
	binary.LittleEndian.PutUint64(value[8:], id)
	version, err := t.PutVersion(ctx, key, value)
	if err != nil {
		return err
	}
	c.writes.set(id, version)
	k := &c.keys[idx]
	k.mu.Lock()
	defer k.mu.Unlock()
	// Timed under the lock, so that a key's acknowledgements are in
	// order, each no earlier than the write returned.
	now := time.Since(c.start)
	m := version
	if n := len(k.acks); n > 0 {
		m = max(m, k.acks[n-1].max)
	}
	k.acks = append(k.acks, keyAck{at: now, max: m})
	// Forget what no read beginning within checkKeep needs: all but the
	// newest acknowledgement at or before the cut. Half at a time, so
	// that each costs O(1) on average.
	cut := now - c.bound - checkKeep
	drop := sort.Search(len(k.acks), func(i int) bool { return k.acks[i].at > cut }) - 1
	if drop > 0 && drop >= len(k.acks)/2 {
		k.acks = append(k.acks[:0], k.acks[drop:]...)
	}
	return nil
}

// get reads key idx at began and checks what it returns.
func (c *checker) get(ctx context.Context, t versionedTarget, key string, idx int, began time.Time) (checkOutcome, error) {
	value, version, found, err := t.GetVersion(ctx, key)
	if err != nil {
		return checkOK, err
	}
	at := began.Sub(c.start)
	if !found {
		version = 0
	} else if len(value) >= checkHeader && binary.LittleEndian.Uint32(value[0:]) == c.nonce {
		if k := binary.LittleEndian.Uint32(value[4:]); k != uint32(idx) {
			c.violation("%s read at %v: a value written to key %d", key, at.Round(time.Millisecond), k)
			return checkWrong, nil
		}
		id := binary.LittleEndian.Uint64(value[8:])
		if v := c.writes.get(id); v != 0 && v != version {
			c.violation("%s read at %v: write %d's value, acknowledged at version %d, reported at version %d", key, at.Round(time.Millisecond), id, v, version)
			return checkWrong, nil
		}
	}
	if !c.bounded {
		return checkOK, nil
	}
	if r := c.required(idx, at-c.bound); version < r {
		c.violation("%s read at %v: version %d (0: none), but version %d was acknowledged by %v", key, at.Round(time.Millisecond), version, r, (at - c.bound).Round(time.Millisecond))
		return checkStale, nil
	}
	return checkOK, nil
}

// violation records the first read that broke the promise.
func (c *checker) violation(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first == "" {
		c.first = fmt.Sprintf(format, args...)
	}
}

// required is the highest version of key idx acknowledged at or before
// at; 0 if none is known to be.
func (c *checker) required(idx int, at time.Duration) uint64 {
	k := &c.keys[idx]
	k.mu.Lock()
	defer k.mu.Unlock()
	i := sort.Search(len(k.acks), func(i int) bool { return k.acks[i].at > at }) - 1
	if i < 0 {
		return 0
	}
	return k.acks[i].max
}

// stats sums what the workers' checks found.
func (c *checker) stats(workers []*worker) *CheckStats {
	c.mu.Lock()
	s := &CheckStats{First: c.first}
	c.mu.Unlock()
	if c.bounded {
		s.Bound = c.bound.String()
	}
	for _, w := range workers {
		for out, n := range w.checks {
			s.Reads += n
			switch checkOutcome(out) {
			case checkStale:
				s.Stale += n
			case checkWrong:
				s.Wrong += n
			}
		}
	}
	return s
}

// writeLog maps a write's id to the version it was acknowledged at (0:
// not acknowledged, or beyond the log's capacity), in chunks allocated as
// ids reach them.
type writeLog struct {
	chunks [writeLogChunks]atomic.Pointer[[writeLogChunk]atomic.Uint64]
}

const (
	writeLogChunk  = 1 << 16
	writeLogChunks = 1 << 12 // 268 million writes
)

func (l *writeLog) set(id, version uint64) {
	ch := id / writeLogChunk
	if ch >= writeLogChunks {
		return
	}
	p := l.chunks[ch].Load()
	if p == nil {
		l.chunks[ch].CompareAndSwap(nil, new([writeLogChunk]atomic.Uint64))
		p = l.chunks[ch].Load()
	}
	p[id%writeLogChunk].Store(version)
}

func (l *writeLog) get(id uint64) uint64 {
	ch := id / writeLogChunk
	if ch >= writeLogChunks {
		return 0
	}
	p := l.chunks[ch].Load()
	if p == nil {
		return 0
	}
	return p[id%writeLogChunk].Load()
}
