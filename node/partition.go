package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// defaultApplyTimeout bounds a proposal when the caller set no deadline.
const defaultApplyTimeout = 10 * time.Second

// partition is one partition's Raft group as hosted on this node.
type partition struct {
	id    uint32
	store *storage.Partition
	fsm   *fsm
	raft  *raft.Raft
	trans *groupTransport
	snaps string // snapshot directory
	log   *slog.Logger
	// leaderWait bounds how long a request waits for an election.
	leaderWait time.Duration
	// reachable reports whether a node is up as far as gossip knows; a
	// request does not wait for an election that cannot succeed.
	reachable func(nodeID string) bool
	// busy is set while a reconciliation step runs for this partition.
	busy atomic.Bool
	// displaced is set while the partition map places this replica on
	// other nodes: it no longer serves requests and waits to be removed.
	displaced atomic.Bool

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// partitionDeps is what a partition needs from its node.
type partitionDeps struct {
	db      *storage.DB
	net     *raftNet
	dataDir string
	nodeID  string
	raftCfg RaftConfig
	dedup   time.Duration
	log     *slog.Logger
	// reachable: see partition.reachable.
	reachable func(nodeID string) bool
}

// openPartition opens partition id's storage and starts this node's replica
// of its Raft group. A replica with no Raft state bootstraps the group only
// if this node is one of bootstrap (the group's first voters, the same list
// on every node); otherwise it waits for the leader to add it and send it
// the log or a snapshot.
func openPartition(id uint32, d partitionDeps, bootstrap []string) (*partition, error) {
	store, err := d.db.Partition(id)
	if err != nil {
		return nil, err
	}
	var epoch uint64
	if raw, ok, err := store.Meta(metaEpoch); err != nil {
		return nil, err
	} else if ok && len(raw) == 8 {
		epoch = binary.BigEndian.Uint64(raw)
	}
	group := uint64(id)
	logs := d.db.LogStore(group)
	snapDir := filepath.Join(d.dataDir, "snapshots", fmt.Sprint(id))
	snaps, err := d.db.SnapshotStore(group, store, snapDir)
	if err != nil {
		return nil, err
	}
	f := newFSM(store, d.db.Sync, d.dedup, epoch)

	rc := raftConfig(d.nodeID, d.raftCfg)
	rc.NoSnapshotRestoreOnStart = true
	rc.Logger = newRaftLogger(d.log, "partition", id)

	has, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("node: partition %d: %w", id, err)
	}
	trans := d.net.Transport(group)
	if !has && slices.Contains(bootstrap, d.nodeID) {
		// Written to the stores before Raft starts: a leader's first append
		// can arrive as soon as it does.
		cfg := raft.Configuration{}
		for _, v := range bootstrap {
			cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(v), Address: raft.ServerAddress(v)})
		}
		if err := raft.BootstrapCluster(rc, logs, logs, snaps, trans, cfg); err != nil {
			trans.Close()
			return nil, fmt.Errorf("node: partition %d: bootstrap: %w", id, err)
		}
	}
	r, err := raft.NewRaft(rc, f, logs, logs, snaps, trans)
	if err != nil {
		trans.Close()
		return nil, fmt.Errorf("node: partition %d: start raft: %w", id, err)
	}
	p := &partition{id: id, store: store, fsm: f, raft: r, trans: trans, snaps: snapDir, log: d.log.With("partition", id),
		leaderWait: max(4*d.raftCfg.ElectionTimeout, 2*time.Second), reachable: d.reachable, stop: make(chan struct{})}
	p.wg.Add(1)
	go p.leaderLoop(d.raftCfg.HeartbeatTimeout)
	return p, nil
}

// leaderLoop commits a leader no-op in every term this replica leads, so
// that linearizable reads know the leader has committed in its term.
func (p *partition) leaderLoop(interval time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if p.raft.State() == raft.Leader && p.fsm.noopTerm.Load() != p.raft.CurrentTerm() {
			epoch := p.fsm.epoch.Load()
			if epoch == 0 {
				epoch = newEpoch()
			}
			cmd := &peerv1.Command{ProposedAt: time.Now().UnixNano(),
				Ops: []*peerv1.Op{{Kind: peerv1.Op_KIND_LEADER_NOOP, Epoch: epoch}}}
			data, _ := proto.Marshal(cmd)
			if err := p.raft.Apply(data, interval).Error(); err != nil {
				p.log.Debug("leader no-op failed", "err", err)
			}
		}
		select {
		case <-p.stop:
			return
		case <-p.raft.LeaderCh():
		case <-t.C:
		}
	}
}

// newEpoch returns a random non-zero epoch.
func newEpoch() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if e := binary.BigEndian.Uint64(b[:]); e != 0 {
			return e
		}
	}
}

// ready reports whether this replica leads and has committed in its term.
func (p *partition) ready() bool {
	return p.raft.State() == raft.Leader && p.fsm.noopTerm.Load() == p.raft.CurrentTerm()
}

// notLeader returns a *notLeaderError naming the known leader, if any.
func (p *partition) notLeader() error {
	_, id := p.raft.LeaderWithID()
	return &notLeaderError{partition: p.id, leader: string(id)}
}

// awaitLeader waits, while the partition has no known leader (at start-up
// or during an election), until this replica leads, another replica is known
// to, or the wait budget or ctx runs out. A request that arrives during an
// election then waits it out instead of failing.
func (p *partition) awaitLeader(ctx context.Context) error {
	if p.raft.State() == raft.Leader {
		return nil
	}
	deadline := time.NewTimer(p.leaderWait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.raft.State() == raft.Leader {
			return nil
		}
		if _, id := p.raft.LeaderWithID(); id != "" {
			return p.notLeader()
		}
		if err := p.quorumReachable(); err != nil {
			return err
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return p.notLeader()
		case <-ctx.Done():
			return fmt.Errorf("%w: partition %d has no leader", ctx.Err(), p.id)
		case <-p.stop:
			return ErrClosed
		}
	}
}

// quorumReachable fails when gossip sees fewer than a quorum of the
// group's voters up: no election can then succeed, and a request should
// fail at once instead of waiting for one.
func (p *partition) quorumReachable() error {
	if p.reachable == nil {
		return nil
	}
	f := p.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	voters, up := 0, 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if p.reachable(string(s.ID)) {
			up++
		}
	}
	if voters > 0 && up <= voters/2 {
		return fmt.Errorf("%w: partition %d has no leader and only %d of its %d voters are reachable", ErrUnavailable, p.id, up, voters)
	}
	return nil
}

// propose commits cmd through Raft and returns its result.
func (p *partition) propose(ctx context.Context, cmd *peerv1.Command) (*peerv1.Result, error) {
	if err := p.awaitLeader(ctx); err != nil {
		return nil, err
	}
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	timeout := defaultApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	f := p.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("partition %d: %w", p.id, err)
	}
	switch r := f.Response().(type) {
	case *peerv1.Result:
		return r, nil
	case error:
		return nil, r
	default:
		return nil, fmt.Errorf("node: partition %d: unexpected apply response %T", p.id, r)
	}
}

// readReady makes this replica ready to serve a read at level, waiting as
// the level requires, and returns the level it serves at.
//
// LINEARIZABLE, LEASE and BOUNDED need the leader (real leases and
// follower freshness proofs come with the reads work); SESSION waits on
// any replica until it has applied the session's writes; EVENTUAL takes
// any replica as it is.
func (p *partition) readReady(ctx context.Context, o readOpts) error {
	switch o.level {
	case cachev1.Consistency_CONSISTENCY_LINEARIZABLE, cachev1.Consistency_CONSISTENCY_LEASE:
		return p.readIndex(ctx)
	case cachev1.Consistency_CONSISTENCY_SESSION:
		for _, t := range o.tokens {
			if t.GetPartition() != p.id {
				continue
			}
			if t.Epoch != p.fsm.epoch.Load() {
				// A token from another incarnation of the log says nothing
				// about this one: fall back to the strongest read.
				return p.readIndex(ctx)
			}
			return p.fsm.waitApplied(ctx, t.Index)
		}
		return nil
	case cachev1.Consistency_CONSISTENCY_EVENTUAL:
		// Any replica, as it is.
		return nil
	default: // BOUNDED: the leader's state, until followers can prove freshness.
		return p.awaitLeader(ctx)
	}
}

// readIndex confirms leadership and waits until the state machine has
// applied everything committed before the read started.
func (p *partition) readIndex(ctx context.Context) error {
	for !p.ready() {
		if err := p.awaitLeader(ctx); err != nil {
			return err
		}
		// A new leader has not committed in its term yet.
		p.fsm.mu.Lock()
		ch := p.fsm.appliedCh
		p.fsm.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: partition %d leader not ready", ctx.Err(), p.id)
		}
	}
	term := p.raft.CurrentTerm()
	idx := p.raft.CommitIndex()
	if err := p.raft.VerifyLeader().Error(); err != nil {
		return p.notLeader()
	}
	if p.raft.CurrentTerm() != term {
		return fmt.Errorf("%w: partition %d changed term during a read", ErrUnavailable, p.id)
	}
	return p.fsm.waitApplied(ctx, idx)
}

// readMeta describes the replica serving a read now.
func (p *partition) readMeta(node string, level cachev1.Consistency) *cachev1.ReadMeta {
	applied := p.fsm.applied.Load()
	m := &cachev1.ReadMeta{
		Partition:         p.id,
		ServedBy:          node,
		Role:              roleOf(p.raft.State()),
		Consistency:       level,
		AppliedIndex:      applied,
		LeaderCommitIndex: p.raft.CommitIndex(),
		Staleness:         durationpb.New(0),
		SessionToken:      &cachev1.SessionToken{Partition: p.id, Epoch: p.fsm.epoch.Load(), Index: applied},
	}
	if m.Role != cachev1.Role_ROLE_LEADER {
		if lc := p.raft.LastContact(); !lc.IsZero() {
			m.Staleness = durationpb.New(time.Since(lc))
		}
	}
	return m
}

// writeMeta describes a committed write.
func (p *partition) writeMeta(node string, res *peerv1.Result, mode cachev1.WriteMode) *cachev1.WriteMeta {
	return &cachev1.WriteMeta{
		Partition:    p.id,
		ServedBy:     node,
		RaftIndex:    res.Index,
		SessionToken: &cachev1.SessionToken{Partition: p.id, Epoch: p.fsm.epoch.Load(), Index: res.Index},
		Deduplicated: res.Deduplicated,
		Mode:         mode,
	}
}

func roleOf(s raft.RaftState) cachev1.Role {
	switch s {
	case raft.Leader:
		return cachev1.Role_ROLE_LEADER
	case raft.Follower:
		return cachev1.Role_ROLE_FOLLOWER
	case raft.Candidate:
		return cachev1.Role_ROLE_CANDIDATE
	default:
		return cachev1.Role_ROLE_UNSPECIFIED
	}
}

// leader returns the node id of the partition's leader as this replica
// knows it, or "".
func (p *partition) leader() string {
	_, id := p.raft.LeaderWithID()
	return string(id)
}

// close stops this replica. It is idempotent.
func (p *partition) close() error {
	p.closeOnce.Do(func() {
		close(p.stop)
		p.closeErr = p.raft.Shutdown().Error()
		p.wg.Wait()
		p.trans.Close()
	})
	return p.closeErr
}
