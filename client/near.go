package client

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/maypok86/otter/v2"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// The near cache: hot keys served from the application's memory, each hit
// keeping the promise of its read level (DESIGN.md "The near cache").
//
// Every partition the near cache holds keys of is followed on a Changes
// stream (nearstream.go) from a node holding a replica, normally its
// leader. The stream carries every key change in apply order and, in
// answer to the client's pings, progress marks: the index through which
// every change was sent, and how fresh the replica's data provably was.
// A cached entry is the key's value at some log index; it stays valid
// until a change of the key at a later index arrives, so an entry still
// cached is the key's value at max(its index, the stream's through). From
// that:
//
//   - EVENTUAL is served while the partition's stream answers pings
//     (within StreamTimeout), and for Grace after that;
//   - BOUNDED(d) while the latest progress mark proves the data fresh
//     within d, counting from when the client sent the ping it answers;
//   - SESSION while the stream answers pings, if the entry's position is
//     at or past the session's token of the partition;
//   - LINEARIZABLE and LEASE never.

// NearCacheConfig configures a client's near cache (Config.NearCache).
// Zero fields take the defaults.
type NearCacheConfig struct {
	// MaxBytes bounds the memory the cached entries take: keys, values
	// and EntryOverhead bytes of bookkeeping per entry (default 64 MiB).
	MaxBytes int64
	// MaxEntries, if positive, also bounds the number of entries: each
	// entry then weighs at least MaxBytes/MaxEntries.
	MaxEntries int
	// ProgressInterval is how often the client asks each stream for a
	// progress mark (default 20ms). A BOUNDED read is served locally only
	// when its bound is longer than this plus a round trip.
	ProgressInterval time.Duration
	// StreamTimeout: a partition whose stream has answered no ping for
	// this long counts as disconnected: SESSION reads of it go to the
	// cluster (BOUNDED ones as soon as their bound runs out), and the
	// client follows it elsewhere (default 500ms, at least 2
	// ProgressIntervals).
	StreamTimeout time.Duration
	// Grace is how long after its last progress mark a disconnected
	// partition's entries still serve EVENTUAL reads (default 1s; negative
	// means not at all).
	Grace time.Duration
	// History is how many of a partition's latest changes the client
	// remembers, so that an answer read before changes it has already
	// processed is not cached (default 4096).
	History int
}

// EntryOverhead is the bookkeeping the near cache counts per entry, on top
// of its key and value: the entry, the cache's node and its hash table
// slot, measured with BenchmarkNearCacheMemory.
const EntryOverhead = 200

// Defaults of the zero NearCacheConfig fields.
const (
	defaultNearMaxBytes      = 64 << 20
	defaultProgressInterval  = 20 * time.Millisecond
	defaultNearStreamTimeout = 500 * time.Millisecond
	defaultNearGrace         = time.Second
	defaultNearHistory       = 4096
)

func (c NearCacheConfig) withDefaults() NearCacheConfig {
	if c.MaxBytes == 0 {
		c.MaxBytes = defaultNearMaxBytes
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = defaultProgressInterval
	}
	if c.StreamTimeout == 0 {
		c.StreamTimeout = max(defaultNearStreamTimeout, 2*c.ProgressInterval)
	}
	if c.Grace == 0 {
		c.Grace = defaultNearGrace
	}
	if c.History == 0 {
		c.History = defaultNearHistory
	}
	return c
}

// validate reports every problem with c.
func (c NearCacheConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("client: config: near cache: "+format, args...))
	}
	if c.MaxBytes < 0 {
		bad("MaxBytes %d is negative", c.MaxBytes)
	}
	if c.MaxEntries < 0 {
		bad("MaxEntries %d is negative", c.MaxEntries)
	}
	if c.ProgressInterval < 0 {
		bad("ProgressInterval %v is negative", c.ProgressInterval)
	}
	if c.StreamTimeout < 0 {
		bad("StreamTimeout %v is negative", c.StreamTimeout)
	}
	if d := c.withDefaults(); d.StreamTimeout < 2*d.ProgressInterval {
		bad("StreamTimeout %v is shorter than two ProgressIntervals (%v)", d.StreamTimeout, d.ProgressInterval)
	}
	if c.History < 0 {
		bad("History %d is negative", c.History)
	}
	return errors.Join(errs...)
}

// nearEntry is one cached value.
type nearEntry struct {
	key, value []byte
	version    uint64
	expiresAt  time.Time
	dirty      bool
	part       uint32
	// gen is the partition's generation when the entry was cached: a
	// restart of the partition's stream drops every older entry.
	gen uint64
	// index: the entry is the key's value at this log index.
	index uint64
}

// nearView is what a read needs to know of a partition: immutable,
// replaced whole by the stream after it has processed a message.
type nearView struct {
	epoch, gen uint64
	// through: every change at or below it has been applied to the cache.
	through uint64
	// markAt is when the client sent the latest ping a mark answered;
	// freshAt is the time its data is proven fresh as of (zero: not
	// proven).
	markAt, freshAt time.Time
	// live: the partition is followed on a stream that is up.
	live bool
}

// nearPart is the near cache's state of one partition.
type nearPart struct {
	view atomic.Pointer[nearView]

	mu sync.Mutex
	// addr is the node whose stream follows the partition ("" none),
	// since when; failed is a node that refused to or stopped answering,
	// avoided until failedUntil.
	addr, failed string
	since        time.Time
	// sub is the id of the partition's current subscription: messages of
	// an earlier one still in flight are ignored.
	sub         uint64
	failedUntil time.Time
	// wanted: a read touched the partition, so the client follows it.
	wanted bool
	cur    nearView // the state the view copies
	// recent are the latest changes processed (key hash -> index), in
	// order in ring; horizon is the newest index forgotten.
	recent  map[uint64]uint64
	ring    []uint64 // key hashes, oldest at next
	next    int
	horizon uint64
}

// near is a client's near cache.
type near struct {
	cfg   NearCacheConfig
	cache *otter.Cache[uint64, *nearEntry]
	parts atomic.Pointer[[]nearPart] // by partition; sized at the first map

	hits, misses, invalidations, reconnects, restarts atomic.Uint64
	// subs numbers subscriptions (nearPart.sub).
	subs atomic.Uint64
}

func newNear(cfg NearCacheConfig) (*near, error) {
	cfg = cfg.withDefaults()
	floor := uint64(0)
	if cfg.MaxEntries > 0 {
		floor = uint64(cfg.MaxBytes) / uint64(cfg.MaxEntries)
	}
	c, err := otter.New(&otter.Options[uint64, *nearEntry]{
		MaximumWeight: uint64(cfg.MaxBytes),
		Weigher: func(_ uint64, e *nearEntry) uint32 {
			return uint32(min(max(uint64(len(e.key)+len(e.value)+EntryOverhead), floor), 1<<32-1))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("client: near cache: %w", err)
	}
	return &near{cfg: cfg, cache: c}, nil
}

// part returns partition pid's state, or nil before the map is known (or
// for a partition beyond it).
func (nc *near) part(pid uint32) *nearPart {
	ps := nc.parts.Load()
	if ps == nil || int(pid) >= len(*ps) {
		return nil
	}
	return &(*ps)[pid]
}

// setParts sizes the partition states once, for the map's count.
func (nc *near) setParts(count int) {
	ps := make([]nearPart, count)
	nc.parts.CompareAndSwap(nil, &ps)
}

// partsLen is the number of partition states (0 before the map).
func (nc *near) partsLen() int {
	if ps := nc.parts.Load(); ps != nil {
		return len(*ps)
	}
	return 0
}

// NearCacheServedBy is ReadMeta.ServedBy of a read the near cache served.
const NearCacheServedBy = "near-cache"

// lookup serves key at ro's level from the near cache, if it may. A
// SESSION read honours ro's session tokens and own, the client's token of
// the partition (nil: none). The entry is the caller's key with a copy of
// the value.
func (nc *near) lookup(pid uint32, key []byte, ro *cachev1.ReadOptions, own *cachev1.SessionToken) (Entry, bool) {
	level := ro.GetConsistency()
	switch level {
	case cachev1.Consistency_CONSISTENCY_EVENTUAL, cachev1.Consistency_CONSISTENCY_BOUNDED, cachev1.Consistency_CONSISTENCY_SESSION:
	default:
		return Entry{}, false
	}
	p := nc.part(pid)
	if p == nil {
		return Entry{}, false
	}
	// The view first, then the entry: an entry found after the view was
	// taken is valid at least through the view's through.
	v := p.view.Load()
	if v == nil {
		nc.misses.Add(1)
		return Entry{}, false
	}
	now := time.Now()
	switch level {
	case cachev1.Consistency_CONSISTENCY_EVENTUAL:
		if now.Sub(v.markAt) > nc.cfg.StreamTimeout+nc.cfg.Grace {
			nc.misses.Add(1)
			return Entry{}, false
		}
	case cachev1.Consistency_CONSISTENCY_BOUNDED:
		if v.freshAt.IsZero() || now.Sub(v.freshAt) > ro.GetMaxStaleness().AsDuration() {
			nc.misses.Add(1)
			return Entry{}, false
		}
	case cachev1.Consistency_CONSISTENCY_SESSION:
		if !v.live || now.Sub(v.markAt) > nc.cfg.StreamTimeout {
			nc.misses.Add(1)
			return Entry{}, false
		}
	}
	e, ok := nc.cache.GetIfPresent(xxhash.Sum64(key))
	if !ok || e.gen != v.gen || !bytes.Equal(e.key, key) || (!e.expiresAt.IsZero() && !now.Before(e.expiresAt)) {
		nc.misses.Add(1)
		return Entry{}, false
	}
	pos := max(e.index, v.through)
	if level == cachev1.Consistency_CONSISTENCY_SESSION {
		behind := func(t *cachev1.SessionToken) bool {
			return t.GetPartition() == pid && (t.GetEpoch() != v.epoch || t.GetIndex() > pos)
		}
		if own != nil && behind(own) || slices.ContainsFunc(ro.GetSessionTokens(), behind) {
			nc.misses.Add(1)
			return Entry{}, false
		}
	}
	since := v.markAt
	if !v.freshAt.IsZero() {
		since = v.freshAt
	}
	nc.hits.Add(1)
	return Entry{Key: key, Value: bytes.Clone(e.value), Version: e.version, ExpiresAt: e.expiresAt, Dirty: e.dirty,
		Meta: ReadMeta{Partition: pid, ServedBy: NearCacheServedBy, Consistency: level, AppliedIndex: pos,
			Staleness: max(now.Sub(since), 0), Session: SessionToken{Partition: pid, Epoch: v.epoch, Index: pos}}}, true
}

// fill caches the answer of a read of key from partition pid, if it
// safely can: a found value read from a replica (not refilled, not
// stale) of the log the partition's stream follows, at an index the
// client can place against the changes it has processed.
func (nc *near) fill(pid uint32, key []byte, r *cachev1.GetResponse) {
	m := r.GetMeta()
	if !r.GetFound() || m.GetRefilled() || m.GetStale() || m.GetServedBy() == NearCacheServedBy || m.GetPartition() != pid {
		return
	}
	p := nc.part(pid)
	if p == nil {
		return
	}
	a := m.GetAppliedIndex()
	h := xxhash.Sum64(key)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wanted = true // the stream loop follows it from now on
	if !p.cur.live || m.GetSessionToken().GetEpoch() != p.cur.epoch || a == 0 {
		return
	}
	index := a
	if a < p.cur.through {
		// Changes up to through are processed: the answer may be older
		// than one of them. It is the key's value at through only if the
		// client remembers every change after a, and none is of this key.
		if a < p.horizon {
			return
		}
		if c, ok := p.recent[h]; ok && c > a {
			return
		}
		index = p.cur.through
	}
	e := r.GetEntry()
	ne := &nearEntry{key: bytes.Clone(key), value: bytes.Clone(e.GetValue()), version: e.GetVersion(), dirty: e.GetDirty(),
		part: pid, gen: p.cur.gen, index: index}
	if ts := e.GetExpiresAt(); ts != nil {
		ne.expiresAt = ts.AsTime()
	}
	nc.cache.Set(h, ne)
}

// drop forgets key: the client is writing it.
func (nc *near) drop(key []byte) {
	nc.cache.Invalidate(xxhash.Sum64(key))
}

// applyLocked applies a partition's changes to the cache. p.mu is held.
func (nc *near) applyLocked(p *nearPart, hashes, indexes []uint64) {
	for i, h := range hashes {
		c := indexes[i]
		p.rememberLocked(h, c, nc.cfg.History)
		gen := p.cur.gen
		dropped := false
		nc.cache.ComputeIfPresent(h, func(old *nearEntry) (*nearEntry, otter.ComputeOp) {
			if old.gen == gen && old.index >= c {
				return old, otter.CancelOp // the entry is newer than the change
			}
			dropped = true
			return nil, otter.InvalidateOp
		})
		if dropped {
			nc.invalidations.Add(1)
		}
	}
}

// rememberLocked records a processed change, forgetting the oldest
// beyond history.
func (p *nearPart) rememberLocked(h, index uint64, history int) {
	if p.recent == nil {
		p.recent = make(map[uint64]uint64)
		p.ring = make([]uint64, history)
	}
	if len(p.recent) >= history {
		old := p.ring[p.next]
		if c, ok := p.recent[old]; ok {
			p.horizon = max(p.horizon, c)
			delete(p.recent, old)
		}
	}
	p.recent[h] = index
	p.ring[p.next] = h
	p.next = (p.next + 1) % len(p.ring)
}

// restartLocked drops everything cached of the partition: a new
// generation, at through, in epoch.
func (p *nearPart) restartLocked(epoch, through uint64) {
	p.cur.gen++
	p.cur.epoch, p.cur.through = epoch, through
	p.recent, p.ring, p.next = nil, nil, 0
	p.horizon = through
}

// publishLocked makes p's state visible to reads.
func (p *nearPart) publishLocked() {
	v := p.cur
	p.view.Store(&v)
}

// NearCounters describe a client's near cache (Counters.Near).
type NearCounters struct {
	// Hits and Misses count the reads the near cache was asked to serve
	// (EVENTUAL, BOUNDED and SESSION reads of a followed partition).
	Hits, Misses uint64
	// Invalidations counts the entries dropped by changes from the
	// cluster.
	Invalidations uint64
	// Entries and Bytes are what the near cache holds now (Bytes as
	// weighed against MaxBytes).
	Entries int
	Bytes   uint64
	// Reconnects counts the Changes streams opened again after one
	// broke.
	Reconnects uint64
	// Restarts counts the times a followed partition's copies were all
	// dropped because its stream could not resume where the client
	// stood (the node no longer held the changes since).
	Restarts uint64
}

func (nc *near) counters() NearCounters {
	nc.cache.CleanUp() // the size counts pending writes
	return NearCounters{Hits: nc.hits.Load(), Misses: nc.misses.Load(), Invalidations: nc.invalidations.Load(),
		Entries: nc.cache.EstimatedSize(), Bytes: nc.cache.WeightedSize(), Reconnects: nc.reconnects.Load(),
		Restarts: nc.restarts.Load()}
}
