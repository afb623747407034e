package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/raft"
)

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
