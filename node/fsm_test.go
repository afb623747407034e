package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

const (
	testPartition = 3
	testWindow    = time.Minute
	// t0 is the proposing leader's clock in the tests, far from zero so that
	// expiry and dedup windows can go either way.
	t0 = int64(1_700_000_000_000_000_000)
)

// fsmEnv is a state machine over one partition of a real Pebble database on
// an in-memory filesystem.
type fsmEnv struct {
	tb   testing.TB
	fs   vfs.FS
	db   *storage.DB
	part *storage.Partition
	f    *fsm
}

func newFSMEnv(tb testing.TB) *fsmEnv {
	tb.Helper()
	e := &fsmEnv{tb: tb, fs: vfs.NewMem()}
	e.open()
	return e
}

// open opens (or reopens, after close) the database and a new state
// machine over the partition, as a node does on start.
func (e *fsmEnv) open() {
	e.tb.Helper()
	db, err := storage.Open(storage.Config{Dir: "db", FS: e.fs})
	if err != nil {
		e.tb.Fatal(err)
	}
	e.tb.Cleanup(func() { db.Close() })
	part, err := db.Partition(testPartition)
	if err != nil {
		e.tb.Fatal(err)
	}
	e.db, e.part = db, part
	if e.f, err = newFSM(part, db.Sync, testWindow, 0); err != nil {
		e.tb.Fatal(err)
	}
}

// restart closes the database and opens it again with a new state machine.
func (e *fsmEnv) restart() {
	e.tb.Helper()
	if err := e.db.Close(); err != nil {
		e.tb.Fatal(err)
	}
	e.open()
}

func cmdLog(tb testing.TB, index uint64, cmd *peerv1.Command) *raft.Log {
	tb.Helper()
	data, err := proto.Marshal(cmd)
	if err != nil {
		tb.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

// apply applies one command at index and returns its result.
func (e *fsmEnv) apply(index uint64, cmd *peerv1.Command) *peerv1.Result {
	e.tb.Helper()
	switch r := e.f.Apply(cmdLog(e.tb, index, cmd)).(type) {
	case *peerv1.Result:
		return r
	default:
		e.tb.Fatalf("apply index %d: got %T %v", index, r, r)
		return nil
	}
}

// op applies a command of one op proposed at now and returns its result.
func (e *fsmEnv) op(index uint64, now int64, op *peerv1.Op) *peerv1.OpResult {
	e.tb.Helper()
	return e.apply(index, &peerv1.Command{ProposedAt: now, Ops: []*peerv1.Op{op}}).Ops[0]
}

func putOp(key, value string) *peerv1.Op {
	return &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: []byte(key), Value: []byte(value)}
}

// entry returns the stored entry of key, expired or not.
func (e *fsmEnv) entry(key string) (storage.Entry, bool) {
	e.tb.Helper()
	got, ok, err := e.part.Get([]byte(key), 0)
	if err != nil {
		e.tb.Fatal(err)
	}
	return got, ok
}

// fsmDump is the whole stored state of a partition.
type fsmDump struct {
	entries []storage.Entry
	meta    [][2][]byte
	state   storage.State
}

func dump(tb testing.TB, p *storage.Partition) fsmDump {
	tb.Helper()
	entries, _, err := p.Scan(storage.ScanOptions{Limit: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	all, err := p.MetaScan("", 1<<20)
	if err != nil {
		tb.Fatal(err)
	}
	// The state record is compared decoded, as state.
	var meta [][2][]byte
	for _, kv := range all {
		if string(kv[0]) != "state" {
			meta = append(meta, kv)
		}
	}
	return fsmDump{entries: entries, meta: meta, state: p.State()}
}

func checkSame(tb testing.TB, what string, got, want fsmDump) {
	tb.Helper()
	if got.state != want.state {
		tb.Errorf("%s: state %+v, want %+v", what, got.state, want.state)
	}
	eq := func(a, b storage.Entry) bool {
		return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && a.Version == b.Version &&
			a.ExpireAt == b.ExpireAt && a.WrittenAt == b.WrittenAt && a.Flags == b.Flags
	}
	if !slices.EqualFunc(got.entries, want.entries, eq) {
		tb.Errorf("%s: entries %+v, want %+v", what, got.entries, want.entries)
	}
	if !slices.EqualFunc(got.meta, want.meta, func(a, b [2][]byte) bool { return bytes.Equal(a[0], b[0]) && bytes.Equal(a[1], b[1]) }) {
		tb.Errorf("%s: meta %q, want %q", what, got.meta, want.meta)
	}
}

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

func TestFSMLeaderNoop(t *testing.T) {
	e := newFSMEnv(t)
	noop := func(index, term, epoch uint64) {
		t.Helper()
		l := cmdLog(t, index, &peerv1.Command{ProposedAt: t0, Ops: []*peerv1.Op{{Kind: peerv1.Op_KIND_LEADER_NOOP, Epoch: epoch}}})
		l.Term = term
		if r, ok := e.f.Apply(l).(*peerv1.Result); !ok || !r.Ops[0].Ok {
			t.Fatalf("noop = %v", r)
		}
	}
	noop(1, 2, 42)
	if e.f.epoch.Load() != 42 || e.f.noopTerm.Load() != 2 {
		t.Fatalf("epoch %d noop term %d", e.f.epoch.Load(), e.f.noopTerm.Load())
	}
	// A later leader keeps the partition's epoch.
	noop(2, 3, 7)
	if e.f.epoch.Load() != 42 || e.f.noopTerm.Load() != 3 {
		t.Fatalf("epoch %d noop term %d", e.f.epoch.Load(), e.f.noopTerm.Load())
	}
	if raw, ok, err := e.part.Meta(metaEpoch); err != nil || !ok || !bytes.Equal(raw, []byte{0, 0, 0, 0, 0, 0, 0, 42}) {
		t.Fatalf("stored epoch %x, %v, %v", raw, ok, err)
	}
	// Unknown op kinds (from a newer version) are skipped.
	if r := e.op(3, t0, &peerv1.Op{Kind: 99, Key: []byte("k")}); r.Ok {
		t.Fatalf("unknown kind: %v", r)
	}
}

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

// A restarted node replays the Raft log after its last snapshot; commands
// at or below the durable applied index are already in storage and must not
// be applied again.
func TestFSMReplayIsNoop(t *testing.T) {
	e := newFSMEnv(t)
	logs := []*raft.Log{
		cmdLog(t, 1, &peerv1.Command{ProposedAt: t0, Ops: []*peerv1.Op{putOp("k", "v1"), putOp("gone", "x")}}),
		cmdLog(t, 2, &peerv1.Command{ProposedAt: t0, Ops: []*peerv1.Op{{Kind: peerv1.Op_KIND_DELETE, Key: []byte("k")}}}),
		cmdLog(t, 3, &peerv1.Command{ProposedAt: t0, IdempotencyKey: "01890a5d-ac96-774b-bcce-b302099a8057",
			Ops: []*peerv1.Op{putOp("k", "v3")}}),
		{Index: 4, Term: 1, Type: raft.LogConfiguration, Data: []byte("configuration")},
		cmdLog(t, 5, &peerv1.Command{ProposedAt: t0, Ops: []*peerv1.Op{{Kind: peerv1.Op_KIND_EVICT, Key: []byte("gone"), IfVersion: 1}}}),
	}
	for _, l := range logs {
		e.f.ApplyBatch([]*raft.Log{l})
	}
	want := dump(t, e.part)
	if want.state.Applied != 5 || want.state.Keys != 1 {
		t.Fatalf("state %+v", want.state)
	}

	e.restart()
	if got := e.f.applied.Load(); got != 5 {
		t.Fatalf("applied after restart = %d, want 5", got)
	}
	for i, out := range e.f.ApplyBatch(logs) {
		if out != nil {
			t.Errorf("replayed log %d returned %v", logs[i].Index, out)
		}
	}
	checkSame(t, "after replay", dump(t, e.part), want)
	if e.f.evictions.Load() != 0 {
		t.Errorf("replay counted %d evictions", e.f.evictions.Load())
	}

	// A batch that straddles the durable index applies only what is new.
	out := e.f.ApplyBatch([]*raft.Log{logs[3], logs[4],
		cmdLog(t, 6, &peerv1.Command{ProposedAt: t0, Ops: []*peerv1.Op{putOp("k", "v6")}})})
	if out[0] != nil || out[1] != nil || out[2].(*peerv1.Result).Ops[0].Version != 6 {
		t.Fatalf("straddling batch: %v", out)
	}
	if got, _ := e.entry("k"); got.Version != 6 || e.part.State().Applied != 6 {
		t.Fatalf("k = %+v, state %+v", got, e.part.State())
	}
}

func TestFSMNonCommandEntries(t *testing.T) {
	e := newFSMEnv(t)
	e.op(1, t0, putOp("k", "v"))
	want := dump(t, e.part)
	out := e.f.ApplyBatch([]*raft.Log{
		{Index: 2, Term: 1, Type: raft.LogConfiguration, Data: []byte("not a command")},
		{Index: 3, Term: 1, Type: raft.LogConfiguration},
	})
	if out[0] != nil || out[1] != nil {
		t.Fatalf("configuration entries returned %v", out)
	}
	if e.f.applied.Load() != 3 {
		t.Fatalf("applied = %d, want 3", e.f.applied.Load())
	}
	want.state.Applied = 3
	checkSame(t, "after configuration entries", dump(t, e.part), want)

	// A command that does not decode is reported to its proposer and
	// skipped; applied still moves past it.
	out = e.f.ApplyBatch([]*raft.Log{{Index: 4, Term: 1, Type: raft.LogCommand, Data: []byte{0xff, 0xff}}})
	if err, ok := out[0].(error); !ok || err == nil {
		t.Fatalf("undecodable command returned %v", out[0])
	}
	want.state.Applied = 4
	checkSame(t, "after undecodable command", dump(t, e.part), want)
}

func TestFSMWaitApplied(t *testing.T) {
	e := newFSMEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.f.waitApplied(ctx, 3) }()

	e.op(1, t0, putOp("k", "v"))
	e.f.ApplyBatch([]*raft.Log{{Index: 2, Term: 1, Type: raft.LogConfiguration}})
	// Not there yet: a wait that cannot block reports its context.
	canceled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	if err := e.f.waitApplied(canceled, 3); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait for 3 at 2 with a canceled ctx = %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("wait for 3 returned at 2: %v", err)
	default:
	}

	e.op(3, t0, putOp("k", "v"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wait for 3 = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("wait for 3 did not return after index 3 was applied")
	}
	if err := e.f.waitApplied(canceled, 2); err != nil {
		t.Fatalf("wait for an applied index = %v", err)
	}

	// A waiter blocked on a future index returns when its ctx ends.
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	if err := e.f.waitApplied(short, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait for 100 = %v, want DeadlineExceeded", err)
	}
	waitCtx, cancelWait := context.WithCancel(context.Background())
	go func() { done <- e.f.waitApplied(waitCtx, 100) }()
	cancelWait()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled wait = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("canceled wait did not return")
	}
}

// fillFSM applies commands that leave entries of every kind, idempotency
// records and an epoch, and returns the last index.
func fillFSM(tb testing.TB, e *fsmEnv) uint64 {
	tb.Helper()
	index := uint64(0)
	next := func() uint64 { index++; return index }
	noop := cmdLog(tb, next(), &peerv1.Command{ProposedAt: t0, Ops: []*peerv1.Op{{Kind: peerv1.Op_KIND_LEADER_NOOP, Epoch: 42}}})
	e.f.Apply(noop)
	for i := range 40 {
		e.op(next(), t0, putOp(fmt.Sprintf("key-%02d", i), fmt.Sprint(i)))
	}
	e.op(next(), t0, &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: []byte("dirty"), Value: []byte("d"), Flags: uint32(storage.FlagDirty)})
	e.op(next(), t0, &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: []byte("expires"), Value: []byte("e"), ExpireAt: t0 + 1})
	e.op(next(), t0, &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: []byte("big"), Value: bytes.Repeat([]byte("b"), 300<<10)})
	e.op(next(), t0, &peerv1.Op{Kind: peerv1.Op_KIND_DELETE, Key: []byte("key-07")})
	e.apply(next(), &peerv1.Command{ProposedAt: t0, IdempotencyKey: "01890a5d-ac96-774b-bcce-b302099a8057", Ops: []*peerv1.Op{putOp("idem", "i")}})
	return index
}

// snapshotTo persists f's snapshot into a snapshot store over the same
// partition, as Raft does, and returns the store and the snapshot's id.
func snapshotTo(tb testing.TB, e *fsmEnv, index uint64) (*storage.SnapshotStore, string) {
	tb.Helper()
	store, err := e.db.SnapshotStore(testPartition, e.part, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	snap, err := e.f.Snapshot()
	if err != nil {
		tb.Fatal(err)
	}
	defer snap.Release()
	sink, err := store.Create(1, index, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := snap.Persist(sink); err != nil {
		tb.Fatal(err)
	}
	return store, sink.ID()
}

func TestFSMSnapshotRestore(t *testing.T) {
	src := newFSMEnv(t)
	last := fillFSM(t, src)
	want := dump(t, src.part)
	if want.state.Applied != last {
		t.Fatalf("source applied %d, want %d", want.state.Applied, last)
	}
	store, id := snapshotTo(t, src, last)
	metas, err := store.List()
	if err != nil || len(metas) != 1 || metas[0].ID != id || metas[0].Index != last {
		t.Fatalf("list = %v, %v", metas, err)
	}

	// The snapshot on disk is a live marker; Open expands it into a full
	// snapshot of the partition, as Raft sends it to a follower.
	meta, rc, err := store.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	full, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Size != int64(len(full)) || len(full) < 300<<10 {
		t.Fatalf("opened snapshot: meta size %d, read %d bytes", meta.Size, len(full))
	}
	if _, live, _, err := storage.ReadLiveMarker(bytes.NewReader(full)); err != nil || live {
		t.Fatalf("opened snapshot is a live marker (%v, %v)", live, err)
	}

	// A fresh node (another database) restores it.
	dst := newFSMEnv(t)
	dst.op(1, t0, putOp("stale", "replaced by the snapshot"))
	waited := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { waited <- dst.f.waitApplied(ctx, last) }()
	if err := dst.f.Restore(io.NopCloser(bytes.NewReader(full))); err != nil {
		t.Fatal(err)
	}
	checkSame(t, "restored", dump(t, dst.part), want)
	if dst.f.applied.Load() != last || dst.f.epoch.Load() != 42 {
		t.Fatalf("restored fsm: applied %d epoch %d, want %d and 42", dst.f.applied.Load(), dst.f.epoch.Load(), last)
	}
	// A reader waiting for an index the snapshot covers is released.
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("wait for %d = %v", last, err)
		}
	case <-ctx.Done():
		t.Fatalf("wait for %d not released by the restore", last)
	}
	// The idempotency records came along: a retry is deduplicated.
	r := dst.apply(last+1, &peerv1.Command{ProposedAt: t0, IdempotencyKey: "01890a5d-ac96-774b-bcce-b302099a8057",
		Ops: []*peerv1.Op{putOp("idem", "again")}})
	if !r.Deduplicated || r.Index != last {
		t.Fatalf("retry after restore: %v", r)
	}
	// Logs the snapshot covers are no-ops on the restored state machine.
	if out := dst.f.ApplyBatch([]*raft.Log{cmdLog(t, last, &peerv1.Command{Ops: []*peerv1.Op{putOp("idem", "x")}})}); out[0] != nil {
		t.Fatalf("log covered by the snapshot applied: %v", out[0])
	}
}

func TestFSMRestoreLiveMarker(t *testing.T) {
	e := newFSMEnv(t)
	last := fillFSM(t, e)
	want := dump(t, e.part)
	marker := func(applied uint64) io.ReadCloser {
		var b bytes.Buffer
		if err := storage.WriteLiveMarker(&b, testPartition, applied); err != nil {
			t.Fatal(err)
		}
		return io.NopCloser(&b)
	}
	// A live marker stands for data already in this node's Pebble: at or
	// below the stored state it restores nothing.
	for _, applied := range []uint64{1, last} {
		if err := e.f.Restore(marker(applied)); err != nil {
			t.Fatalf("live marker at %d: %v", applied, err)
		}
		checkSame(t, fmt.Sprintf("after live marker at %d", applied), dump(t, e.part), want)
	}
	// One newer than the local state means the data is missing.
	if err := e.f.Restore(marker(last + 1)); err == nil {
		t.Fatalf("live marker at %d restored over state at %d", last+1, last)
	}
	checkSame(t, "after rejected live marker", dump(t, e.part), want)
	if e.f.applied.Load() != last {
		t.Fatalf("applied = %d, want %d", e.f.applied.Load(), last)
	}

	// The marker Snapshot writes is rejected by a state machine that does
	// not hold the data.
	fresh := newFSMEnv(t)
	snap, err := e.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := snap.Persist(&bufferSink{Buffer: &b}); err != nil {
		t.Fatal(err)
	}
	if err := fresh.f.Restore(io.NopCloser(&b)); err == nil {
		t.Fatal("a fresh state machine accepted a live marker of another node's data")
	}
	if st := fresh.part.State(); st != (storage.State{}) {
		t.Fatalf("fresh state after rejected marker: %+v", st)
	}
}

// bufferSink is a raft.SnapshotSink into memory.
type bufferSink struct {
	*bytes.Buffer
	canceled bool
}

func (s *bufferSink) ID() string    { return "buffer" }
func (s *bufferSink) Close() error  { return nil }
func (s *bufferSink) Cancel() error { s.canceled = true; return nil }

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
			if !e.f.idem.mayHave(string(name[len(metaIdemPfx):])) {
				t.Errorf("%s: record %q missing from the set", when, name)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		held := 0
		for _, c := range e.f.idem.n {
			held += int(c)
		}
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

// TestFSMVisibleCoversReads checks what session tokens rest on: a reader
// that finds a write in storage and then loads visible gets an index at
// least the write's version, while batches are applied concurrently; and
// visible is never below applied. (applied alone can lag a write that is
// already readable: it is stored after the batch commits.)
func TestFSMVisibleCoversReads(t *testing.T) {
	e := newFSMEnv(t)
	const writes = 2000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(1); i <= writes; i++ {
			e.f.ApplyBatch([]*raft.Log{cmdLog(t, i, &peerv1.Command{ProposedAt: t0, Ops: []*peerv1.Op{putOp("k", fmt.Sprint(i))}})})
		}
	}()
	reads := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		got, ok, err := e.part.Get([]byte("k"), 0)
		if err != nil {
			t.Error(err)
			break
		}
		applied := e.f.applied.Load()
		visible := e.f.visible.Load()
		if ok && visible < got.Version {
			t.Errorf("read version %d, then visible %d: a session token from it would be below what the reader saw", got.Version, visible)
			break
		}
		if visible < applied {
			t.Errorf("visible %d below applied %d", visible, applied)
			break
		}
		reads++
	}
	<-done // the writer stops before the database closes
	if v := e.f.visible.Load(); v != writes {
		t.Errorf("visible after %d writes is %d", writes, v)
	}
	t.Logf("%d reads during %d applies", reads, writes)
}
