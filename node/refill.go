package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/elcache/elcache/internal/request"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/raft"
)

// Refills from the backing database (DESIGN.md "Fences, not locks"): a
// miss is resolved by the partition leader, once per key at a time
// (concurrent misses wait for the same load), and the FILL is refused if
// anything newer happened to the key after the load began (fillFence).

const (
	// fillMaxAge is the oldest a refill may be when it is applied (from
	// the start of its database load to its proposal, both on the leader's
	// clock). Fences (tombstones) outlive it (fenceTTL), so a refill can
	// never slip in after the fence that should stop it was reaped.
	fillMaxAge = 30 * time.Second
	// fenceTTL is how long a clean tombstone stays as a refill fence.
	fenceTTL = 2 * fillMaxAge
)

// fillVerdict is the refill fence's decision on a FILL: store the row, or
// why it is dropped.
type fillVerdict uint8

const (
	fillStore     fillVerdict = iota // nothing newer: store the row
	fillUnstamped                    // the load's start is unknown
	fillTooOld                       // the load began more than fillMaxAge ago
	fillLive                         // the key holds a live value
	fillDirty                        // the key holds a write the database lacks
	fillFenced                       // the key's fence is newer than the row
)

// fillFence is the refill fence: the one rule that decides whether a
// refill's row (op: a FILL of the row at version op.IfVersion, loaded from
// op.FillStartedAt on) is stored, given the key's entry cur (curOK: there
// is one, tombstones included) at now. fsm.fill applies its verdict to
// every FILL; with the fence broken (Hooks.BreakRefillFence) it
// stores the row whatever the verdict.
//
// A refill's row is stored only if its load began at most fillMaxAge
// before now and the key holds nothing newer than the row: the key is
// absent, or holds a clean tombstone or clean expired entry whose version
// is no higher than the row's. Anything that happens to the key between
// the load and the fill leaves an entry this refuses: a write its live
// value, a write-back its dirty entry until flushed, a write-through or
// write-around a fence (a clean tombstone) at the version of the row it
// writes, an eviction or expiry a fence at the version it removed. Fences
// last fenceTTL, longer than fillMaxAge, so none is gone before the fills
// it must stop are too old. So a value loaded before a write is never
// stored over it.
func fillFence(op *peerv1.Op, now int64, cur storage.Entry, curOK bool) fillVerdict {
	switch {
	case op.FillStartedAt == 0:
		return fillUnstamped
	case now-op.FillStartedAt > int64(fillMaxAge):
		return fillTooOld
	case !curOK:
		return fillStore
	case !cur.Tombstone() && !cur.Expired(now):
		return fillLive
	case cur.Dirty():
		return fillDirty
	case cur.Version > op.IfVersion:
		return fillFenced
	}
	return fillStore
}

// fenceUntil is the expiry of a fence left by an eviction or expiry now,
// or 0 (no fence) on a pure cache.
func (n *Node) fenceUntil() int64 {
	if n.backend == nil {
		return 0
	}
	return time.Now().Add(fenceTTL).UnixNano()
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
	cfg := n.backendCfg
	ctx, cancel := context.WithTimeout(context.Background(), cfg.LoadTimeout)
	defer cancel()
	started := time.Now()
	row, found, err := n.backend.Load(ctx, key)
	if err != nil {
		c.err = fmt.Errorf("partition %d: %w", p.id, err)
		return
	}
	if hook := n.faults.fillHook.Load(); hook != nil {
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
func (n *Node) missed(ctx context.Context, p *partition, key []byte, o request.Read, resp *cachev1.GetResponse) (*cachev1.GetResponse, error) {
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
		if o.AllowStale && errors.Is(err, ErrBackend) {
			// The expired value the cache still holds, if any, marked.
			if old, found, lerr := p.store.Lookup(key); lerr == nil && found && !old.Tombstone() {
				resp.Found, resp.Entry, resp.Meta.Stale, resp.Meta.Refilled = true, entryProto(old, false), true, true
				return resp, nil
			}
		}
		return nil, err
	}
	if ok {
		resp.Found, resp.Meta.Refilled = true, true
		resp.Entry = entryProto(e, false)
		n.stats.refills.Add(1)
	}
	return resp, nil
}
