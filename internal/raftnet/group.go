package raftnet

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
)

//lint:file-ignore SA1019 the transport carries raft's RPC structs field by field, deprecated fields included (older raft versions read them).

// One Raft group's Transport: its raft.Transport plumbing, traffic
// counters, and the bookkeeping the node's read levels need: per follower
// the send time of the latest accepted append (Match, for leases), the
// leader's commit index as a follower saw it (LeaderCommit, FreshCommit,
// for bounded staleness) and leadership transfers (TransferAt).

// Stats counts one group transport's traffic.
type Stats struct {
	// Sent: unary heartbeats, other unary appends, pipelined appends,
	// votes and pre-votes, snapshots and TimeoutNows.
	Heartbeats, Appends, Pipelined, Votes, PreVotes, Snapshots, TimeoutNows uint64
	// Splits counts the extra messages of appends too large for one.
	Splits uint64
	// HeartbeatsFast counts received heartbeats handed to raft's heartbeat
	// handler, bypassing the consumer channel.
	HeartbeatsFast uint64
	// Folded counts pipelined appends sent in a Heartbeats call instead
	// (appendPipeline.fold); they are also in Pipelined.
	Folded uint64
}

// Transport is one Raft group's raft.Transport on this node.
type Transport struct {
	rn        *Net
	group     uint64
	consumeCh chan raft.RPC

	// ctx parents this group's outgoing RPCs and ends the wait of incoming
	// ones; Close cancels it.
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once

	hbMu        sync.Mutex
	heartbeatFn func(raft.RPC)

	mu        sync.Mutex
	closed    bool
	pipelines map[*appendPipeline]struct{}
	sendTerm  uint64               // the highest term this node sent appends or votes in
	match     map[string]peerMatch // acks in sendTerm

	commitMu       sync.Mutex
	leaderCommit   uint64
	leaderCommitAt time.Time
	freshCommit    uint64    // from appends sent under a leader lease
	freshAt        time.Time // when the latest such append was sent, as seen here

	// leaseFn reports whether this node, as leader, holds a read lease
	// (see partition.leaseValid); appends sent under one say so.
	leaseFn atomic.Pointer[func() bool]
	// transferAt is when this node last sent TimeoutNow (a leadership
	// transfer) in the group; see partition.leaseValid.
	transferMu sync.Mutex
	transferAt time.Time

	stats struct {
		heartbeats, appends, pipelined, splits, votes, preVotes, snapshots, timeoutNows atomic.Uint64
		heartbeatsFast, folded                                                          atomic.Uint64
	}
}

// peerMatch is what the leader knows of one follower in sendTerm.
type peerMatch struct {
	index  uint64
	sentAt time.Time
}

var (
	_ raft.Transport   = (*Transport)(nil)
	_ raft.WithPreVote = (*Transport)(nil)
	_ raft.WithClose   = (*Transport)(nil)
)

func newGroupTransport(rn *Net, group uint64) *Transport {
	ctx, cancel := context.WithCancel(rn.ctx)
	return &Transport{
		rn:        rn,
		group:     group,
		consumeCh: make(chan raft.RPC),
		ctx:       ctx,
		cancel:    cancel,
		pipelines: make(map[*appendPipeline]struct{}),
		match:     make(map[string]peerMatch),
	}
}

// Close releases the group from the Net, ends its pipelines and
// outgoing RPCs, and fails incoming RPCs still waiting for raft. It is
// idempotent; raft calls it at the end of Shutdown.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.rn.release(t)
		t.cancel()
		t.mu.Lock()
		t.closed = true
		pipelines := t.pipelines
		t.pipelines = nil
		t.mu.Unlock()
		for p := range pipelines {
			p.Close()
		}
	})
	return nil
}

// Consumer implements raft.Transport.
func (t *Transport) Consumer() <-chan raft.RPC { return t.consumeCh }

// LocalAddr implements raft.Transport: this node's id.
func (t *Transport) LocalAddr() raft.ServerAddress {
	return raft.ServerAddress(t.rn.cfg.LocalID)
}

// EncodePeer implements raft.Transport. Addresses are node ids and need no
// encoding.
func (t *Transport) EncodePeer(_ raft.ServerID, addr raft.ServerAddress) []byte {
	return []byte(addr)
}

// DecodePeer implements raft.Transport.
func (t *Transport) DecodePeer(buf []byte) raft.ServerAddress {
	return raft.ServerAddress(buf)
}

// SetHeartbeatHandler implements raft.Transport.
func (t *Transport) SetHeartbeatHandler(cb func(raft.RPC)) {
	t.hbMu.Lock()
	t.heartbeatFn = cb
	t.hbMu.Unlock()
}

// Match reports, for a peer this node leads, the highest log index the
// peer is known to hold identical to this node's log (raft's matchIndex:
// the last entry of the latest successful non-heartbeat append) and the
// monotonic send time of the latest append of any kind, heartbeats
// included, that the peer accepted. Both belong to the latest term this
// node sent appends or votes in: the first send in a newer term (an
// election, a new leadership) resets every peer to zero.
func (t *Transport) Match(nodeID string) (index uint64, ackSentAt time.Time) {
	t.mu.Lock()
	m := t.match[nodeID]
	t.mu.Unlock()
	return m.index, m.sentAt
}

// SetLeaseCheck installs the function that tells whether this node holds
// a read lease; until it is set, no append claims one.
func (t *Transport) SetLeaseCheck(fn func() bool) {
	t.leaseFn.Store(&fn)
}

// leaseHeld reports whether this node holds a read lease now.
func (t *Transport) leaseHeld() bool {
	fn := t.leaseFn.Load()
	return fn != nil && (*fn)()
}

// TransferAt reports when this node last sent TimeoutNow in the group (a
// leadership transfer it started), or zero.
func (t *Transport) TransferAt() time.Time {
	t.transferMu.Lock()
	defer t.transferMu.Unlock()
	return t.transferAt
}

// FreshCommit reports, on a follower, the highest commit index carried by
// an accepted append that its leader sent while holding a read lease, and
// when the leader checked that lease, on this node's monotonic clock: the
// append's arrival less its age (appendAge). No other leader existed then,
// so every write acknowledged before then is at or below index.
func (t *Transport) FreshCommit() (index uint64, at time.Time) {
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	return t.freshCommit, t.freshAt
}

// wireAppend converts an append (or a part of one) handed over by raft at
// handed for the wire. lease says whether this node held a read lease
// when raft handed it over: its commit index was current then.
func (t *Transport) wireAppend(part *raft.AppendEntriesRequest, handed time.Time, lease bool) *peerv1.AppendEntriesRequest {
	out := appendRequestToProto(t.group, part)
	if lease && !isHeartbeat(part) {
		out.LeaderLease = true
		out.QueuedNanos = int64(time.Since(handed))
		out.LeaseCheckedUnixNanos = handed.UnixNano()
	}
	return out
}

// LeaderCommit reports, on a follower, the highest LeaderCommitIndex
// carried by an append this node accepted (heartbeats carry none), and
// when the latest accepted append arrived. Commit indexes never go back,
// so index was committed by that time.
func (t *Transport) LeaderCommit() (index uint64, at time.Time) {
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	return t.leaderCommit, t.leaderCommitAt
}

// Stats returns the transport's traffic counters.
func (t *Transport) Stats() Stats {
	return Stats{
		Heartbeats:     t.stats.heartbeats.Load(),
		Appends:        t.stats.appends.Load(),
		Pipelined:      t.stats.pipelined.Load(),
		Splits:         t.stats.splits.Load(),
		Votes:          t.stats.votes.Load(),
		PreVotes:       t.stats.preVotes.Load(),
		Snapshots:      t.stats.snapshots.Load(),
		TimeoutNows:    t.stats.timeoutNows.Load(),
		HeartbeatsFast: t.stats.heartbeatsFast.Load(),
		Folded:         t.stats.folded.Load(),
	}
}

// isHeartbeat is net_transport.go's test: raft's heartbeat goroutine sends
// a term and a leader and nothing else.
func isHeartbeat(req *raft.AppendEntriesRequest) bool {
	leader := req.Addr
	if len(leader) == 0 {
		leader = req.Leader
	}
	return req.Term != 0 && len(leader) > 0 &&
		req.PrevLogEntry == 0 && req.PrevLogTerm == 0 &&
		len(req.Entries) == 0 && req.LeaderCommitIndex == 0
}

// noteTerm forgets every peer's match when this node sends in a newer term.
func (t *Transport) noteTerm(term uint64) {
	t.mu.Lock()
	t.noteTermLocked(term)
	t.mu.Unlock()
}

func (t *Transport) noteTermLocked(term uint64) {
	if term > t.sendTerm {
		t.sendTerm = term
		clear(t.match)
	}
}

// recordAck updates the peer's match after an append it answered.
func (t *Transport) recordAck(peer string, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse, sent time.Time) {
	if !resp.Success {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.noteTermLocked(req.Term)
	if req.Term < t.sendTerm {
		return
	}
	m := t.match[peer]
	if !isHeartbeat(req) {
		idx := req.PrevLogEntry
		if n := len(req.Entries); n > 0 {
			idx = req.Entries[n-1].Index
		}
		m.index = max(m.index, idx)
	}
	if sent.After(m.sentAt) {
		m.sentAt = sent
	}
	t.match[peer] = m
}
