package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Quorum contact and what rests on it: the send time of the latest append
// a quorum of the group accepted (quorumContact), the leader's read lease
// built on it (leaseExpiry), and the refusal of a replica cut off from its
// quorum (quorumLost).
//
// A replica that has not heard from a quorum of its group within the
// election timeout refuses at once what needs a quorum (LINEARIZABLE and
// LEASE reads, writes), with a notRunError, instead of letting it wait for
// a leader that it cannot reach or that cannot be elected (DESIGN.md
// "Requests during elections"). A replica that still hears from a quorum
// waits for an election as before.

// noQuorumError: a replica has not heard from a quorum of its group's
// voters within the election timeout, or gossip sees too few of them up.
type noQuorumError struct {
	partition uint32
	// ago is the time since the last contact with a quorum; never says
	// there was none since this node started, ago before.
	ago   time.Duration
	never bool
	// detail, if set, is a further reason.
	detail string
}

func (e *noQuorumError) Error() string {
	contact := fmt.Sprintf("last contact with a quorum %v ago", roundAgo(e.ago))
	if e.never {
		contact = fmt.Sprintf("no contact with a quorum since this node started %v ago", roundAgo(e.ago))
	}
	msg := fmt.Sprintf("node: partition %d: no quorum: %s", e.partition, contact)
	if e.detail != "" {
		msg += " (" + e.detail + ")"
	}
	return msg
}

// Is makes a noQuorumError an ErrUnavailable.
func (e *noQuorumError) Is(target error) bool { return target == ErrUnavailable }

// roundAgo rounds d for a message: 2.1s, 480ms.
func roundAgo(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// lastQuorumContact returns when this replica last heard from a quorum of
// its group's voters (itself counted as now if it is one), and whether
// that is only this node's start: no quorum has been heard from since.
//
//   - A leader counts the appends a quorum accepted in its term
//     (quorumContact, the lease's evidence).
//   - Otherwise, and for a leader no quorum has answered yet in its term,
//     a voter counts when this node last got Raft traffic from it, of any
//     group (raftNet.heardAt); one never heard from counts from this
//     node's start, so that a starting node waits for its peers.
//   - A follower also counts its leader, as a quorum: a leader that
//     hears from no quorum steps down within LeaderLeaseTimeout, and the
//     follower then forgets it within a heartbeat timeout. (Not
//     raft.LastContact: raft sets it when it steps down and when it
//     grants a vote, neither of which is contact with a quorum.)
func (p *partition) lastQuorumContact(now time.Time) (at time.Time, never bool) {
	leader := p.raft.State() == raft.Leader
	if leader {
		if at := p.quorumContact(now); !at.IsZero() {
			return at, false
		}
	}
	peers, self, err := p.voterPeers()
	if err != nil {
		return now, false
	}
	rn := p.net
	heard := make([]time.Time, 0, len(peers)+1)
	if self {
		heard = append(heard, now)
	}
	for _, peer := range peers {
		heard = append(heard, rn.HeardAt(peer))
	}
	if len(heard) == 0 {
		// No configuration yet (a replica waiting to be added): nothing
		// to judge by.
		return now, false
	}
	// Newest first: the quorum-th newest is the one a quorum has given.
	slices.SortFunc(heard, func(a, b time.Time) int { return b.Compare(a) })
	at = heard[len(heard)/2]
	if !leader {
		if _, id := p.raft.LeaderWithID(); id != "" {
			if lc := rn.HeardAt(string(id)); lc.After(at) {
				at = lc
			}
		}
	}
	return at, at.Equal(rn.Started())
}

// quorumLost returns a notRunError wrapping a *noQuorumError if this
// replica has not heard from a quorum of its group within the election
// timeout, and nil otherwise.
func (p *partition) quorumLost(now time.Time) error {
	at, never := p.lastQuorumContact(now)
	if now.Sub(at) <= p.raftCfg.ElectionTimeout {
		return nil
	}
	return notRunError{&noQuorumError{partition: p.id, ago: now.Sub(at), never: never}}
}

// noQuorum returns the refusal of a replica that, by detail, cannot reach
// a quorum, with its last contact with one.
func (p *partition) noQuorum(now time.Time, detail string) error {
	at, never := p.lastQuorumContact(now)
	return notRunError{&noQuorumError{partition: p.id, ago: max(now.Sub(at), 0), never: never, detail: detail}}
}

// isNoQuorum reports whether err is a refusal for want of a quorum.
func isNoQuorum(err error) bool {
	var nq *noQuorumError
	return errors.As(err, &nq)
}

// untilQuorumLost returns a context that is also cancelled, with the
// refusal of quorumLost as its cause, once this replica loses its quorum:
// a call to another node (a forwarded request, a read index) then stops
// waiting for an answer that cannot come. It checks every eighth of an
// election timeout, on a timer, so a call that ends sooner costs no
// check. stop releases it.
func (p *partition) untilQuorumLost(ctx context.Context) (qctx context.Context, stop func()) {
	w := &quorumWatch{p: p, every: max(p.raftCfg.ElectionTimeout/8, 5*time.Millisecond)}
	w.ctx, w.cancel = context.WithCancelCause(ctx)
	w.mu.Lock()
	w.t = time.AfterFunc(w.every, w.check)
	w.mu.Unlock()
	return w.ctx, w.stop
}

// quorumWatch is an untilQuorumLost in progress.
type quorumWatch struct {
	p      *partition
	every  time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu sync.Mutex
	t  *time.Timer
}

func (w *quorumWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		return
	}
	if err := w.p.quorumLost(time.Now()); err != nil {
		w.cancel(err)
		return
	}
	w.t.Reset(w.every)
}

func (w *quorumWatch) stop() {
	w.cancel(context.Canceled)
	w.mu.Lock()
	w.t.Stop()
	w.mu.Unlock()
}

// leaseDuration is how long after a quorum of followers accepted an append
// sent at t the leader may assume that no other leader exists. A
// hashicorp/raft follower denies votes while it knows a leader and forgets
// it only when it has heard nothing for a heartbeat timeout, so no quorum
// can elect anyone before t plus the smaller of the heartbeat and election
// timeouts. An eighth of that is kept as a margin for clocks that run at
// different rates and for timer slack.
//
// Two things could shorten that window, and both are closed: a leadership
// transfer (voters then ignore the leader they know), handled in
// leaseExpiry; and a follower that restarts (it forgets its leader), which
// denies votes for a heartbeat timeout after it starts
// (raftNetConfig.VoteAfter).
func leaseDuration(c RaftConfig) time.Duration {
	d := min(c.HeartbeatTimeout, c.ElectionTimeout)
	return d - d/8
}

// quorumContact returns the send time of the append a quorum of the
// group's voters (this node counted as now) has most recently accepted in
// this node's current term, or zero if this replica is not a voting leader
// or no quorum has answered yet in this term.
func (p *partition) quorumContact(now time.Time) time.Time {
	if p.raft.State() != raft.Leader {
		return time.Time{}
	}
	peers, self, err := p.voterPeers()
	if err != nil || !self {
		return time.Time{}
	}
	acks := make([]time.Time, 0, 8) // on the stack for up to 7 voters
	acks = append(acks, now)
	for _, peer := range peers {
		_, at := p.trans.Match(peer)
		acks = append(acks, at)
	}
	// Newest first: the quorum-th newest ack is the one a quorum has
	// given at or after.
	slices.SortFunc(acks, func(a, b time.Time) int { return b.Compare(a) })
	return acks[len(acks)/2]
}

// leaseExpiry returns when this replica's read lease ends, or zero if it
// holds none: it must lead, have committed in its term, and a quorum must
// have accepted an append it sent in this term. A leadership transfer it
// started lets voters elect the target while they still know this leader,
// so acks sent before the transfer's election can have ended (two election
// timeouts after TimeoutNow) do not count.
func (p *partition) leaseExpiry(now time.Time) time.Time {
	return p.leaseFrom(p.quorumContact(now))
}

// leaseFrom is leaseExpiry for the quorum contact at.
func (p *partition) leaseFrom(at time.Time) time.Time {
	if !p.ready() {
		return time.Time{}
	}
	if at.IsZero() {
		return time.Time{}
	}
	if t := p.trans.TransferAt(); !t.IsZero() && at.Before(t.Add(2*p.raftCfg.ElectionTimeout)) {
		return time.Time{}
	}
	return at.Add(p.leaseDur)
}

// leaseValid reports whether this replica holds a read lease now.
func (p *partition) leaseValid() bool {
	now := time.Now()
	return now.Before(p.leaseExpiry(now))
}

// voterPeers returns the voters of this replica's latest configuration
// other than this node, and whether this node is one.
// Every read at a leader asks, so the answer is kept for the
// configuration it came from; the caller must not change peers.
func (p *partition) voterPeers() (peers []string, self bool, err error) {
	f := p.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, false, err
	}
	servers := f.Configuration().Servers
	if len(servers) == 0 {
		return nil, false, nil
	}
	if v := p.voters.Load(); v != nil && v.first == &servers[0] && v.n == len(servers) {
		return v.peers, v.self, nil
	}
	for _, s := range servers {
		switch {
		case s.Suffrage != raft.Voter:
		case string(s.ID) == p.self:
			self = true
		default:
			peers = append(peers, string(s.ID))
		}
	}
	peers = peers[:len(peers):len(peers)] // an append by a caller copies
	p.voters.Store(&voterSet{first: &servers[0], n: len(servers), peers: peers, self: self})
	return peers, self, nil
}

// voterSet is voterPeers' answer for one configuration. Raft publishes
// each configuration it adopts as a new copy and never changes one in
// place, so the address of its first server names it (and, held here,
// cannot be reused for another while it is).
type voterSet struct {
	first *raft.Server
	n     int
	peers []string
	self  bool
}
