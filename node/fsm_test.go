package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
