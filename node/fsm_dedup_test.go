package node

import (
	"fmt"
	"testing"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"google.golang.org/protobuf/proto"
)

func TestFSMIdempotency(t *testing.T) {
	e := newFSMEnv(t)
	const key = "01890a5d-ac96-774b-bcce-b302099a8057"
	first := e.apply(1, &peerv1.Command{ProposedAt: t0, IdempotencyKey: key, Ops: []*peerv1.Op{putOp("k", "v1")}})
	if first.Deduplicated || first.Index != 1 || first.Ops[0].Version != 1 {
		t.Fatalf("first = %v", first)
	}
	before := dump(t, e.part)
	// The retry carries other ops (a client bug or a changed victim list):
	// it still gets the first result and changes nothing.
	retry := e.apply(2, &peerv1.Command{ProposedAt: t0 + 1, IdempotencyKey: key,
		Ops: []*peerv1.Op{putOp("k", "v2"), putOp("other", "x")}})
	if !retry.Deduplicated {
		t.Fatalf("retry not deduplicated: %v", retry)
	}
	retry.Deduplicated = false
	if !proto.Equal(retry, first) {
		t.Fatalf("retry = %v, want the first result %v", retry, first)
	}
	after := dump(t, e.part)
	before.state.Applied = 2 // only the applied index moves
	checkSame(t, "after retry", after, before)
}

func TestFSMDedupAging(t *testing.T) {
	e := newFSMEnv(t)
	const (
		keyA = "01890a5d-ac96-774b-bcce-b302099a8057"
		keyB = "01890a5d-ac96-774b-bcce-b302099a8058"
		keyC = "01890a5d-ac96-774b-bcce-b302099a8059"
		keyD = "01890a5d-ac96-774b-bcce-b302099a805a"
	)
	put := func(index uint64, at int64, key, value string) *peerv1.Result {
		t.Helper()
		return e.apply(index, &peerv1.Command{ProposedAt: at, IdempotencyKey: key, Ops: []*peerv1.Op{putOp("k", value)}})
	}
	remembered := func(key string) bool {
		t.Helper()
		_, ok, err := e.part.Meta(metaIdemPfx + key)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	put(1, t0, keyA, "a")
	// Exactly one window later A is still remembered: records go once
	// they are older than the window.
	put(2, t0+int64(testWindow), keyB, "b")
	if !remembered(keyA) {
		t.Fatal("A aged out at the window's edge")
	}
	if r := put(3, t0+int64(testWindow), keyA, "a"); !r.Deduplicated || r.Index != 1 {
		t.Fatalf("A retried within the window: %v", r)
	}
	// Aging is judged by the proposing leader's clock in the command, not
	// by this machine's, and done at every idemPruneEvery-th index only,
	// the same on every replica.
	put(4, t0+int64(testWindow)+1, keyC, "c")
	if !remembered(keyA) {
		t.Fatal("A aged out at an index that does not prune")
	}
	put(idemPruneEvery, t0+int64(testWindow)+1, keyD, "d")
	if remembered(keyA) || !remembered(keyB) || !remembered(keyC) {
		t.Fatalf("after aging: A %v B %v C %v, want only A gone", remembered(keyA), remembered(keyB), remembered(keyC))
	}
	if names, err := e.part.MetaScan(metaIdemTime, 100); err != nil || len(names) != 3 {
		t.Fatalf("time index has %d records (%v), want 3", len(names), err)
	}
	// A re-sent A is now a new request.
	const next = idemPruneEvery + 1
	r := put(next, t0+int64(testWindow)+2, keyA, "a2")
	if r.Deduplicated || r.Index != next || r.Ops[0].Version != next {
		t.Fatalf("A after aging: %v", r)
	}
	if got, _ := e.entry("k"); got.Version != next || string(got.Value) != "a2" {
		t.Fatalf("k = %+v", got)
	}
}

// TestFSMIdemSetFollowsRecords: the in-memory hint of idempotency keys
// holds exactly the keys with a record, through writes, aging and restart,
// and a retry after a restart is still deduplicated.
func TestFSMIdemSetFollowsRecords(t *testing.T) {
	e := newFSMEnv(t)
	check := func(when string, want int) {
		t.Helper()
		records := 0
		if err := e.part.MetaNames(metaIdemPfx, func(name []byte) error {
			records++
			if !e.f.idem.MayHave(string(name[len(metaIdemPfx):])) {
				t.Errorf("%s: record %q missing from the set", when, name)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		held := e.f.idem.Len()
		if records != want || held != want {
			t.Errorf("%s: %d records, %d keys in the set; want %d of each", when, records, held, want)
		}
	}
	key := func(i int) string { return fmt.Sprintf("01890a5d-ac96-774b-bcce-%012x", i) }
	for i := 1; i < idemPruneEvery; i++ {
		e.apply(uint64(i), &peerv1.Command{ProposedAt: t0, IdempotencyKey: key(i), Ops: []*peerv1.Op{putOp("k", "v")}})
	}
	check("after writes", idemPruneEvery-1)
	// The pruning index, a window later, ages out every earlier record.
	e.apply(idemPruneEvery, &peerv1.Command{ProposedAt: t0 + int64(testWindow) + 1, IdempotencyKey: key(1000), Ops: []*peerv1.Op{putOp("k", "w")}})
	check("after aging", 1)
	e.restart()
	check("after restart", 1)
	if r := e.apply(idemPruneEvery+1, &peerv1.Command{ProposedAt: t0 + int64(testWindow) + 2, IdempotencyKey: key(1000), Ops: []*peerv1.Op{putOp("k", "w")}}); !r.Deduplicated {
		t.Fatalf("retry after restart: %v; want deduplicated", r)
	}
}
