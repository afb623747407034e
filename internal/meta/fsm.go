package meta

import (
	"errors"
	"fmt"
	"io"
	"sync"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

// ErrStaleRevision: a meta command was based on an older cluster state.
var ErrStaleRevision = errors.New("meta: cluster state changed concurrently")

// fsm holds the cluster state in memory. Its log is short (the state
// changes only when nodes come, go or drain), and a snapshot is the whole
// state.
type fsm struct {
	mu      sync.Mutex
	state   *peerv1.ClusterState // never nil and never mutated: replaced whole
	changed chan struct{}        // closed and replaced on every change
}

var _ raft.FSM = (*fsm)(nil)

func newFSM() *fsm {
	return &fsm{state: &peerv1.ClusterState{}, changed: make(chan struct{})}
}

// current returns the state and a channel closed when it next changes. The
// state must not be modified; clone it to derive a new one.
func (f *fsm) current() (*peerv1.ClusterState, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.changed
}

func (f *fsm) setLocked(st *peerv1.ClusterState) {
	f.state = st
	close(f.changed)
	f.changed = make(chan struct{})
}

// Apply replaces the state if the command's expected revision matches,
// and returns the new revision (a uint64), or ErrStaleRevision.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var cmd peerv1.MetaCommand
	if err := proto.Unmarshal(l.Data, &cmd); err != nil {
		return fmt.Errorf("meta: command at index %d: %w", l.Index, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if cmd.ExpectRevision != f.state.Revision || cmd.State == nil {
		return ErrStaleRevision
	}
	next := proto.CloneOf(cmd.State)
	next.Revision = f.state.Revision + 1
	f.setLocked(next)
	return next.Revision
}

// Snapshot captures the state: the ClusterState message, marshalled.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	st, _ := f.current()
	raw, err := proto.Marshal(st)
	if err != nil {
		return nil, err
	}
	return snapshot(raw), nil
}

// Restore replaces the state with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	st := &peerv1.ClusterState{}
	if err := proto.Unmarshal(raw, st); err != nil {
		return fmt.Errorf("meta: snapshot: %w", err)
	}
	f.mu.Lock()
	f.setLocked(st)
	f.mu.Unlock()
	return nil
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshot) Release() {}
