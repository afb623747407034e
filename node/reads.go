package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/elcache/elcache/internal/raftnet"
	"github.com/elcache/elcache/internal/readround"
	"github.com/elcache/elcache/internal/request"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Reads at five levels (DESIGN.md "Reads"). Each level decides which
// replica may serve and what it must prove first:
//
//   - LINEARIZABLE: the leader confirms it still leads with a quorum
//     round (a leadership round, internal/readround) after it has committed in its term,
//     takes its commit index and waits until its state machine has
//     applied it. A follower asks the leader for that index (Peer
//     ReadIndex) and waits until it has applied it locally.
//   - LEASE: the leader serves at once while it holds a lease
//     (leaseExpiry) and checks the lease again before it replies; without
//     a lease it reads as LINEARIZABLE.
//   - BOUNDED: a replica serves when it can prove its data is no older
//     than the bound: the leader from its lease or its last quorum
//     contact, a follower from the latest append its leader sent under a
//     lease (groupTransport.FreshCommit) once it has applied that append's
//     commit index. Otherwise the read goes to the leader, or fails.
//   - SESSION: a replica serves once it has applied the session token's
//     index; a follower waits followerWait, then sends the read on.
//   - EVENTUAL: the replica serves what it has.

// followerWait is how long a follower waits to apply an index it needs
// for a LINEARIZABLE, BOUNDED or SESSION read before it hands the read to
// the leader. Followers learn new commit indexes with the next append,
// which on an idle group comes every CommitTimeout or so: forwarding is
// then faster than waiting.
const followerWait = 20 * time.Millisecond

// errLeaseLost: a LEASE read lost its lease while it read.
var errLeaseLost = errors.New("node: read lease lapsed during the read")

// readIndexFunc asks the leader node of partition pid for a read index
// (Peer.ReadIndex) and returns it with the log's epoch.
type readIndexFunc func(ctx context.Context, leader string, pid uint32) (index, epoch uint64, err error)

// readProof is what a replica established before serving a read.
type readProof struct {
	// level is the level the read is served at (a LEASE read without a
	// lease is served as LINEARIZABLE).
	level cachev1.Consistency
	// staleness bounds how old the data may be; -1 when unknown
	// (EVENTUAL and SESSION reads on followers prove no bound).
	staleness time.Duration
	// recheck, if set, must pass after the data is read and before the
	// reply is sent.
	recheck func() error
}

// readReady makes this replica ready to serve a read at o's level,
// waiting as the level requires, and returns what it proved. An error
// satisfying isNotLeader means another replica (the leader) should serve
// the read. planRead (readplan.go) decides; readReady gathers the facts
// and carries the decision out.
func (p *partition) readReady(ctx context.Context, o request.Read) (readProof, error) {
	f := p.facts(o)
	plan := planRead(o, f)
	proof := readProof{level: plan.level, staleness: plan.staleness}
	switch plan.step {
	case stepRefuse:
		return proof, plan.err
	case stepForward:
		return proof, p.notLeader()
	case stepConfirm:
		return proof, p.readIndex(ctx)
	case stepAskLeader:
		return proof, p.askLeader(ctx)
	}
	bounded := o.Level == cachev1.Consistency_CONSISTENCY_BOUNDED
	if plan.followerWait {
		if err := p.waitFollower(ctx, plan.waitIndex); err != nil {
			if !bounded || ctx.Err() != nil {
				return proof, err
			}
			return p.boundedLost(ctx, o, f)
		}
	} else if plan.waitIndex > 0 {
		if err := p.fsm.waitApplied(ctx, plan.waitIndex); err != nil {
			return readProof{}, err
		}
	}
	if !plan.freshSince.IsZero() {
		proof.staleness = time.Since(plan.freshSince)
		if bounded && proof.staleness > o.MaxStaleness {
			// The wait took the proof past the bound.
			return p.boundedLost(ctx, o, f)
		}
	}
	if plan.recheckLease {
		// Everything committed before the lease was checked; a pause or
		// a lost lease after this point is caught by the recheck.
		proof.recheck = func() error {
			if !p.leaseValid() {
				return errLeaseLost
			}
			return nil
		}
	}
	return proof, nil
}

// boundedLost carries out a BOUNDED read whose bound this replica proved
// and then lost while it waited to apply: a leader confirms with a round,
// a follower sends the read to the leader, or fails with no leader known.
func (p *partition) boundedLost(ctx context.Context, o request.Read, f replicaFacts) (readProof, error) {
	proof := readProof{level: cachev1.Consistency_CONSISTENCY_BOUNDED}
	if f.leader {
		return proof, p.readIndex(ctx)
	}
	f.now, f.leaderKnown = time.Now(), p.leader() != ""
	if miss := boundedMiss(f, o.MaxStaleness); miss.step == stepRefuse {
		return proof, miss.err
	}
	return proof, p.notLeader()
}

// facts gathers what planRead needs to decide a read at o's level, and
// nothing more: an EVENTUAL read reads no raft state at all.
func (p *partition) facts(o request.Read) replicaFacts {
	f := replicaFacts{partition: p.id}
	switch o.Level {
	case cachev1.Consistency_CONSISTENCY_LINEARIZABLE:
		p.linearizableFacts(&f)
	case cachev1.Consistency_CONSISTENCY_LEASE:
		f.now, f.ready = time.Now(), p.ready()
		f.brokenLease = p.faults != nil && p.faults.brokenLease.Load()
		if f.brokenLease && f.ready {
			break
		}
		if f.leaseExpiry = p.leaseExpiry(f.now); f.now.Before(f.leaseExpiry) {
			f.commitIndex = p.raft.CommitIndex()
		} else {
			p.linearizableFacts(&f)
		}
	case cachev1.Consistency_CONSISTENCY_BOUNDED:
		f.now, f.leader = time.Now(), p.raft.State() == raft.Leader
		if f.leader {
			if f.ready = p.ready(); f.ready {
				if f.leaseExpiry = p.leaseExpiry(f.now); !f.now.Before(f.leaseExpiry) {
					f.quorumContact = p.quorumContact(f.now)
				}
				f.commitIndex = p.raft.CommitIndex()
			}
			break
		}
		f.freshIndex, f.freshAt = p.trans.FreshCommit()
		f.leaderKnown = p.leader() != ""
	case cachev1.Consistency_CONSISTENCY_SESSION:
		f.epoch = p.fsm.epoch.Load()
		for _, t := range o.Tokens {
			if t.GetPartition() != p.id {
				continue
			}
			if t.GetEpoch() != f.epoch {
				p.linearizableFacts(&f)
			} else if f.leader = p.raft.State() == raft.Leader; f.leader {
				f.lastIndex = p.raft.LastIndex()
			}
			break
		}
	}
	return f
}

// linearizableFacts fills in what a LINEARIZABLE read looks at.
func (p *partition) linearizableFacts(f *replicaFacts) {
	f.now = time.Now()
	f.quorumErr = p.quorumLost(f.now)
	f.leader = p.raft.State() == raft.Leader
	f.leaderKnown = f.leader || p.leader() != ""
}

// askLeader serves a LINEARIZABLE read on a follower: it asks the leader
// for a read index and waits until this replica has applied it.
func (p *partition) askLeader(ctx context.Context) error {
	if mustNotWait(ctx) {
		return errWouldBlock
	}
	leader := p.leader()
	qctx, stop := p.untilQuorumLost(ctx)
	idx, epoch, err := p.readIndexAt(qctx, leader, p.id)
	cause := context.Cause(qctx)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		if isNoQuorum(cause) {
			return cause
		}
		// Let the read go to the leader: forwarding follows leader hints,
		// waits out elections and fails fast when cut off.
		p.log.Debug("read index from leader failed", "leader", leader, "err", err)
		return p.notLeader()
	}
	if epoch != p.fsm.epoch.Load() {
		// The leader's log is another incarnation than this replica's:
		// this replica is being replaced. The leader serves.
		return p.notLeader()
	}
	return p.waitFollower(ctx, idx)
}

// waitFollower waits, on a follower, until it has applied index, at most
// followerWait; after that the read goes to the leader.
func (p *partition) waitFollower(ctx context.Context, index uint64) error {
	if p.fsm.applied.Load() >= index {
		return nil
	}
	if mustNotWait(ctx) {
		return errWouldBlock
	}
	wctx, cancel := context.WithTimeout(ctx, followerWait)
	defer cancel()
	if err := p.fsm.waitApplied(wctx, index); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return p.notLeader()
	}
	return nil
}

// readIndex confirms leadership and waits until the state machine has
// applied everything committed before the read started.
func (p *partition) readIndex(ctx context.Context) error {
	idx, err := p.confirm(ctx)
	if err != nil {
		return err
	}
	return p.fsm.waitApplied(ctx, idx)
}

// confirm confirms that this replica leads, after it has committed in its
// term, and returns its commit index from before the confirmation: every
// write acknowledged before the call is at or below it.
//
// The confirmation is a leadership round (internal/readround), which the reads
// of every partition this node leads share: the commit index is read
// before the read joins a round, and the round asks the voters after
// that, which is all a linearizable read needs.
func (p *partition) confirm(ctx context.Context) (uint64, error) {
	if mustNotWait(ctx) {
		return 0, errWouldBlock
	}
	var term, idx uint64
	var waitCtx context.Context // bounds the wait for a ready leader
	for {
		// The term read on both sides of ready and of the commit index:
		// this replica led in it, had committed in it, and the commit
		// index is its own as that leader (or higher).
		term = p.raft.CurrentTerm()
		if p.ready() {
			idx = p.raft.CommitIndex()
			if p.raft.CurrentTerm() == term {
				break
			}
			continue
		}
		if waitCtx == nil {
			// A confirmation stuck waiting for a leader ends after
			// leaderWait.
			var cancel context.CancelFunc
			waitCtx, cancel = context.WithTimeout(ctx, p.leaderWait)
			defer cancel()
		}
		if err := p.awaitLeader(waitCtx); err != nil {
			return 0, err
		}
		// A new leader has not committed in its term yet.
		select {
		case <-p.fsm.nextApply():
		case <-waitCtx.Done():
			return 0, fmt.Errorf("%w: partition %d leader not ready", waitCtx.Err(), p.id)
		case <-p.stop:
			return 0, ErrClosed
		}
	}
	peers, need, err := p.roundPeers()
	if err != nil {
		return 0, err
	}
	// A round ends within the peers' call timeout (an election timeout),
	// so a leader cut off from its quorum refuses at once or within it.
	switch err := p.rounds.Confirm(ctx, p.id, term, peers, need); {
	case err == nil:
	case errors.Is(err, readround.ErrTermMoved):
		return 0, p.notLeader()
	case errors.Is(err, readround.ErrNoQuorum):
		return 0, p.noQuorum(time.Now(), "too few voters confirmed the leader's term for a linearizable read")
	default:
		return 0, fmt.Errorf("%w: partition %d: confirming leadership", err, p.id)
	}
	if p.raft.CurrentTerm() != term {
		return 0, fmt.Errorf("%w: partition %d changed term during a read", ErrUnavailable, p.id)
	}
	return idx, nil
}

// roundPeers returns the voters of this replica's latest configuration
// other than itself, and how many of them must confirm its term for a
// quorum with it.
func (p *partition) roundPeers() (peers []string, need int, err error) {
	peers, self, err := p.voterPeers()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: partition %d: %v", ErrUnavailable, p.id, err)
	}
	if !self {
		// A leader removing itself: the others lead soon.
		return nil, 0, p.notLeader()
	}
	voters := len(peers) + 1
	return peers, voters / 2, nil // a quorum is voters/2+1, this node one of them
}

// tokenAfterRead raises meta's session token to cover everything the read
// that followed readMeta may have seen: the state machine can have
// applied more in between, and a token below a version the caller saw
// would let its next read, on a replica that has applied less, go back
// in time (the monotonic-reads promise of SESSION).
func (p *partition) tokenAfterRead(meta *cachev1.ReadMeta) {
	if v := p.fsm.visible.Load(); v > meta.SessionToken.Index {
		meta.SessionToken.Index = v
	}
}

// readMeta describes the replica serving a read now, with what it proved.
func (p *partition) readMeta(node string, proof readProof) *cachev1.ReadMeta {
	applied := p.fsm.applied.Load()
	commit := p.raft.CommitIndex()
	fresh, freshAt := p.trans.FreshCommit()
	m := &cachev1.ReadMeta{
		Partition:         p.id,
		ServedBy:          node,
		Role:              roleOf(p.raft.State()),
		Consistency:       proof.level,
		AppliedIndex:      applied,
		LeaderCommitIndex: max(commit, fresh),
		SessionToken:      &cachev1.SessionToken{Partition: p.id, Epoch: p.fsm.epoch.Load(), Index: applied},
	}
	staleness := proof.staleness
	if staleness < 0 {
		switch {
		case m.Role == cachev1.Role_ROLE_LEADER:
			// Nothing another leader committed can be older than the
			// last quorum contact.
			now := time.Now()
			if at := p.quorumContact(now); !at.IsZero() && !now.Before(p.leaseFrom(at)) {
				staleness = now.Sub(at)
			} else {
				staleness = 0
			}
		case !freshAt.IsZero() && applied >= fresh:
			staleness = time.Since(freshAt)
		default:
			if lc := p.raft.LastContact(); !lc.IsZero() {
				staleness = time.Since(lc)
			}
		}
	}
	m.Staleness = durationpb.New(max(staleness, 0))
	return m
}

// readIndexAt asks node leader for a read index of partition pid.
func (n *Node) readIndexAt(ctx context.Context, leader string, pid uint32) (index, epoch uint64, err error) {
	c, err := n.peerClient(leader, raftnet.ClassForward)
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, max(4*n.cfg.Raft.ElectionTimeout, 2*time.Second))
	defer cancel()
	resp, err := c.ReadIndex(ctx, &peerv1.ReadIndexRequest{Partition: pid})
	if err != nil {
		return 0, 0, err
	}
	return resp.Index, resp.Epoch, nil
}

// ReadIndex confirms this node leads a partition and returns its commit
// index, for a follower serving a linearizable read.
func (s *peerServer) ReadIndex(ctx context.Context, req *peerv1.ReadIndexRequest) (*peerv1.ReadIndexResponse, error) {
	p := s.n.part(req.Partition)
	if p == nil {
		return nil, s.n.status(&notLeaderError{partition: req.Partition, leader: s.n.leaderOf(req.Partition)})
	}
	if p.raft.State() != raft.Leader {
		return nil, s.n.status(p.notLeader())
	}
	if err := p.quorumLost(time.Now()); err != nil {
		return nil, s.n.status(err)
	}
	idx, err := p.confirm(ctx)
	if err != nil {
		return nil, s.n.status(err)
	}
	return &peerv1.ReadIndexResponse{Index: idx, Epoch: p.fsm.epoch.Load()}, nil
}

// The node's side of leadership rounds (internal/readround): the call a
// round makes to a peer, and the peer's answer.

// confirmTermsAt asks node peer, in one Peer.ConfirmTerms call, which of
// claims it confirms (a readround.CallFunc).
func (n *Node) confirmTermsAt(ctx context.Context, peer string, claims []readround.Claim) ([]bool, error) {
	c, err := n.peerClient(peer, raftnet.ClassRaft)
	if err != nil {
		return nil, err
	}
	req := &peerv1.ConfirmTermsRequest{Partitions: make([]*peerv1.PartitionLeader, len(claims))}
	for i, cl := range claims {
		req.Partitions[i] = &peerv1.PartitionLeader{Partition: cl.Partition, Term: cl.Term}
	}
	resp, err := c.ConfirmTerms(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.GetCurrent(), nil
}

// ConfirmTerms answers a leader's leadership round: whether this node's
// replica of each partition is at the term the leader claims. The term is
// read after the call arrived, which is what the leader's proof needs.
func (s *peerServer) ConfirmTerms(_ context.Context, req *peerv1.ConfirmTermsRequest) (*peerv1.ConfirmTermsResponse, error) {
	resp := &peerv1.ConfirmTermsResponse{Current: make([]bool, len(req.Partitions))}
	for i, c := range req.Partitions {
		if p := s.n.part(c.Partition); p != nil {
			resp.Current[i] = p.raft.CurrentTerm() == c.Term
		}
	}
	return resp, nil
}
