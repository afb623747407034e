package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/elcache/elcache/internal/raftnet"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

// metaGroupID is the Raft group id of the meta group. Partition groups use
// their partition id, which is below 2^32.
const metaGroupID uint64 = 1 << 32

// errStaleRevision: a meta command was based on an older cluster state.
var errStaleRevision = errors.New("node: cluster state changed concurrently")

// metaFSM holds the cluster state in memory. Its log is short (the state
// changes only when nodes come, go or drain), and a snapshot is the whole
// state.
type metaFSM struct {
	mu      sync.Mutex
	state   *peerv1.ClusterState // never nil and never mutated: replaced whole
	changed chan struct{}        // closed and replaced on every change
}

var _ raft.FSM = (*metaFSM)(nil)

func newMetaFSM() *metaFSM {
	return &metaFSM{state: &peerv1.ClusterState{}, changed: make(chan struct{})}
}

// current returns the state and a channel closed when it next changes. The
// state must not be modified; clone it to derive a new one.
func (f *metaFSM) current() (*peerv1.ClusterState, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.changed
}

func (f *metaFSM) setLocked(st *peerv1.ClusterState) {
	f.state = st
	close(f.changed)
	f.changed = make(chan struct{})
}

// Apply replaces the state if the command's expected revision matches.
func (f *metaFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var cmd peerv1.MetaCommand
	if err := proto.Unmarshal(l.Data, &cmd); err != nil {
		return fmt.Errorf("node: meta command at index %d: %w", l.Index, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if cmd.ExpectRevision != f.state.Revision || cmd.State == nil {
		return errStaleRevision
	}
	next := proto.CloneOf(cmd.State)
	next.Revision = f.state.Revision + 1
	f.setLocked(next)
	return next.Revision
}

// Snapshot captures the state.
func (f *metaFSM) Snapshot() (raft.FSMSnapshot, error) {
	st, _ := f.current()
	raw, err := proto.Marshal(st)
	if err != nil {
		return nil, err
	}
	return metaSnapshot(raw), nil
}

// Restore replaces the state with a snapshot's.
func (f *metaFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	st := &peerv1.ClusterState{}
	if err := proto.Unmarshal(raw, st); err != nil {
		return fmt.Errorf("node: meta snapshot: %w", err)
	}
	f.mu.Lock()
	f.setLocked(st)
	f.mu.Unlock()
	return nil
}

type metaSnapshot []byte

func (s metaSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (metaSnapshot) Release() {}

// metaGroup is this node's replica of the meta Raft group. Every node of
// the cluster has one (voters on a few nodes, non-voters on the rest), so
// every node has the partition map locally.
type metaGroup struct {
	raft  *raft.Raft
	fsm   *metaFSM
	trans *raftnet.Transport
	// existed: the group had state when the node started.
	existed bool
}

func openMeta(db *storage.DB, dataDir, nodeID string, trans *raftnet.Transport, rcfg RaftConfig, log *slog.Logger) (*metaGroup, error) {
	logs := db.LogStore(metaGroupID)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dataDir, "snapshots", "meta"), 2,
		newRaftLogger(log, "group", "meta"))
	if err != nil {
		return nil, fmt.Errorf("node: meta snapshots: %w", err)
	}
	has, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("node: meta group: %w", err)
	}
	rc := raftConfig(nodeID, rcfg)
	rc.SnapshotThreshold = 256
	rc.TrailingLogs = 256
	rc.Logger = newRaftLogger(log, "group", "meta")
	f := newMetaFSM()
	r, err := raft.NewRaft(rc, f, logs, logs, snaps, trans)
	if err != nil {
		return nil, fmt.Errorf("node: meta group: start raft: %w", err)
	}
	return &metaGroup{raft: r, fsm: f, trans: trans, existed: has}, nil
}

// formed reports whether this node belongs to a formed cluster: it has
// meta state on disk or has received some.
func (m *metaGroup) formed() bool {
	if m.existed {
		return true
	}
	st, _ := m.fsm.current()
	return st.Revision > 0 || m.raft.LastIndex() > 0
}

// bootstrap forms the meta group with the given voters.
func (m *metaGroup) bootstrap(voters []string) error {
	cfg := raft.Configuration{}
	for _, id := range voters {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	return m.raft.BootstrapCluster(cfg).Error()
}

func (m *metaGroup) isLeader() bool { return m.raft.State() == raft.Leader }

// leader returns the meta leader's node id, or "".
func (m *metaGroup) leader() string {
	_, id := m.raft.LeaderWithID()
	return string(id)
}

// propose replaces the cluster state at revision expect with st.
func (m *metaGroup) propose(ctx context.Context, expect uint64, st *peerv1.ClusterState) error {
	raw, err := proto.Marshal(&peerv1.MetaCommand{ExpectRevision: expect, State: st})
	if err != nil {
		return err
	}
	timeout := defaultApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := m.raft.Apply(raw, timeout)
	if err := f.Error(); err != nil {
		return fmt.Errorf("node: meta group: %w", err)
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

func (m *metaGroup) close() error {
	err := m.raft.Shutdown().Error()
	m.trans.Close()
	return err
}
