package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

// Metadata names in a partition's meta space.
const (
	metaEpoch    = "epoch"
	metaIdemPfx  = "i/" // idempotency key -> marshalled Result
	metaIdemTime = "t/" // proposed_at(u64) + idempotency key -> empty, for aging
	// Old idempotency records are removed at every idemPruneEvery-th log
	// index, the same indexes on every replica, idemAgeBudget at most at a
	// time: more than are added in between, so they cannot pile up, and
	// few enough that apply time stays bounded. Pruning at every command
	// cost an iterator over the records' fresh deletions each time.
	idemPruneEvery = 64
	idemAgeBudget  = 2 * idemPruneEvery
)

// fsm is a partition's replicated state machine. Raft calls it from one
// goroutine; its read-side accessors are safe from any goroutine.
//
// It applies commands at or below the partition's durable applied index as
// no-ops: entries are written unsynced with the applied index in the same
// batch, restart replays the log after the last snapshot, and snapshots sent
// to followers may be newer than their index (see storage.SnapshotStore).
type fsm struct {
	part        *storage.Partition
	dedupWindow time.Duration
	// syncDB makes every write so far durable.
	syncDB func() error
	// faults, if set, can break the refill fence in tests
	// (Hooks.BreakRefillFence).
	faults *faults

	// applied is the last log index the state machine has processed
	// (commands and configuration entries).
	applied atomic.Uint64
	// visible is never below the index of any write a reader can find in
	// storage: it is raised before a batch is committed, applied only
	// after, so a read that finds a batch's write may see applied still
	// below it, but never visible. Session tokens come from it.
	visible atomic.Uint64
	// noopTerm is the term of the last leader no-op applied: a leader may
	// serve linearizable reads once it equals the current term.
	noopTerm atomic.Uint64
	epoch    atomic.Uint64

	expirations atomic.Uint64
	evictions   atomic.Uint64

	// idem is a hint of the idempotency keys with a record (storage.IdemSet).
	idem *storage.IdemSet

	// feed receives the key changes of every batch applied (changefeed.go);
	// changes collects them, from the apply goroutine only.
	feed    *changeFeed
	changes []change

	mu sync.Mutex
	// appliedCh is closed and replaced whenever applied advances.
	appliedCh chan struct{}
}

var (
	_ raft.FSM         = (*fsm)(nil)
	_ raft.BatchingFSM = (*fsm)(nil)
)

func newFSM(part *storage.Partition, syncDB func() error, dedupWindow time.Duration, epoch uint64) (*fsm, error) {
	f := &fsm{part: part, syncDB: syncDB, dedupWindow: dedupWindow, appliedCh: make(chan struct{}), idem: storage.NewIdemSet(),
		feed: newChangeFeed(part.State().Applied)}
	f.applied.Store(part.State().Applied)
	f.visible.Store(part.State().Applied)
	f.epoch.Store(epoch)
	if err := f.idem.Load(part, metaIdemPfx); err != nil {
		return nil, fmt.Errorf("node: partition %d: idempotency records: %w", part.ID(), err)
	}
	return f, nil
}

// Apply applies one log entry.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed entries in one storage batch.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	b := f.part.NewBatch()
	defer b.Close()
	durable := f.part.State().Applied
	last := uint64(0)
	f.changes = f.changes[:0]
	for i, l := range logs {
		last = l.Index
		if l.Index <= durable || l.Type != raft.LogCommand {
			continue
		}
		cmd := new(peerv1.Command)
		if err := proto.Unmarshal(l.Data, cmd); err != nil {
			out[i] = fmt.Errorf("node: decode command at index %d: %w", l.Index, err)
			continue
		}
		res, err := f.applyCommand(b, l.Index, l.Term, cmd)
		if err != nil {
			// A failed local write would make this replica diverge from
			// the log; stop instead, and let restart replay the log.
			panic(fmt.Sprintf("node: partition %d: apply index %d: %v", f.part.ID(), l.Index, err))
		}
		out[i] = res
	}
	if last > f.visible.Load() {
		f.visible.Store(last)
	}
	if last > durable {
		if err := b.Commit(last); err != nil {
			panic(fmt.Sprintf("node: partition %d: commit index %d: %v", f.part.ID(), last, err))
		}
	}
	// The feed learns the changes once they are in storage and before the
	// applied index moves: a reader that saw an index saw its changes.
	f.feed.publish(f.changes, last)
	if last > f.applied.Load() {
		f.applied.Store(last)
	}
	f.notifyApplied()
	return out
}

// notifyApplied wakes the waitApplied callers after applied changed.
func (f *fsm) notifyApplied() {
	f.mu.Lock()
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.mu.Unlock()
}

func (f *fsm) applyCommand(b *storage.Batch, index, term uint64, cmd *peerv1.Command) (*peerv1.Result, error) {
	if cmd.IdempotencyKey != "" && f.idem.MayHave(cmd.IdempotencyKey) {
		raw, ok, err := b.GetMeta(metaIdemPfx + cmd.IdempotencyKey)
		if err != nil {
			return nil, err
		}
		if ok {
			res := new(peerv1.Result)
			if err := proto.Unmarshal(raw, res); err != nil {
				return nil, err
			}
			res.Deduplicated = true
			res.IdempotencyConflict = res.Fingerprint != cmd.Fingerprint
			return res, nil
		}
	}
	res := &peerv1.Result{Index: index, Fingerprint: cmd.Fingerprint, Ops: make([]*peerv1.OpResult, len(cmd.Ops))}
	group, hold, err := casGroup(b, cmd.ProposedAt, cmd.Ops)
	if err != nil {
		return nil, err
	}
	for i, op := range cmd.Ops {
		if op.Kind != peerv1.Op_KIND_LEADER_NOOP && op.Kind != peerv1.Op_KIND_MARK_CLEAN {
			// Every op that may change a key's value counts, whether or
			// not it did: a near cache drops a copy it need not have.
			f.changes = append(f.changes, change{hash: xxhash.Sum64(op.Key), index: index})
		}
		if group && op.Kind == peerv1.Op_KIND_CAS {
			if !hold {
				res.Ops[i] = &peerv1.OpResult{}
				continue
			}
			op = proto.Clone(op).(*peerv1.Op)
			op.Kind, op.Expect = peerv1.Op_KIND_PUT, nil
		}
		r, err := f.applyOp(b, index, term, cmd.ProposedAt, cmd.IdempotencyKey, op)
		if err != nil {
			return nil, err
		}
		res.Ops[i] = r
	}
	if cmd.IdempotencyKey != "" {
		if err := f.rememberIdem(b, index, cmd, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (f *fsm) applyOp(b *storage.Batch, index, term uint64, now int64, idemKey string, op *peerv1.Op) (*peerv1.OpResult, error) {
	// A write-back entry keeps its write's idempotency key for the row
	// the flusher writes.
	if op.Flags&uint32(storage.FlagDirty) == 0 {
		idemKey = ""
	}
	put := func() (*peerv1.OpResult, error) {
		e := storage.Entry{Key: op.Key, Value: op.Value, Version: index, ExpireAt: op.ExpireAt, WrittenAt: now, Flags: uint8(op.Flags), IdemKey: idemKey}
		return &peerv1.OpResult{Ok: true, Version: index}, b.Put(e)
	}
	switch op.Kind {
	case peerv1.Op_KIND_PUT:
		return put()
	case peerv1.Op_KIND_DELETE:
		if op.Flags&uint32(storage.FlagTombstone) != 0 {
			cur, ok, err := b.Get(op.Key)
			if err != nil {
				return nil, err
			}
			e := storage.Entry{Key: op.Key, Version: index, ExpireAt: op.ExpireAt, WrittenAt: now, Flags: uint8(op.Flags), IdemKey: idemKey}
			return &peerv1.OpResult{Ok: live(cur, ok, now), Version: index}, b.Put(e)
		}
		old, existed, err := b.Delete(op.Key)
		return &peerv1.OpResult{Ok: live(old, existed, now)}, err
	case peerv1.Op_KIND_INVALIDATE:
		cur, ok, err := b.Get(op.Key)
		if err != nil {
			return nil, err
		}
		e := storage.Entry{Key: op.Key, Version: index, ExpireAt: op.ExpireAt, WrittenAt: now, Flags: storage.FlagTombstone}
		return &peerv1.OpResult{Ok: live(cur, ok, now), Version: index}, b.Put(e)
	case peerv1.Op_KIND_FILL:
		return f.fill(b, now, op)
	case peerv1.Op_KIND_MARK_CLEAN:
		cur, ok, err := b.Get(op.Key)
		if err != nil || !ok || cur.Version != op.IfVersion || !cur.Dirty() {
			return &peerv1.OpResult{}, err
		}
		if cur.Tombstone() && op.ExpireAt == 0 {
			_, _, err := b.Delete(op.Key)
			return &peerv1.OpResult{Ok: true}, err
		}
		cur.Flags &^= storage.FlagDirty
		cur.IdemKey = ""
		if cur.Tombstone() {
			cur.ExpireAt = op.ExpireAt
		}
		return &peerv1.OpResult{Ok: true, Version: cur.Version}, b.Put(cur)
	case peerv1.Op_KIND_CAS:
		cur, ok, err := b.Get(op.Key)
		if err != nil {
			return nil, err
		}
		live := live(cur, ok, now)
		if casHolds(cur, live, op) {
			return put()
		}
		r := &peerv1.OpResult{}
		if live {
			r.Version = cur.Version
		}
		return r, nil
	case peerv1.Op_KIND_EXPIRE, peerv1.Op_KIND_EVICT:
		cur, ok, err := b.Get(op.Key)
		if err != nil || !ok || cur.Version != op.IfVersion || cur.Dirty() {
			return &peerv1.OpResult{}, err
		}
		if op.Kind == peerv1.Op_KIND_EXPIRE && !cur.Expired(now) {
			return &peerv1.OpResult{}, nil
		}
		if op.Kind == peerv1.Op_KIND_EVICT && cur.Tombstone() {
			return &peerv1.OpResult{}, nil
		}
		if op.ExpireAt != 0 && !cur.Tombstone() {
			// The database still has this version: leave a fence so that a
			// refill that loaded an older row cannot store it (fillFence).
			fence := storage.Entry{Key: op.Key, Version: cur.Version, ExpireAt: op.ExpireAt, WrittenAt: now, Flags: storage.FlagTombstone}
			if err := b.Put(fence); err != nil {
				return nil, err
			}
		} else if _, _, err := b.Delete(op.Key); err != nil {
			return nil, err
		}
		if cur.Tombstone() {
			return &peerv1.OpResult{Ok: true}, nil
		}
		if op.Kind == peerv1.Op_KIND_EXPIRE {
			f.expirations.Add(1)
		} else {
			f.evictions.Add(1)
		}
		return &peerv1.OpResult{Ok: true}, nil
	case peerv1.Op_KIND_MUTATE:
		return f.applyMutate(b, index, now, idemKey, op)
	case peerv1.Op_KIND_LEADER_NOOP:
		if f.epoch.Load() == 0 && op.Epoch != 0 {
			if err := b.PutMeta(metaEpoch, binary.BigEndian.AppendUint64(nil, op.Epoch)); err != nil {
				return nil, err
			}
			f.epoch.Store(op.Epoch)
		}
		f.noopTerm.Store(term)
		return &peerv1.OpResult{Ok: true}, nil
	default:
		// Unknown kinds from a newer version are skipped identically on
		// every replica.
		return &peerv1.OpResult{}, nil
	}
}

// casGroup reports whether ops hold several CAS ops (group), which hold
// all or none, and whether every one of them holds against the state
// before the command (hold).
func casGroup(b *storage.Batch, now int64, ops []*peerv1.Op) (group, hold bool, err error) {
	n := 0
	for _, op := range ops {
		if op.Kind == peerv1.Op_KIND_CAS {
			n++
		}
	}
	if n < 2 {
		return false, false, nil
	}
	for _, op := range ops {
		if op.Kind != peerv1.Op_KIND_CAS {
			continue
		}
		cur, ok, err := b.Get(op.Key)
		if err != nil {
			return true, false, err
		}
		if !casHolds(cur, live(cur, ok, now), op) {
			return true, false, nil
		}
	}
	return true, true, nil
}

// casHolds reports whether a CAS op's expectation holds against the
// key's entry cur (live: cur is a live value).
func casHolds(cur storage.Entry, live bool, op *peerv1.Op) bool {
	switch x := op.Expect.(type) {
	case *peerv1.Op_ExpectedVersion:
		return live && cur.Version == x.ExpectedVersion
	case *peerv1.Op_ExpectedValue:
		return live && bytes.Equal(cur.Value, x.ExpectedValue)
	case *peerv1.Op_ExpectAbsent:
		return !live
	}
	return false
}

// live reports whether a stored entry (ok: one was found) is a live value
// at now.
func live(e storage.Entry, ok bool, now int64) bool {
	return ok && !e.Tombstone() && !e.Expired(now)
}

// fill stores a row from the backing database (op.IfVersion is its
// version) if the refill fence lets it (fillFence). Otherwise the load is
// too old, or a write, invalidation or delete happened after it began and
// the row may be stale: it is dropped.
//
// With the fence broken (Hooks.BreakRefillFence) the row is stored
// whatever the partition holds and however old the load is.
func (f *fsm) fill(b *storage.Batch, now int64, op *peerv1.Op) (*peerv1.OpResult, error) {
	cur, ok, err := b.Get(op.Key)
	if err != nil {
		return nil, err
	}
	broken := f.faults != nil && f.faults.brokenRefillFence.Load()
	switch v := fillFence(op, now, cur, ok); {
	case v == fillStore || broken:
	case v == fillUnstamped || v == fillTooOld:
		return &peerv1.OpResult{}, nil
	default:
		return &peerv1.OpResult{Version: cur.Version}, nil
	}
	e := storage.Entry{Key: op.Key, Value: op.Value, Version: op.IfVersion, ExpireAt: op.ExpireAt, WrittenAt: now,
		Flags: uint8(op.Flags) & (storage.FlagTombstone | storage.FlagNegative)}
	if e.Tombstone() {
		e.Value = nil
	}
	return &peerv1.OpResult{Ok: true, Version: op.IfVersion}, b.Put(e)
}

// rememberIdem stores a command's result under its idempotency key and, at
// every idemPruneEvery-th index, ages out records older than the dedup
// window, judged by the command's own timestamp so every replica removes
// the same ones at the same index.
func (f *fsm) rememberIdem(b *storage.Batch, index uint64, cmd *peerv1.Command, res *peerv1.Result) error {
	raw, err := proto.Marshal(res)
	if err != nil {
		return err
	}
	if err := b.PutMeta(metaIdemPfx+cmd.IdempotencyKey, raw); err != nil {
		return err
	}
	f.idem.Add(cmd.IdempotencyKey)
	if err := b.PutMeta(idemTimeName(cmd.ProposedAt, cmd.IdempotencyKey), nil); err != nil {
		return err
	}
	if index%idemPruneEvery != 0 {
		return nil
	}
	cutoff := cmd.ProposedAt - int64(f.dedupWindow)
	old, err := b.MetaScan(metaIdemTime, idemAgeBudget)
	if err != nil {
		return err
	}
	for _, kv := range old {
		name := string(kv[0])
		at := int64(binary.BigEndian.Uint64([]byte(name[len(metaIdemTime):])))
		if at >= cutoff {
			break
		}
		key := name[len(metaIdemTime)+8:]
		if err := errors.Join(b.DeleteMeta(name), b.DeleteMeta(metaIdemPfx+key)); err != nil {
			return err
		}
		f.idem.Remove(key)
	}
	return nil
}

func idemTimeName(at int64, key string) string {
	return metaIdemTime + string(binary.BigEndian.AppendUint64(nil, uint64(at))) + key
}

// nextApply returns a channel closed when the state machine next applies
// an entry.
func (f *fsm) nextApply() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.appliedCh
}

// waitApplied blocks until the state machine has applied index, or ctx ends.
func (f *fsm) waitApplied(ctx context.Context, index uint64) error {
	if f.applied.Load() >= index {
		return nil
	}
	if mustNotWait(ctx) {
		return errWouldBlock
	}
	for {
		ch := f.nextApply()
		if f.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for index %d (applied %d)", ctx.Err(), index, f.applied.Load())
		}
	}
}

// Snapshot syncs the database, so everything applied so far is durable
// before Raft truncates its log, and returns a live marker.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.syncDB(); err != nil {
		return nil, fmt.Errorf("node: partition %d: sync before snapshot: %w", f.part.ID(), err)
	}
	return &liveSnapshot{part: f.part.ID(), applied: f.part.State().Applied}, nil
}

// Restore replaces the partition's state with a snapshot from the leader.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	applied, live, rest, err := storage.ReadLiveMarker(rc)
	if err != nil {
		return err
	}
	if live {
		if have := f.part.State().Applied; have < applied {
			return fmt.Errorf("node: partition %d: local snapshot at %d is ahead of the stored state at %d", f.part.ID(), applied, have)
		}
		return nil
	}
	if err := f.part.Restore(rest); err != nil {
		return err
	}
	if err := f.idem.Load(f.part, metaIdemPfx); err != nil {
		return fmt.Errorf("node: partition %d: idempotency records: %w", f.part.ID(), err)
	}
	f.applied.Store(f.part.State().Applied)
	f.visible.Store(f.part.State().Applied)
	f.feed.reset(f.part.State().Applied)
	f.epoch.Store(0)
	if raw, ok, err := f.part.Meta(metaEpoch); err == nil && ok && len(raw) == 8 {
		f.epoch.Store(binary.BigEndian.Uint64(raw))
	}
	// Readers waiting for an index the snapshot covers need not wait for
	// the next command.
	f.notifyApplied()
	return nil
}

type liveSnapshot struct {
	part    uint32
	applied uint64
}

func (s *liveSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := storage.WriteLiveMarker(sink, s.part, s.applied); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *liveSnapshot) Release() {}
