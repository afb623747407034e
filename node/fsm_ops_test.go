package node

import (
	"testing"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

func TestFSMPutVersionIsLogIndex(t *testing.T) {
	e := newFSMEnv(t)
	r := e.apply(5, &peerv1.Command{ProposedAt: t0, Ops: []*peerv1.Op{
		putOp("a", "1"),
		{Kind: peerv1.Op_KIND_PUT, Key: []byte("b"), Value: []byte("2"), ExpireAt: t0 + 10, Flags: uint32(storage.FlagDirty)},
	}})
	if r.Index != 5 || r.Deduplicated || len(r.Ops) != 2 {
		t.Fatalf("result %v", r)
	}
	for i, op := range r.Ops {
		if !op.Ok || op.Version != 5 {
			t.Fatalf("op %d: %v, want ok at version 5", i, op)
		}
	}
	a, _ := e.entry("a")
	b, _ := e.entry("b")
	if a.Version != 5 || string(a.Value) != "1" || a.WrittenAt != t0 || a.ExpireAt != 0 || a.Dirty() {
		t.Fatalf("a = %+v", a)
	}
	if b.Version != 5 || b.ExpireAt != t0+10 || !b.Dirty() {
		t.Fatalf("b = %+v", b)
	}
	// Indexes need not be consecutive (configuration entries take some);
	// a rewrite takes the new index.
	if r := e.op(9, t0, putOp("a", "one")); r.Version != 9 {
		t.Fatalf("rewrite %v", r)
	}
	a, _ = e.entry("a")
	st := e.part.State()
	if a.Version != 9 || string(a.Value) != "one" || st.Applied != 9 || e.f.applied.Load() != 9 ||
		st.Keys != 2 || st.Dirty != 1 || st.Bytes != a.Size()+b.Size() {
		t.Fatalf("a = %+v, state %+v", a, st)
	}
	// A batch of commands: each gets its own index.
	out := e.f.ApplyBatch([]*raft.Log{
		cmdLog(t, 10, &peerv1.Command{ProposedAt: t0, Ops: []*peerv1.Op{putOp("c", "x")}}),
		cmdLog(t, 11, &peerv1.Command{ProposedAt: t0, Ops: []*peerv1.Op{putOp("c", "y")}}),
	})
	if out[0].(*peerv1.Result).Ops[0].Version != 10 || out[1].(*peerv1.Result).Ops[0].Version != 11 {
		t.Fatalf("batch results %v", out)
	}
	if c, _ := e.entry("c"); c.Version != 11 || string(c.Value) != "y" {
		t.Fatalf("c = %+v", c)
	}
}

func TestFSMDelete(t *testing.T) {
	e := newFSMEnv(t)
	e.op(1, t0, putOp("live", "v"))
	e.op(2, t0, &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: []byte("expired"), Value: []byte("v"), ExpireAt: t0 + 100})
	tests := []struct {
		key     string
		now     int64
		existed bool
	}{
		{"absent", t0, false},
		{"live", t0, true},
		{"live", t0, false}, // already deleted
		// Expired at proposed_at (expiry is inclusive): it did not exist
		// for the client, but it is removed all the same.
		{"expired", t0 + 100, false},
	}
	for i, tt := range tests {
		r := e.op(uint64(10+i), tt.now, &peerv1.Op{Kind: peerv1.Op_KIND_DELETE, Key: []byte(tt.key)})
		if r.Ok != tt.existed {
			t.Errorf("delete %q at %d: existed = %v, want %v", tt.key, tt.now, r.Ok, tt.existed)
		}
		if _, ok := e.entry(tt.key); ok {
			t.Errorf("%q still stored after delete", tt.key)
		}
	}
	if st := e.part.State(); st.Keys != 0 || st.Bytes != 0 {
		t.Fatalf("state after deleting everything: %+v", st)
	}
}

func TestFSMCompareAndSet(t *testing.T) {
	byVersion := func(v uint64) *peerv1.Op {
		return &peerv1.Op{Kind: peerv1.Op_KIND_CAS, Value: []byte("new"), Expect: &peerv1.Op_ExpectedVersion{ExpectedVersion: v}}
	}
	byValue := func(v string) *peerv1.Op {
		return &peerv1.Op{Kind: peerv1.Op_KIND_CAS, Value: []byte("new"), Expect: &peerv1.Op_ExpectedValue{ExpectedValue: []byte(v)}}
	}
	absent := &peerv1.Op{Kind: peerv1.Op_KIND_CAS, Value: []byte("new"), Expect: &peerv1.Op_ExpectAbsent{ExpectAbsent: true}}
	// The key is put at index 1 with value "old"; in the expired state it
	// expires at t0 and the CAS is proposed at t0.
	tests := []struct {
		name    string
		state   string // "absent", "live" or "expired"
		op      *peerv1.Op
		swapped bool
		version uint64 // in the result
	}{
		{"version match", "live", byVersion(1), true, 10},
		{"version mismatch", "live", byVersion(2), false, 1},
		{"version of absent", "absent", byVersion(1), false, 0},
		{"version of expired", "expired", byVersion(1), false, 0},
		{"value match", "live", byValue("old"), true, 10},
		{"value mismatch", "live", byValue("other"), false, 1},
		{"empty value of absent", "absent", byValue(""), false, 0},
		{"value of expired", "expired", byValue("old"), false, 0},
		{"absent when absent", "absent", absent, true, 10},
		{"absent when live", "live", absent, false, 1},
		{"absent when expired", "expired", absent, true, 10},
		{"no expectation", "live", &peerv1.Op{Kind: peerv1.Op_KIND_CAS, Value: []byte("new")}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFSMEnv(t)
			switch tt.state {
			case "live":
				e.op(1, t0, putOp("k", "old"))
			case "expired":
				e.op(1, t0-10, &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: []byte("k"), Value: []byte("old"), ExpireAt: t0})
			}
			op := proto.Clone(tt.op).(*peerv1.Op)
			op.Key = []byte("k")
			op.ExpireAt = t0 + 50
			r := e.op(10, t0, op)
			if r.Ok != tt.swapped || r.Version != tt.version {
				t.Fatalf("cas = %v, want swapped %v version %d", r, tt.swapped, tt.version)
			}
			got, ok := e.entry("k")
			switch {
			case tt.swapped && (!ok || got.Version != 10 || string(got.Value) != "new" || got.ExpireAt != t0+50):
				t.Fatalf("after swap: %+v, %v", got, ok)
			case !tt.swapped && tt.state == "absent" && ok:
				t.Fatalf("failed cas created %+v", got)
			case !tt.swapped && tt.state != "absent" && (!ok || got.Version != 1 || string(got.Value) != "old"):
				t.Fatalf("failed cas changed the entry: %+v, %v", got, ok)
			}
		})
	}
}

func TestFSMExpire(t *testing.T) {
	expire := func(key string, version uint64) *peerv1.Op {
		return &peerv1.Op{Kind: peerv1.Op_KIND_EXPIRE, Key: []byte(key), IfVersion: version}
	}
	e := newFSMEnv(t)
	e.op(1, t0, &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: []byte("k"), Value: []byte("v"), ExpireAt: t0 + 100})
	e.op(2, t0, &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: []byte("dirty"), Value: []byte("v"), ExpireAt: t0 + 100, Flags: uint32(storage.FlagDirty)})
	e.op(3, t0, putOp("forever", "v"))
	tests := []struct {
		name    string
		now     int64
		op      *peerv1.Op
		removed bool
	}{
		{"absent", t0 + 200, expire("absent", 1), false},
		{"not yet expired", t0 + 99, expire("k", 1), false},
		{"wrong version", t0 + 200, expire("k", 7), false},
		{"dirty", t0 + 200, expire("dirty", 2), false},
		{"no expiry", t0 + 200, expire("forever", 3), false},
		{"expired at proposed_at", t0 + 100, expire("k", 1), true},
		{"already removed", t0 + 200, expire("k", 1), false},
	}
	for i, tt := range tests {
		before := e.f.expirations.Load()
		r := e.op(uint64(10+i), tt.now, tt.op)
		_, stored := e.entry(string(tt.op.Key))
		if r.Ok != tt.removed || (tt.removed && stored) || e.f.expirations.Load()-before != map[bool]uint64{true: 1}[tt.removed] {
			t.Errorf("%s: result %v, stored %v, expirations +%d; want removed %v", tt.name, r, stored, e.f.expirations.Load()-before, tt.removed)
		}
	}
	for _, k := range []string{"dirty", "forever"} {
		if _, ok := e.entry(k); !ok {
			t.Errorf("%q was removed", k)
		}
	}
}

func TestFSMEvict(t *testing.T) {
	evict := func(key string, version uint64) *peerv1.Op {
		return &peerv1.Op{Kind: peerv1.Op_KIND_EVICT, Key: []byte(key), IfVersion: version}
	}
	e := newFSMEnv(t)
	e.op(1, t0, putOp("clean", "v"))
	e.op(2, t0, &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: []byte("dirty"), Value: []byte("v"), Flags: uint32(storage.FlagDirty)})
	e.op(3, t0, putOp("rewritten", "v1"))
	// The victim was chosen at version 3; the key is written again before
	// the eviction commits.
	e.op(4, t0, putOp("rewritten", "v2"))
	tests := []struct {
		name    string
		op      *peerv1.Op
		removed bool
	}{
		{"absent", evict("absent", 1), false},
		{"dirty", evict("dirty", 2), false},
		{"rewritten", evict("rewritten", 3), false},
		{"clean", evict("clean", 1), true},
		{"already evicted", evict("clean", 1), false},
	}
	for i, tt := range tests {
		before := e.f.evictions.Load()
		r := e.op(uint64(10+i), t0, tt.op)
		_, stored := e.entry(string(tt.op.Key))
		if r.Ok != tt.removed || (tt.removed && stored) || e.f.evictions.Load()-before != map[bool]uint64{true: 1}[tt.removed] {
			t.Errorf("%s: result %v, stored %v, evictions +%d; want removed %v", tt.name, r, stored, e.f.evictions.Load()-before, tt.removed)
		}
	}
	if got, ok := e.entry("rewritten"); !ok || got.Version != 4 || string(got.Value) != "v2" {
		t.Errorf("rewritten = %+v, %v", got, ok)
	}
	if got, ok := e.entry("dirty"); !ok || !got.Dirty() {
		t.Errorf("dirty = %+v, %v", got, ok)
	}
	if st := e.part.State(); st.Keys != 2 || st.Dirty != 1 {
		t.Errorf("state %+v", st)
	}
}
