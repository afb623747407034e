package node

import (
	"sort"
	"sync"
)

// A partition replica's change feed: the key changes its state machine
// applied, in apply order, for the Changes stream that near caches in
// clients follow (DESIGN.md "The near cache").

// feedSize is how many changes a replica's feed keeps. A subscription
// that resumes from an index older than the oldest change kept starts
// with a reset. 2048 changes are 32 KiB per replica, allocated at the
// first change.
const feedSize = 2048

// change is one key changed by the log entry at index.
type change struct {
	hash  uint64 // xxhash64 of the key
	index uint64
}

// changeFeed is a ring of a replica's latest changes. The state machine
// publishes into it from its apply goroutine, after the batch is in
// storage and before the applied index moves; streams read from it.
type changeFeed struct {
	mu sync.Mutex
	// ring holds changes at positions [head-len, head); position i is
	// ring[i%feedSize].
	ring []change
	head uint64
	// known: every change with an index above known is in the ring, or
	// was dropped from it (dropped). known is where the feed started: the
	// applied index at open, or after a snapshot was installed.
	known uint64
	// dropped is the index of the newest change overwritten in the ring.
	dropped uint64
	// through is the last index the state machine has published.
	through uint64
	// gen grows whenever the feed restarts (reset): positions of an
	// earlier generation mean nothing.
	gen uint64
	// watchers are called after every publish and reset, with mu held:
	// they must not block.
	watchers map[uint64]func()
	nextID   uint64
}

func newChangeFeed(applied uint64) *changeFeed {
	return &changeFeed{known: applied, through: applied, watchers: make(map[uint64]func())}
}

// publish appends the changes of the entries up to through.
func (f *changeFeed) publish(changes []change, through uint64) {
	f.mu.Lock()
	if len(changes) > 0 && f.ring == nil {
		f.ring = make([]change, feedSize)
	}
	for _, c := range changes {
		slot := &f.ring[f.head%feedSize]
		if f.head >= feedSize {
			f.dropped = slot.index
		}
		*slot = c
		f.head++
	}
	if through > f.through {
		f.through = through
	}
	f.wakeLocked()
	f.mu.Unlock()
}

// reset restarts the feed at applied: the changes before it are unknown
// (a snapshot replaced the replica's state).
func (f *changeFeed) reset(applied uint64) {
	f.mu.Lock()
	f.head, f.dropped, f.known, f.through = 0, 0, applied, applied
	f.gen++
	f.wakeLocked()
	f.mu.Unlock()
}

func (f *changeFeed) wakeLocked() {
	for _, fn := range f.watchers {
		fn()
	}
}

// watch has fn called after every publish and reset; fn must not block.
// The returned function stops it.
func (f *changeFeed) watch(fn func()) func() {
	f.mu.Lock()
	f.nextID++
	id := f.nextID
	f.watchers[id] = fn
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.watchers, id)
		f.mu.Unlock()
	}
}

// cursor is a reader's position in a feed.
type cursor struct {
	gen uint64
	pos uint64
}

// from returns a cursor that reads the changes after index, and whether
// the feed holds all of them (ok false: some are unknown; the cursor
// then starts at the feed's end).
func (f *changeFeed) from(index uint64) (cur cursor, through uint64, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur = cursor{gen: f.gen, pos: f.head}
	if index < f.known || index < f.dropped {
		return cur, f.through, false
	}
	tail := f.head - min(f.head, feedSize)
	// The first position after tail whose change is above index.
	n := sort.Search(int(f.head-tail), func(i int) bool { return f.ring[(tail+uint64(i))%feedSize].index > index })
	cur.pos = tail + uint64(n)
	return cur, f.through, true
}

// read appends to dst the changes after cur, at most max of them, and
// returns the cursor after them and the index through which they are
// complete: through is the feed's when every change was read, else the
// index of the last one read. ok is false when the changes after cur are
// lost (the ring overwrote them, or the feed was reset): the caller
// starts again with from.
func (f *changeFeed) read(cur cursor, dst []change, max int) (_ []change, next cursor, through uint64, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur.gen != f.gen || f.head-cur.pos > feedSize {
		return dst, cur, f.through, false
	}
	for cur.pos < f.head && max > 0 {
		dst = append(dst, f.ring[cur.pos%feedSize])
		cur.pos++
		max--
	}
	if cur.pos < f.head {
		// More follow: complete only through the last one read (changes
		// of one entry stay together only if they fit; a later message
		// carries the rest before any mark above them).
		return dst, cur, dst[len(dst)-1].index - 1, true
	}
	return dst, cur, f.through, true
}
