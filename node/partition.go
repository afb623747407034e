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

	"github.com/elcache/elcache/internal/raftlog"
	"github.com/elcache/elcache/internal/raftnet"
	"github.com/elcache/elcache/internal/readround"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

// defaultApplyTimeout bounds a proposal when the caller set no deadline.
const defaultApplyTimeout = 10 * time.Second

// partition is one partition's Raft group as hosted on this node.
type partition struct {
	id    uint32
	store *storage.Partition
	fsm   *fsm
	raft  *raft.Raft
	logs  raft.LogStore // the group's log, as raft writes it
	trans *raftnet.Transport
	net   *raftnet.Net // every group's transport; whom this node heard from
	snaps string       // snapshot directory
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

	// fills are the refills in flight (refill.go).
	fills fills
	// refused are write-back rows the database refused (writeback.go).
	refused refusedRows

	// Reads (reads.go).
	self        string        // this node's id
	raftCfg     RaftConfig    // the group's timeouts
	leaseDur    time.Duration // see leaseDuration
	readIndexAt readIndexFunc // asks a leader for a read index
	faults      *faults       // test hooks: a broken lease (Hooks.BreakLease)
	// voters caches voterPeers' answer for the latest configuration.
	voters atomic.Pointer[voterSet]
	// rounds runs this node's leadership rounds.
	rounds *readround.Rounds
	// leaderChanges counts the leader changes this replica observed.
	leaderChanges atomic.Uint64
	// syncedThrough is an index at or below which every entry is on disk
	// on a quorum: that of the latest SYNC command (or barrier) this
	// replica committed as leader (see syncThrough).
	syncedThrough atomic.Uint64

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// partitionDeps is what a partition needs from its node.
type partitionDeps struct {
	db      *storage.DB
	net     *raftnet.Net
	dataDir string
	nodeID  string
	raftCfg RaftConfig
	dedup   time.Duration
	log     *slog.Logger
	// reachable: see partition.reachable.
	reachable func(nodeID string) bool
	// readIndexAt: see partition.
	readIndexAt readIndexFunc
	// rounds runs the node's leadership rounds (internal/readround).
	rounds *readround.Rounds
	// faults pauses log writes (Hooks.Pause) and breaks leases and refill
	// fences in tests.
	faults *faults
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
	logs := pausableLogs{LogStore: d.db.LogStore(group), f: d.faults}
	snapDir := filepath.Join(d.dataDir, "snapshots", fmt.Sprint(id))
	snaps, err := d.db.SnapshotStore(group, store, snapDir)
	if err != nil {
		return nil, err
	}
	f, err := newFSM(store, d.db.Sync, d.dedup, epoch)
	if err != nil {
		return nil, err
	}
	f.faults = d.faults

	rc := raftConfig(d.nodeID, d.raftCfg)
	rc.NoSnapshotRestoreOnStart = true
	rc.Logger = raftlog.New(d.log, "partition", id)

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
	p := &partition{id: id, store: store, fsm: f, raft: r, logs: logs, trans: trans, net: d.net, snaps: snapDir, log: d.log.With("partition", id),
		leaderWait: max(4*d.raftCfg.ElectionTimeout, 2*time.Second), reachable: d.reachable, stop: make(chan struct{}),
		self: d.nodeID, raftCfg: d.raftCfg, leaseDur: leaseDuration(d.raftCfg), readIndexAt: d.readIndexAt, rounds: d.rounds, faults: d.faults}
	trans.SetLeaseCheck(p.leaseValid)
	p.wg.Add(2)
	go p.leaderLoop(d.raftCfg.HeartbeatTimeout)
	go p.countLeaderChanges()
	return p, nil
}

// countLeaderChanges counts the leader changes this replica observes
// (elcache_raft_leader_changes_total).
func (p *partition) countLeaderChanges() {
	defer p.wg.Done()
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	p.raft.RegisterObserver(obs)
	defer p.raft.DeregisterObserver(obs)
	for {
		select {
		case <-ch:
			p.leaderChanges.Add(1)
		case <-p.stop:
			return
		}
	}
}

// leaderLoop commits a leader no-op in every term this replica leads, so
// that linearizable reads know the leader has committed in its term.
func (p *partition) leaderLoop(interval time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if p.raft.State() == raft.Leader && p.fsm.noopTerm.Load() != p.raft.CurrentTerm() {
			// Not waited for: the next round sees from noopTerm whether it
			// was applied. Waiting could hang shutdown for ever, because
			// hashicorp/raft never answers the future of an entry still on
			// its way to the state machine when it shuts down.
			p.raft.Apply(p.noopCommand(), interval)
		}
		select {
		case <-p.stop:
			return
		case <-p.raft.LeaderCh():
		case <-t.C:
		}
	}
}

// noopCommand returns an encoded LEADER_NOOP command, which gives the log
// an epoch if it has none yet.
func (p *partition) noopCommand() []byte {
	epoch := p.fsm.epoch.Load()
	if epoch == 0 {
		epoch = newEpoch()
	}
	cmd := &peerv1.Command{ProposedAt: time.Now().UnixNano(),
		Ops: []*peerv1.Op{{Kind: peerv1.Op_KIND_LEADER_NOOP, Epoch: epoch}}}
	data, _ := proto.Marshal(cmd)
	return data
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
		// Raft steps down only after LeaderLeaseTimeout.
		return p.quorumLost(time.Now())
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
		if err := p.quorumLost(time.Now()); err != nil {
			return err
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
		return p.noQuorum(time.Now(), fmt.Sprintf("no leader, and only %d of its %d voters are reachable", up, voters))
	}
	return nil
}

// propose commits cmd through Raft at durability d and returns its result.
// A REPLICATED command is marked (storage.ReplicatedExtensions), so the
// replicas' log stores acknowledge it once it is written to the operating
// system and sync it within their sync interval; any other is synced
// before it is acknowledged (SYNC).
func (p *partition) propose(ctx context.Context, cmd *peerv1.Command, d cachev1.Durability) (*peerv1.Result, error) {
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
	var f raft.ApplyFuture
	if d == cachev1.Durability_DURABILITY_REPLICATED {
		f = p.raft.ApplyLog(raft.Log{Data: data, Extensions: storage.ReplicatedExtensions()}, timeout)
	} else {
		f = p.raft.Apply(data, timeout)
	}
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("partition %d: %w", p.id, err)
	}
	if d != cachev1.Durability_DURABILITY_REPLICATED {
		p.synced(f.Index())
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

// synced records that every entry up to index is on disk on a quorum.
func (p *partition) synced(index uint64) {
	for {
		cur := p.syncedThrough.Load()
		if index <= cur || p.syncedThrough.CompareAndSwap(cur, index) {
			return
		}
	}
}

// syncThrough makes sure that every entry up to index, which this replica
// has applied, is on disk on a quorum, and not only written to its
// operating system as REPLICATED entries may be: it commits a barrier,
// which the log stores sync, unless a SYNC entry at or after index was
// committed already. It relies on a log store's sync covering the entries
// written before it, as a write-ahead log's does.
//
// The write-back flusher calls it before a row goes to the database: the
// row's version is the index of a write-back entry, and were a REPLICATED
// entry lost (a majority of the replicas losing power at once), its index
// would be given to another write, whose row the database would then
// refuse as no newer than the one it holds.
func (p *partition) syncThrough(ctx context.Context, index uint64) error {
	if index <= p.syncedThrough.Load() {
		return nil
	}
	timeout := defaultApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := p.raft.Barrier(timeout).Error(); err != nil {
		return fmt.Errorf("partition %d: sync before flushing: %w", p.id, err)
	}
	// The barrier came after index, which was applied before it.
	p.synced(index)
	return nil
}

// writeMeta describes a committed write.
func (p *partition) writeMeta(node string, res *peerv1.Result, mode cachev1.WriteMode, d cachev1.Durability) *cachev1.WriteMeta {
	return &cachev1.WriteMeta{
		Partition:    p.id,
		ServedBy:     node,
		RaftIndex:    res.Index,
		SessionToken: &cachev1.SessionToken{Partition: p.id, Epoch: p.fsm.epoch.Load(), Index: res.Index},
		Deduplicated: res.Deduplicated,
		Mode:         mode,
		Durability:   d,
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
