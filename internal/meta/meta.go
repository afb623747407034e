package meta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/elcache/elcache/internal/raftnet"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

// GroupID is the Raft group id of the meta group. Partition groups use
// their partition id, which is below 2^32.
const GroupID uint64 = 1 << 32

// defaultApplyTimeout bounds a proposal when the caller set no deadline.
const defaultApplyTimeout = 10 * time.Second

// Group is this node's replica of the meta Raft group. Every node of the
// cluster has one (voters on a few nodes, non-voters on the rest), so
// every node has the partition map locally.
type Group struct {
	raft  *raft.Raft
	fsm   *fsm
	trans *raftnet.Transport
	// existed: the group had state when the node started.
	existed bool
}

// Open starts this node's replica of the meta group on db's log store for
// GroupID, with its snapshots under dataDir/snapshots/meta, over trans
// (the group's transport, GroupID's). rc is the node's Raft configuration
// for its groups (LocalID the node id); Open keeps a short log (snapshot
// threshold and trailing logs of 256) on a copy of it, and its snapshot
// store logs through rc.Logger.
func Open(db *storage.DB, dataDir string, trans *raftnet.Transport, rc *raft.Config) (*Group, error) {
	logs := db.LogStore(GroupID)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dataDir, "snapshots", "meta"), 2, rc.Logger)
	if err != nil {
		return nil, fmt.Errorf("meta: snapshots: %w", err)
	}
	has, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("meta: group: %w", err)
	}
	c := *rc
	c.SnapshotThreshold = 256
	c.TrailingLogs = 256
	f := newFSM()
	r, err := raft.NewRaft(&c, f, logs, logs, snaps, trans)
	if err != nil {
		return nil, fmt.Errorf("meta: group: start raft: %w", err)
	}
	return &Group{raft: r, fsm: f, trans: trans, existed: has}, nil
}

// Current returns the cluster state this replica has applied and a
// channel closed when it next changes. The state is never nil and must
// not be modified; clone it to derive a new one.
func (g *Group) Current() (*peerv1.ClusterState, <-chan struct{}) {
	return g.fsm.current()
}

// Formed reports whether this node belongs to a formed cluster: it has
// meta state on disk or has received some.
func (g *Group) Formed() bool {
	if g.existed {
		return true
	}
	st, _ := g.fsm.current()
	return st.Revision > 0 || g.raft.LastIndex() > 0
}

// Bootstrap forms the meta group with the given voters (node ids, which
// are also their raft addresses).
func (g *Group) Bootstrap(voters []string) error {
	cfg := raft.Configuration{}
	for _, id := range voters {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	return g.raft.BootstrapCluster(cfg).Error()
}

// IsLeader reports whether this replica leads the meta group.
func (g *Group) IsLeader() bool { return g.raft.State() == raft.Leader }

// Leader returns the meta leader's node id, or "".
func (g *Group) Leader() string {
	_, id := g.raft.LeaderWithID()
	return string(id)
}

// Propose replaces the cluster state at revision expect with st (whose own
// revision is ignored: the applied state's is expect+1). It fails with
// ErrStaleRevision if the state is no longer at expect. The ctx deadline,
// if any, bounds the Raft apply.
func (g *Group) Propose(ctx context.Context, expect uint64, st *peerv1.ClusterState) error {
	raw, err := proto.Marshal(&peerv1.MetaCommand{ExpectRevision: expect, State: st})
	if err != nil {
		return err
	}
	timeout := defaultApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := g.raft.Apply(raw, timeout)
	if err := f.Error(); err != nil {
		return fmt.Errorf("meta: group: %w", err)
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

// Raft returns the group's Raft replica, for what the node's controller
// does to every group: change its membership, transfer its leadership,
// check how far it has applied.
func (g *Group) Raft() *raft.Raft { return g.raft }

// Transport returns the group's transport.
func (g *Group) Transport() *raftnet.Transport { return g.trans }

// Close shuts the replica down and closes its transport.
func (g *Group) Close() error {
	err := g.raft.Shutdown().Error()
	g.trans.Close()
	return err
}

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
