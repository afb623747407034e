package storage

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// The Raft log engine: one append-only log for every Raft group of a node
// (DESIGN.md "The Raft log engine").
//
// Every StoreLogs and DeleteRange of every group becomes one record at the
// end of the active segment file, written with one write(2), so it is in
// the operating system's hands when the call returns. One goroutine (the
// sync loop) fsyncs the active segment: at once when a caller waits for a
// synced write, and every syncInterval otherwise. Concurrent synced writes
// of all groups therefore share one fsync (group commit), and REPLICATED
// entries (durability.go) are synced within syncInterval without anyone
// waiting for it.
//
// In memory the engine keeps, per group, the location of every entry and
// the bounds of the log, and a byte-bounded FIFO cache of recent entries
// (followers read every entry back when it commits, leaders when they
// replicate it).
//
// Segments are named by a sequence number and replayed in order at open.
// Only the oldest segment is ever deleted, and only when none of its
// entries is live any more, so a deletion record never outlives an older
// entry it deleted. Live entries that pin the oldest segment (a group that
// stopped writing) are copied to the end of the log once there are more
// than maxSegments segments. A segment is synced before the next one is
// started, so after a power loss only the last segment can be torn; its
// valid prefix is kept and the rest dropped (a record is checked by a
// CRC-32C). A bad record in any other segment is corruption.

// Record kinds.
const (
	recEntries byte = 1 // group, count, then count length-prefixed entries (appendLog)
	recDelete  byte = 2 // group, lo, hi: entries with indexes in [lo, hi] are gone
)

// recHeader is the size of a record's header: CRC-32C of the rest, then
// the payload length.
const recHeader = 8

// logEngineConfig configures a logEngine.
type logEngineConfig struct {
	fs  vfs.FS
	dir string
	// segmentBytes is the size past which a new segment is started.
	segmentBytes int64
	// maxSegments is the number of segments past which the live entries
	// of the oldest are copied to the end, so it can be deleted.
	maxSegments int
	// syncInterval bounds how long a written, unsynced record waits for
	// its fsync.
	syncInterval time.Duration
	// syncGap is the least time between the starts of two fsyncs; zero
	// syncs as soon as asked.
	syncGap time.Duration
	// cacheBytes bounds the cache of recent entries.
	cacheBytes int64
}

// logLoc is where an entry's encoding is.
type logLoc struct {
	seg uint64 // segment sequence number
	off int64  // offset of the encoding in the segment
	n   int    // its length
	// data is the encoding while the entry is cached; it is never
	// modified, so decoded entries may alias it.
	data []byte
}

// groupLog is the in-memory index of one group's log.
type groupLog struct {
	locs        map[uint64]*logLoc
	first, last uint64 // 0, 0 when empty
}

// segment is one file of the log.
type segment struct {
	seq  uint64
	f    vfs.File
	size int64
	live int // entries whose current location is in this segment
}

// cached is one entry of the cache's FIFO.
type cached struct {
	loc *logLoc
	n   int
}

// logEngine is a node's Raft log engine. It is safe for concurrent use.
type logEngine struct {
	cfg logEngineConfig

	// mu guards the index, the segments and the write position.
	mu     sync.Mutex
	groups map[uint64]*groupLog
	segs   []*segment // ascending sequence; the last one is written
	bySeq  map[uint64]*segment
	pos    uint64 // bytes written since open, over all segments
	err    error  // sticky: after a failed write or sync, writes fail
	closed bool
	// broken, held and heldSince: see breakReplicatedForTest.
	broken    bool
	held      []byte
	heldSince time.Time
	fifo      []cached // cache order, oldest first
	cacheN    int64    // bytes in fifo

	// rmu is held for reading around a read of a segment file, and for
	// writing while one is closed and removed.
	rmu sync.RWMutex

	// smu guards the sync state.
	smu     sync.Mutex
	scond   *sync.Cond
	synced  uint64 // every byte below this position is durable
	syncErr error

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// openLogEngine opens the engine in cfg.dir, replaying its segments, and
// starts a new segment for this run's writes.
func openLogEngine(cfg logEngineConfig) (*logEngine, error) {
	if cfg.fs == nil {
		cfg.fs = vfs.Default
	}
	e := &logEngine{
		cfg: cfg, groups: make(map[uint64]*groupLog), bySeq: make(map[uint64]*segment),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	e.scond = sync.NewCond(&e.smu)
	if err := cfg.fs.MkdirAll(cfg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: raft log: %w", err)
	}
	if err := e.replay(); err != nil {
		e.closeFiles()
		return nil, err
	}
	next := uint64(1)
	if n := len(e.segs); n > 0 {
		next = e.segs[n-1].seq + 1
	}
	if err := e.startSegmentLocked(next); err != nil {
		e.closeFiles()
		return nil, err
	}
	go e.syncLoop()
	return e, nil
}

func segmentName(seq uint64) string { return fmt.Sprintf("%016d.rlog", seq) }

// groupLocked returns group's index, creating it.
func (e *logEngine) groupLocked(group uint64) *groupLog {
	g := e.groups[group]
	if g == nil {
		g = &groupLog{locs: make(map[uint64]*logLoc)}
		e.groups[group] = g
	}
	return g
}

// setLocLocked records that entry index of group is at loc.
func (e *logEngine) setLocLocked(group, index uint64, loc *logLoc) {
	g := e.groupLocked(group)
	if old := g.locs[index]; old != nil {
		e.bySeq[old.seg].live--
		old.data = nil
	}
	g.locs[index] = loc
	e.bySeq[loc.seg].live++
	if g.first == 0 || index < g.first {
		g.first = index
	}
	g.last = max(g.last, index)
}

// deleteLocked removes group's entries with indexes in [lo, hi].
func (e *logEngine) deleteLocked(group, lo, hi uint64) {
	g := e.groups[group]
	if g == nil || lo > hi || len(g.locs) == 0 {
		return
	}
	drop := func(i uint64) {
		if loc := g.locs[i]; loc != nil {
			e.bySeq[loc.seg].live--
			loc.data = nil
			delete(g.locs, i)
		}
	}
	lo, hi = max(lo, g.first), min(hi, g.last)
	if lo > hi {
		return
	}
	if hi-lo < uint64(len(g.locs)) {
		for i := lo; ; i++ {
			drop(i)
			if i == hi {
				break
			}
		}
	} else {
		for i := range g.locs {
			if i >= lo && i <= hi {
				drop(i)
			}
		}
	}
	if len(g.locs) == 0 {
		g.first, g.last = 0, 0
		return
	}
	if lo <= g.first || hi >= g.last {
		first, last := uint64(math.MaxUint64), uint64(0)
		for i := range g.locs {
			first, last = min(first, i), max(last, i)
		}
		g.first, g.last = first, last
	}
}

// bounds returns group's first and last index (0, 0 when empty).
func (e *logEngine) bounds(group uint64) (first, last uint64, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, 0, ErrClosed
	}
	if g := e.groups[group]; g != nil {
		return g.first, g.last, nil
	}
	return 0, 0, nil
}

// getLog reads entry index of group into l; raft.ErrLogNotFound if there
// is none.
func (e *logEngine) getLog(group, index uint64, l *raft.Log) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	g := e.groups[group]
	var loc *logLoc
	if g != nil {
		loc = g.locs[index]
	}
	if loc == nil {
		e.mu.Unlock()
		return raft.ErrLogNotFound
	}
	data, seq, off, n := loc.data, loc.seg, loc.off, loc.n
	s := e.bySeq[seq]
	e.mu.Unlock()
	if data == nil {
		data = make([]byte, n)
		e.rmu.RLock()
		var err error
		if s.f == nil {
			// Its segment was removed, which only happens once none
			// of its entries is live: the entry was deleted meanwhile.
			err = raft.ErrLogNotFound
		} else {
			_, err = s.f.ReadAt(data, off)
		}
		e.rmu.RUnlock()
		if errors.Is(err, raft.ErrLogNotFound) {
			return err
		}
		if err != nil {
			return fmt.Errorf("storage: group %d: get log %d: %w", group, index, err)
		}
	}
	if err := decodeLog(data, l); err != nil {
		return fmt.Errorf("%w (group %d, index %d)", err, group, index)
	}
	if l.Index != index {
		return fmt.Errorf("%w: raft log: index %d stored at %d (group %d)", ErrCorrupt, l.Index, index, group)
	}
	return nil
}

// diskBytes returns the size of the segment files.
func (e *logEngine) diskBytes() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n int64
	for _, s := range e.segs {
		n += s.size
	}
	return uint64(n)
}

// close syncs and closes the engine. It is idempotent.
func (e *logEngine) close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	err := e.flushHeldLocked()
	e.mu.Unlock()
	close(e.stop)
	<-e.done
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.smu.Lock()
	err = errors.Join(err, e.syncErr)
	if e.syncErr == nil {
		e.syncErr = ErrClosed // wakes and fails any waiter left
	}
	e.scond.Broadcast()
	e.smu.Unlock()
	return errors.Join(err, e.closeFiles())
}

func (e *logEngine) closeFiles() error {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	var errs []error
	for _, s := range e.segs {
		if s.f != nil {
			errs = append(errs, s.f.Close())
			s.f = nil
		}
	}
	return errors.Join(errs...)
}
