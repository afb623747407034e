package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"github.com/elcache/elcache/storage/sqlstore"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

// Write modes and refills against the backing database (DESIGN.md "In
// front of a database"). Every database row carries the version of the
// cache write that produced it, a Raft index of the key's partition, so
// rows only move forward and replays are no-ops.
//
//   - WRITE_THROUGH: fence the key (INVALIDATE at index v: readers miss,
//     refills of older rows are refused), write the row at version v, then
//     store the value at v (FILL). The value is never visible before the
//     database has it; a failed database write leaves only the fence.
//   - WRITE_AROUND: fence the key at v, write the row at v; the next read
//     refills.
//   - WRITE_BACK: store the value marked dirty; the partition leader's
//     flusher writes dirty entries in batches and marks them clean through
//     Raft, so they survive failover.
//   - Refill: a miss is resolved by the partition leader, once per key at a
//     time (concurrent misses wait for the same load), and the FILL is
//     refused if anything newer happened to the key after the load began.

// ErrBacklog: the write-back backlog is full.
var ErrBacklog = errors.New("node: write-back backlog full")

// modeWrite applies puts and deletes (KIND_PUT and KIND_DELETE ops, all of
// partition p) in write mode w.mode, and returns one result per op.
func (n *Node) modeWrite(ctx context.Context, p *partition, now time.Time, w writeOpts, ops []*peerv1.Op) (*peerv1.Result, error) {
	switch w.mode {
	case cachev1.WriteMode_WRITE_MODE_WRITE_BACK:
		if err := n.awaitBacklog(ctx, p); err != nil {
			return nil, err
		}
		marked := make([]*peerv1.Op, len(ops))
		for i, op := range ops {
			c := proto.Clone(op).(*peerv1.Op)
			c.Flags |= uint32(storage.FlagDirty)
			if c.Kind == peerv1.Op_KIND_DELETE {
				c.Flags |= uint32(storage.FlagTombstone)
			}
			marked[i] = c
		}
		return n.writeFP(ctx, p, now, w.idemKey, w.durability, marked, requestFingerprint(w.idemKey, ops))
	case cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH, cachev1.WriteMode_WRITE_MODE_WRITE_AROUND:
		return n.writeToDatabase(ctx, p, now, w, ops)
	default:
		return n.write(ctx, p, now, w.idemKey, w.durability, ops)
	}
}

// writeToDatabase is WRITE_THROUGH and WRITE_AROUND: fence, write the
// rows, and (write-through) store the values. Its commands are SYNC
// (syncOnly).
func (n *Node) writeToDatabase(ctx context.Context, p *partition, now time.Time, w writeOpts, ops []*peerv1.Op) (*peerv1.Result, error) {
	fences := make([]*peerv1.Op, len(ops))
	fenceUntil := now.Add(fenceTTL).UnixNano()
	for i, op := range ops {
		fences[i] = &peerv1.Op{Kind: peerv1.Op_KIND_INVALIDATE, Key: op.Key, ExpireAt: fenceUntil}
	}
	// A retry under the same idempotency key gets the first attempt's
	// versions back and writes the same rows again: a no-op in the
	// database if they are there.
	res, err := n.writeFP(ctx, p, now, w.idemKey, cachev1.Durability_DURABILITY_SYNC, fences, requestFingerprint(w.idemKey, ops))
	if err != nil {
		return nil, err
	}
	rows := make([]sqlstore.Row, len(ops))
	for i, op := range ops {
		rows[i] = sqlstore.Row{Key: op.Key, Value: op.Value, Version: res.Ops[i].Version,
			Deleted: op.Kind == peerv1.Op_KIND_DELETE, IdempotencyKey: w.idemKey}
	}
	if err := n.backend.write(ctx, rows); err != nil {
		return nil, fmt.Errorf("partition %d: %w", p.id, err)
	}
	if w.mode == cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH {
		var fills []*peerv1.Op
		for i, op := range ops {
			if op.Kind == peerv1.Op_KIND_PUT {
				fills = append(fills, &peerv1.Op{Kind: peerv1.Op_KIND_FILL, Key: op.Key, Value: op.Value,
					IfVersion: rows[i].Version, ExpireAt: op.ExpireAt, FillStartedAt: now.UnixNano()})
			}
		}
		if len(fills) > 0 {
			// The database has the rows: the write is acknowledged even if
			// this fails (a later read refills from the database).
			if _, err := n.write(ctx, p, now, "", cachev1.Durability_DURABILITY_SYNC, fills); err != nil {
				p.log.Debug("write-through: storing the written value failed", "err", err)
			}
		}
	}
	return res, nil
}

// fenceUntil is the expiry of a fence left by an eviction or expiry now,
// or 0 (no fence) on a pure cache.
func (n *Node) fenceUntil() int64 {
	if n.backend == nil {
		return 0
	}
	return time.Now().Add(fenceTTL).UnixNano()
}

// awaitBacklog waits while partition p's write-back backlog is full, until
// ctx ends.
func (n *Node) awaitBacklog(ctx context.Context, p *partition) error {
	limit := n.backend.cfg.MaxDirty
	if p.store.State().Dirty < limit {
		return nil
	}
	// Give up a little before the caller's deadline, so that it hears why.
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-max(20*time.Millisecond, time.Until(dl)/5)))
		defer cancel()
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for p.store.State().Dirty >= limit {
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("%w: partition %d has %d entries waiting for the database (limit %d)",
				ErrBacklog, p.id, p.store.State().Dirty, limit)
		}
	}
	return nil
}

// refusedRetry is how long write-back rows the database refused are left
// out of flushes before they are tried again.
const refusedRetry = 30 * time.Second

// refusedRows are a partition's dirty rows the database refused for what
// they hold, by key, at the version refused.
type refusedRows struct {
	mu    sync.Mutex // also serializes the partition's flushes
	rows  map[string]uint64
	since time.Time
}

// count returns how many rows are refused.
func (r *refusedRows) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.rows)
}

// fillCall is one database load of a key that concurrent misses share.
type fillCall struct {
	done chan struct{}
	// created is when the call was made, before its database read began.
	created time.Time
	entry   storage.Entry
	found   bool
	// stored: the fill was applied, so no write to the key came between
	// the load's start and the fill.
	stored bool
	err    error
}

// fills is a partition's loads in flight, by key.
type fills struct {
	mu    sync.Mutex
	calls map[string]*fillCall
}

// refillAttempts bounds how often a miss waits for a load whose row turned
// out stale before it gives up with Unavailable.
const refillAttempts = 5

// refill resolves a miss of key on partition p, which this node leads:
// one load from the database per key at a time, whoever asks; the row is
// stored unless something newer happened to the key meanwhile.
//
// A miss that joins a load already under way may use its row only if the
// fill was stored: the row was then current at the fill, which came after
// the miss. If the fill was refused (a write came after the load began),
// the row may predate a write acknowledged before this miss, so the miss
// looks again and loads again. The miss that started the load may use its
// row either way: the database read came after the miss began, so the row
// was current then (a write-around or write-through whose database write
// failed leaves a fence that refuses every fill, and such misses must
// still be answered).
func (n *Node) refill(ctx context.Context, p *partition, key []byte) (storage.Entry, bool, error) {
	for attempt := 1; ; attempt++ {
		joined := time.Now()
		p.fills.mu.Lock()
		c := p.fills.calls[string(key)]
		if c == nil {
			// The previous load may have filled the key after this
			// request missed: look again before loading again.
			if e, ok, err := p.store.Get(key, time.Now().UnixNano()); err != nil || ok {
				p.fills.mu.Unlock()
				return e, ok, err
			}
			c = &fillCall{done: make(chan struct{}), created: time.Now()}
			if p.fills.calls == nil {
				p.fills.calls = make(map[string]*fillCall)
			}
			p.fills.calls[string(key)] = c
			n.stats.loads.Add(1)
			go n.load(p, key, c)
		} else {
			n.stats.coalesced.Add(1)
		}
		p.fills.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return storage.Entry{}, false, fmt.Errorf("%w: waiting for the database to load the key", ctx.Err())
		}
		if c.err != nil || c.stored || !c.created.Before(joined) {
			return c.entry, c.found, c.err
		}
		if attempt == refillAttempts {
			return storage.Entry{}, false, fmt.Errorf("%w: partition %d: the key changed while it was loaded, %d times", ErrUnavailable, p.id, attempt)
		}
	}
}

// load runs one fillCall: it loads the row and proposes the fill, then
// releases the waiters.
func (n *Node) load(p *partition, key []byte, c *fillCall) {
	defer func() {
		p.fills.mu.Lock()
		delete(p.fills.calls, string(key))
		p.fills.mu.Unlock()
		close(c.done)
	}()
	cfg := n.backend.cfg
	ctx, cancel := context.WithTimeout(context.Background(), cfg.LoadTimeout)
	defer cancel()
	started := time.Now()
	row, found, err := n.backend.load(ctx, key)
	if err != nil {
		c.err = fmt.Errorf("partition %d: %w", p.id, err)
		return
	}
	if hook := n.fillHook.Load(); hook != nil {
		(*hook)(key)
	}
	op := &peerv1.Op{Kind: peerv1.Op_KIND_FILL, Key: key, IfVersion: row.Version, FillStartedAt: started.UnixNano()}
	switch {
	case found && !row.Deleted:
		op.Value = row.Value
		c.entry = storage.Entry{Key: key, Value: row.Value, Version: row.Version}
		c.found = true
	case cfg.NegativeTTL > 0:
		op.Flags = uint32(storage.FlagTombstone | storage.FlagNegative)
		op.ExpireAt = time.Now().Add(cfg.NegativeTTL).UnixNano()
	default:
		// Nothing to cache, but the fill still checks that no write came
		// meanwhile (see refill): an entry that has expired already.
		op.Flags = uint32(storage.FlagTombstone | storage.FlagNegative)
		op.ExpireAt = time.Now().UnixNano()
	}
	res, err := n.write(ctx, p, time.Now(), "", cachev1.Durability_DURABILITY_SYNC, []*peerv1.Op{op})
	if err != nil {
		// The misses that joined this load cannot tell whether the row is
		// still current: they look again.
		p.log.Debug("refill: storing the loaded row failed", "err", err)
		return
	}
	c.stored = len(res.Ops) == 1 && res.Ops[0].Ok
}

// missed resolves a read miss on local replica p when the node has a
// backing database: the leader refills; another replica hands the read to
// the leader.
func (n *Node) missed(ctx context.Context, p *partition, key []byte, o readOpts, resp *cachev1.GetResponse) (*cachev1.GetResponse, error) {
	if n.backend == nil || resp.Found {
		return resp, nil
	}
	if p.raft.State() != raft.Leader {
		return nil, p.notLeader()
	}
	if neg, ok, err := p.store.Lookup(key); err != nil {
		return nil, err
	} else if ok && neg.Tombstone() && neg.Flags&storage.FlagNegative != 0 && !neg.Expired(time.Now().UnixNano()) {
		// The database had no such key a moment ago (negative caching).
		return resp, nil
	}
	e, ok, err := n.refill(ctx, p, key)
	if err != nil {
		if o.allowStale && errors.Is(err, ErrBackend) {
			// The expired value the cache still holds, if any, marked.
			if old, found, lerr := p.store.Lookup(key); lerr == nil && found && !old.Tombstone() {
				resp.Found, resp.Entry, resp.Meta.Stale = true, entryProto(old, false), true
				return resp, nil
			}
		}
		return nil, err
	}
	if ok {
		resp.Found = true
		resp.Entry = entryProto(e, false)
		n.stats.refills.Add(1)
	}
	return resp, nil
}

// flushLoop writes dirty entries of the partitions this node leads to the
// database, in batches, and marks them clean through Raft.
func (n *Node) flushLoop() {
	defer n.wg.Done()
	cfg := n.backend.cfg
	t := time.NewTicker(cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		for _, p := range n.hosted() {
			if !p.ready() {
				continue
			}
			for {
				flushed, err := n.flush(p, cfg.FlushBatch)
				if err != nil {
					p.log.Warn("write-back flush failed", "err", err)
					break
				}
				if flushed < cfg.FlushBatch {
					break
				}
			}
		}
	}
}

// flush writes up to batch dirty entries of p (which this node leads) to
// the database and marks them clean; it returns how many it wrote.
func (n *Node) flush(p *partition, batch int) (int, error) {
	p.refused.mu.Lock()
	defer p.refused.mu.Unlock()
	if time.Since(p.refused.since) > refusedRetry {
		clear(p.refused.rows) // try them again: the table may have changed
		p.refused.since = time.Now()
	}
	dirty := p.store.Dirty(batch + len(p.refused.rows))
	if len(dirty) == 0 {
		return 0, nil
	}
	var rows []sqlstore.Row
	var newest uint64 // the highest version in rows
	for _, d := range dirty {
		e, ok, err := p.store.Lookup(d.Key)
		if err != nil {
			return 0, err
		}
		if !ok || !e.Dirty() {
			continue
		}
		if v, ok := p.refused.rows[string(e.Key)]; ok && v == e.Version {
			continue
		}
		// A MultiPut's per-partition commands carry "key/partition".
		idem, _, _ := strings.Cut(e.IdemKey, "/")
		rows = append(rows, sqlstore.Row{Key: e.Key, Value: e.Value, Version: e.Version, Deleted: e.Tombstone(), IdempotencyKey: idem})
		newest = max(newest, e.Version)
		if len(rows) == batch {
			break
		}
	}
	if len(rows) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// REPLICATED write-back entries reach the database only once they are
	// on disk on a quorum (partition.syncThrough).
	if err := p.syncThrough(ctx, newest); err != nil {
		return 0, err
	}
	if n.faults.brokenFlushOrder.Load() {
		// Test-only (Node.BreakFlushOrderForTest): marked clean before the
		// write, the rows are lost if it fails.
		if _, err := p.propose(ctx, markClean(rows), cachev1.Durability_DURABILITY_SYNC); err != nil {
			return 0, err
		}
		if err := n.backend.write(ctx, rows); err != nil {
			return 0, err
		}
		n.stats.flushedRows.Add(uint64(len(rows)))
		return len(rows), nil
	}
	err := n.backend.write(ctx, rows)
	if errors.Is(err, ErrRefused) {
		// Some row of the batch is refused for what it holds: write the
		// rows one by one, keep the refused ones dirty (never dropped) and
		// out of the next batches, and flush the rest.
		var written []sqlstore.Row
		for _, r := range rows {
			if err := n.backend.write(ctx, []sqlstore.Row{r}); err == nil {
				written = append(written, r)
			} else if errors.Is(err, ErrRefused) {
				if p.refused.rows == nil {
					p.refused.rows = make(map[string]uint64)
				}
				p.refused.rows[string(r.Key)] = r.Version
				p.log.Error("write-back: the database refused a row; it stays dirty and is tried again later",
					"key", fmt.Sprintf("%q", r.Key), "version", r.Version, "err", err)
			} else {
				return 0, err
			}
		}
		rows, err = written, nil
		if len(rows) == 0 {
			return 0, nil
		}
	}
	if err != nil {
		return 0, err
	}
	if _, err := p.propose(ctx, markClean(rows), cachev1.Durability_DURABILITY_SYNC); err != nil {
		// Flushed but not marked: the next flush writes the same versions
		// again, a no-op in the database.
		return 0, err
	}
	n.stats.flushedRows.Add(uint64(len(rows)))
	return len(rows), nil
}

// markClean returns the command that marks rows, written to the database,
// clean at exactly their versions; flushed deletes stay as fences.
func markClean(rows []sqlstore.Row) *peerv1.Command {
	now := time.Now()
	ops := make([]*peerv1.Op, len(rows))
	for i, r := range rows {
		ops[i] = &peerv1.Op{Kind: peerv1.Op_KIND_MARK_CLEAN, Key: r.Key, IfVersion: r.Version}
		if r.Deleted {
			ops[i].ExpireAt = now.Add(fenceTTL).UnixNano()
		}
	}
	return &peerv1.Command{ProposedAt: now.UnixNano(), Ops: ops}
}

// flushAll flushes every dirty entry of the partitions this node leads,
// for a graceful shutdown, until none is left or timeout passes.
func (n *Node) flushAll(timeout time.Duration) {
	if n.backend == nil {
		return
	}
	deadline := time.Now().Add(timeout)
	for _, p := range n.hosted() {
		n.flushPartition(p, time.Until(deadline))
	}
}

// flushPartition flushes p's dirty entries while this node leads it, until
// none is left or timeout passes.
func (n *Node) flushPartition(p *partition, timeout time.Duration) {
	if n.backend == nil {
		return
	}
	deadline := time.Now().Add(timeout)
	batch := n.backend.cfg.FlushBatch
	for p.ready() && p.store.State().Dirty > 0 && time.Now().Before(deadline) {
		if _, err := n.flush(p, batch); err != nil {
			p.log.Warn("write-back flush before leaving failed", "err", err)
			return
		}
	}
}

// flushLag returns the age of the oldest dirty entry this node holds.
func (n *Node) flushLag() time.Duration {
	var lag time.Duration
	now := time.Now().UnixNano()
	for _, p := range n.hosted() {
		for _, d := range p.store.Dirty(1) {
			if e, ok, err := p.store.Lookup(d.Key); err == nil && ok && e.Dirty() {
				lag = max(lag, time.Duration(now-e.WrittenAt))
			}
		}
	}
	return lag
}
