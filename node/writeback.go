package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/elcache/elcache/internal/request"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"github.com/elcache/elcache/storage/sqlstore"
	"google.golang.org/protobuf/proto"
)

// Write-back (DESIGN.md "Write-back"): a value or delete is stored marked
// dirty, through Raft like any write; the partition leader's flusher
// writes dirty entries to the database in batches and marks them clean
// through Raft, so they survive failover.

// ErrBacklog: the write-back backlog is full.
var ErrBacklog = errors.New("node: write-back backlog full")

// writeBack is WRITE_BACK: once partition p's backlog has room, the puts
// and deletes are stored marked dirty (a delete as a dirty tombstone), for
// the flusher to write to the database.
func (n *Node) writeBack(ctx context.Context, p *partition, now time.Time, w request.Write, ops []*peerv1.Op) (*peerv1.Result, error) {
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
	return n.writeAsked(ctx, p, now, w.IdempotencyKey, w.Durability, marked, ops)
}

// awaitBacklog waits while partition p's write-back backlog is full, until
// ctx ends.
func (n *Node) awaitBacklog(ctx context.Context, p *partition) error {
	limit := n.backendCfg.MaxDirty
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

// flushLoop writes dirty entries of the partitions this node leads to the
// database, in batches, and marks them clean through Raft.
func (n *Node) flushLoop() {
	defer n.wg.Done()
	cfg := n.backendCfg
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
		// Test-only (Hooks.BreakFlushOrder): marked clean before the
		// write, the rows are lost if it fails.
		if _, err := p.propose(ctx, markClean(rows), cachev1.Durability_DURABILITY_SYNC); err != nil {
			return 0, err
		}
		if err := n.backend.Write(ctx, rows); err != nil {
			return 0, err
		}
		n.stats.flushedRows.Add(uint64(len(rows)))
		return len(rows), nil
	}
	err := n.backend.Write(ctx, rows)
	if errors.Is(err, ErrRefused) {
		// Some row of the batch is refused for what it holds: write the
		// rows one by one, keep the refused ones dirty (never dropped) and
		// out of the next batches, and flush the rest.
		var written []sqlstore.Row
		for _, r := range rows {
			if err := n.backend.Write(ctx, []sqlstore.Row{r}); err == nil {
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
	batch := n.backendCfg.FlushBatch
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
