package meta

import (
	"bytes"
	"errors"
	"io"
	"testing"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

// command returns a raft log entry carrying the meta command "replace the
// state at revision expect with st".
func command(t *testing.T, index, expect uint64, st *peerv1.ClusterState) *raft.Log {
	t.Helper()
	raw, err := proto.Marshal(&peerv1.MetaCommand{ExpectRevision: expect, State: st})
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: raw}
}

// fsmAt2 returns an FSM whose state is at revision 2, with map version 2.
func fsmAt2(t *testing.T) *fsm {
	t.Helper()
	f := newFSM()
	for i, rev := range []uint64{0, 1} {
		if got := f.Apply(command(t, uint64(i+1), rev, &peerv1.ClusterState{MapVersion: rev + 1})); got != rev+1 {
			t.Fatalf("setting up: Apply at revision %d = %v, want %d", rev, got, rev+1)
		}
	}
	return f
}

func TestFSMApply(t *testing.T) {
	next := &peerv1.ClusterState{MapVersion: 7, Revision: 99,
		Nodes: []*peerv1.NodeRecord{{Id: "a", State: peerv1.NodeRecord_STATE_ACTIVE}}}
	tests := []struct {
		name string
		log  func(t *testing.T) *raft.Log
		// want is Apply's answer: the new revision, ErrStaleRevision,
		// errAny (some other error) or nil.
		want    any
		applied bool // the state became next, at revision 3
	}{
		{"expected revision matches", func(t *testing.T) *raft.Log { return command(t, 3, 2, next) }, uint64(3), true},
		{"older revision", func(t *testing.T) *raft.Log { return command(t, 3, 1, next) }, ErrStaleRevision, false},
		{"revision zero on a formed state", func(t *testing.T) *raft.Log { return command(t, 3, 0, next) }, ErrStaleRevision, false},
		{"newer revision", func(t *testing.T) *raft.Log { return command(t, 3, 3, next) }, ErrStaleRevision, false},
		{"no state", func(t *testing.T) *raft.Log { return command(t, 3, 2, nil) }, ErrStaleRevision, false},
		{"not a command", func(*testing.T) *raft.Log { return &raft.Log{Index: 3, Type: raft.LogNoop} }, nil, false},
		{"configuration change", func(*testing.T) *raft.Log { return &raft.Log{Index: 3, Type: raft.LogConfiguration} }, nil, false},
		{"undecodable command", func(*testing.T) *raft.Log {
			return &raft.Log{Index: 3, Type: raft.LogCommand, Data: []byte{0xff, 0xff, 0xff}}
		}, errAny, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fsmAt2(t)
			before, changed := f.current()
			l := tt.log(t)
			got := f.Apply(l)
			switch want := tt.want.(type) {
			case error:
				err, ok := got.(error)
				if !ok || (want != errAny && !errors.Is(err, want)) || (want == errAny && errors.Is(err, ErrStaleRevision)) {
					t.Fatalf("Apply = %v, want %v", got, want)
				}
			default:
				if got != tt.want {
					t.Fatalf("Apply = %v, want %v", got, tt.want)
				}
			}
			after, _ := f.current()
			select {
			case <-changed:
				if !tt.applied {
					t.Fatal("the change channel was closed, but the state did not change")
				}
			default:
				if tt.applied {
					t.Fatal("the change channel was not closed")
				}
			}
			if !tt.applied {
				if after != before || after.Revision != 2 {
					t.Fatalf("state replaced (revision %d -> %d) by a rejected command", before.Revision, after.Revision)
				}
				return
			}
			want := proto.CloneOf(next)
			want.Revision = 3
			if !proto.Equal(after, want) {
				t.Fatalf("state = %v, want %v", after, want)
			}
			if next.Revision != 99 {
				t.Fatal("Apply modified the command's state")
			}
			if before.Revision != 2 || before.MapVersion != 2 {
				t.Fatalf("the previous state was modified: %v", before)
			}
		})
	}
}

// errAny stands for any error other than ErrStaleRevision in TestFSMApply.
var errAny = errors.New("any other error")

// sink is a raft.SnapshotSink over a buffer.
type sink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Close() error  { s.closed = true; return nil }
func (s *sink) Cancel() error { s.cancelled = true; return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	states := []struct {
		name string
		st   *peerv1.ClusterState
	}{
		{"empty", nil},
		{"nodes and partitions", &peerv1.ClusterState{MapVersion: 4, PartitionCount: 8, ReplicationFactor: 2,
			Nodes: []*peerv1.NodeRecord{
				{Id: "a", Name: "one", GrpcAddr: "127.0.0.1:1", State: peerv1.NodeRecord_STATE_ACTIVE},
				{Id: "b", Name: "two", GrpcAddr: "127.0.0.1:2", State: peerv1.NodeRecord_STATE_DRAINING},
			},
			Partitions: []*peerv1.PartitionPlacement{{Replicas: []string{"a", "b"}, Bootstrap: []string{"a"}}},
		}},
	}
	for _, tt := range states {
		t.Run(tt.name, func(t *testing.T) {
			src := newFSM()
			if tt.st != nil {
				if got := src.Apply(command(t, 1, 0, tt.st)); got != uint64(1) {
					t.Fatalf("Apply = %v", got)
				}
			}
			want, _ := src.current()
			snap, err := src.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			var s sink
			if err := snap.Persist(&s); err != nil {
				t.Fatal(err)
			}
			snap.Release()
			if !s.closed || s.cancelled {
				t.Fatalf("Persist: sink closed %v, cancelled %v; want closed only", s.closed, s.cancelled)
			}
			// The format: the ClusterState message, marshalled.
			raw, err := proto.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s.Bytes(), raw) {
				t.Fatalf("snapshot = %x, want the marshalled state %x", s.Bytes(), raw)
			}

			dst := fsmAt2(t)
			_, changed := dst.current()
			if err := dst.Restore(io.NopCloser(bytes.NewReader(s.Bytes()))); err != nil {
				t.Fatal(err)
			}
			got, _ := dst.current()
			if !proto.Equal(got, want) {
				t.Fatalf("restored %v, want %v", got, want)
			}
			select {
			case <-changed:
			default:
				t.Fatal("Restore did not close the change channel")
			}
			// The restored state takes commands at its own revision.
			if r := dst.Apply(command(t, 10, want.Revision, &peerv1.ClusterState{})); r != want.Revision+1 {
				t.Fatalf("Apply after Restore = %v, want %d", r, want.Revision+1)
			}
		})
	}
}

func TestFSMRestoreRejectsGarbage(t *testing.T) {
	f := fsmAt2(t)
	before, _ := f.current()
	if err := f.Restore(io.NopCloser(bytes.NewReader([]byte{0xff, 0xff, 0xff}))); err == nil {
		t.Fatal("Restore of an undecodable snapshot succeeded")
	}
	if after, _ := f.current(); after != before {
		t.Fatal("a failed Restore replaced the state")
	}
}
