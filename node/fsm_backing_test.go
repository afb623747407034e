package node

import (
	"fmt"
	"testing"
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
)

// lookup returns the stored entry of key as it is, tombstones included.
func (e *fsmEnv) lookup(key string) (storage.Entry, bool) {
	e.tb.Helper()
	got, ok, err := e.part.Lookup([]byte(key))
	if err != nil {
		e.tb.Fatal(err)
	}
	return got, ok
}

func fillOp(key, value string, version uint64, started int64) *peerv1.Op {
	return &peerv1.Op{Kind: peerv1.Op_KIND_FILL, Key: []byte(key), Value: []byte(value), IfVersion: version, FillStartedAt: started}
}

// TestFSMFillFence: a refill stores a database row only if nothing newer
// happened to the key after its load began: an invalidation, a write, a
// delete, or a removal of a newer version all fence it out.
func TestFSMFillFence(t *testing.T) {
	e := newFSMEnv(t)
	now := time.Now().UnixNano()
	// Absent key: the fill lands at the row's version.
	if r := e.op(1, now, fillOp("a", "db1", 1, now)); !r.Ok || r.Version != 1 {
		t.Fatalf("fill of an absent key = %v, want stored at version 1", r)
	}
	// A live entry is never replaced by a fill, even an equal one.
	if r := e.op(2, now, fillOp("a", "db1b", 1, now)); r.Ok {
		t.Fatalf("fill over a live entry = %v, want refused", r)
	}
	// Invalidation at index 3 fences fills of older rows (the stale set
	// race); the row the invalidating write then put in the database (at
	// version 3) may fill.
	e.op(3, now, &peerv1.Op{Kind: peerv1.Op_KIND_INVALIDATE, Key: []byte("a"), ExpireAt: now + int64(fenceTTL)})
	if _, ok := e.entry("a"); ok {
		t.Fatal("an invalidated key still reads")
	}
	if r := e.op(4, now, fillOp("a", "old", 1, now)); r.Ok {
		t.Fatalf("fill of a row older than the fence = %v, want refused", r)
	}
	if r := e.op(5, now, fillOp("a", "new", 3, now)); !r.Ok {
		t.Fatalf("fill of the fenced version = %v, want stored", r)
	}
	if got, ok := e.entry("a"); !ok || string(got.Value) != "new" || got.Version != 3 {
		t.Fatalf("after fill: %+v %v, want new at version 3", got, ok)
	}
	// Eviction with a fence keeps the evicted version as a tombstone: an
	// older row cannot come back, the same row can.
	e.op(6, now, &peerv1.Op{Kind: peerv1.Op_KIND_EVICT, Key: []byte("a"), IfVersion: 3, ExpireAt: now + int64(fenceTTL)})
	if tomb, ok := e.lookup("a"); !ok || !tomb.Tombstone() || tomb.Version != 3 {
		t.Fatalf("after fenced eviction: %+v %v, want a tombstone at version 3", tomb, ok)
	}
	if r := e.op(7, now, fillOp("a", "old", 1, now)); r.Ok {
		t.Fatalf("fill of an older row after eviction = %v, want refused", r)
	}
	if r := e.op(8, now, fillOp("a", "new", 3, now)); !r.Ok {
		t.Fatalf("fill of the evicted version = %v, want stored", r)
	}
	// A fill whose load began too long ago is refused.
	if r := e.op(9, now, fillOp("b", "late", 1, now-int64(fillMaxAge)-1)); r.Ok {
		t.Fatalf("fill older than fillMaxAge = %v, want refused", r)
	}
	// Negative caching: a tombstone fill reads as absent.
	if r := e.op(10, now, &peerv1.Op{Kind: peerv1.Op_KIND_FILL, Key: []byte("c"), IfVersion: 0, FillStartedAt: now,
		Flags: uint32(storage.FlagTombstone), ExpireAt: now + int64(time.Second)}); !r.Ok {
		t.Fatalf("negative fill = %v, want stored", r)
	}
	if _, ok := e.entry("c"); ok {
		t.Fatal("a negative fill reads as present")
	}
}

// TestFSMFillFenceBroken: every fill the fence refuses is stored once the
// fence is broken (Hooks.BreakRefillFence), over a newer entry, a
// dirty one (whose write-back is then lost) or a newer fence, and however
// old its load.
func TestFSMFillFenceBroken(t *testing.T) {
	now := time.Now().UnixNano()
	tests := []struct {
		name   string
		before *peerv1.Op // applied at index 5, if set
		fill   *peerv1.Op // of "k", the row "old" at version 1, applied at index 6
	}{
		{"newer entry", putOp("k", "new"), fillOp("k", "old", 1, now)},
		{"dirty entry", &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: []byte("k"), Value: []byte("new"), Flags: uint32(storage.FlagDirty)},
			fillOp("k", "old", 1, now)},
		{"newer fence", &peerv1.Op{Kind: peerv1.Op_KIND_INVALIDATE, Key: []byte("k"), ExpireAt: now + int64(fenceTTL)},
			fillOp("k", "old", 1, now)},
		{"load too old", nil, fillOp("k", "old", 1, now-int64(fillMaxAge)-1)},
		{"load time unknown", nil, fillOp("k", "old", 1, 0)},
	}
	for _, tt := range tests {
		for _, broken := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/broken=%v", tt.name, broken), func(t *testing.T) {
				e := newFSMEnv(t)
				e.f.faults = new(faults)
				e.f.faults.brokenRefillFence.Store(broken)
				if tt.before != nil {
					e.op(5, now, tt.before)
				}
				r := e.op(6, now, tt.fill)
				got, ok := e.lookup("k")
				stored := ok && string(got.Value) == "old" && got.Version == 1 && !got.Dirty()
				if r.Ok != broken || stored != broken {
					t.Fatalf("fill = %v, then the key holds %+v (found %v); want it stored: %v", r, got, ok, broken)
				}
				if broken && len(e.part.Dirty(10)) != 0 {
					t.Fatalf("dirty index %v after the fill, want empty", e.part.Dirty(10))
				}
			})
		}
	}
}

// TestFSMWriteBack: dirty values and dirty deletes stay until the flusher
// marks exactly the version it wrote clean; they are never evicted or
// expired meanwhile.
func TestFSMWriteBack(t *testing.T) {
	e := newFSMEnv(t)
	now := time.Now().UnixNano()
	dirty := uint32(storage.FlagDirty)
	e.op(1, now, &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: []byte("k"), Value: []byte("v1"), Flags: dirty, ExpireAt: now - 1})
	if r := e.op(2, now, &peerv1.Op{Kind: peerv1.Op_KIND_EVICT, Key: []byte("k"), IfVersion: 1}); r.Ok {
		t.Fatal("a dirty entry was evicted")
	}
	if r := e.op(3, now, &peerv1.Op{Kind: peerv1.Op_KIND_EXPIRE, Key: []byte("k"), IfVersion: 1}); r.Ok {
		t.Fatal("a dirty entry expired")
	}
	e.op(4, now, &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: []byte("k"), Value: []byte("v2"), Flags: dirty})
	if got := e.part.Dirty(10); len(got) != 1 || got[0].Version != 4 {
		t.Fatalf("dirty index %v, want k at version 4", got)
	}
	// The flusher wrote version 1 only: k stays dirty at version 4.
	if r := e.op(5, now, &peerv1.Op{Kind: peerv1.Op_KIND_MARK_CLEAN, Key: []byte("k"), IfVersion: 1}); r.Ok {
		t.Fatal("mark-clean of an older version cleaned the newer one")
	}
	if r := e.op(6, now, &peerv1.Op{Kind: peerv1.Op_KIND_MARK_CLEAN, Key: []byte("k"), IfVersion: 4}); !r.Ok {
		t.Fatal("mark-clean of the current version failed")
	}
	if got, ok := e.entry("k"); !ok || got.Dirty() || string(got.Value) != "v2" {
		t.Fatalf("after mark-clean: %+v %v", got, ok)
	}
	// A write-back delete is a dirty tombstone until flushed, then a fence.
	if r := e.op(7, now, &peerv1.Op{Kind: peerv1.Op_KIND_DELETE, Key: []byte("k"), Flags: dirty | uint32(storage.FlagTombstone)}); !r.Ok || r.Version != 7 {
		t.Fatalf("write-back delete = %v, want ok at version 7", r)
	}
	if _, ok := e.entry("k"); ok {
		t.Fatal("a write-back delete still reads")
	}
	if got := e.part.Dirty(10); len(got) != 1 || got[0].Version != 7 {
		t.Fatalf("dirty index %v, want the delete at version 7", got)
	}
	e.op(8, now, &peerv1.Op{Kind: peerv1.Op_KIND_MARK_CLEAN, Key: []byte("k"), IfVersion: 7, ExpireAt: now + int64(fenceTTL)})
	if tomb, ok := e.lookup("k"); !ok || !tomb.Tombstone() || tomb.Dirty() || tomb.Version != 7 {
		t.Fatalf("after flushing the delete: %+v %v, want a clean fence at version 7", tomb, ok)
	}
	if got := e.part.Dirty(10); len(got) != 0 {
		t.Fatalf("dirty index %v, want empty", got)
	}
}
