package node

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/elcache/elcache/internal/raftnet"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
)

// Leadership rounds: the quorum round of a linearizable read, shared by
// every partition this node leads (DESIGN.md "Reads").
//
// A leader of term T that hears "still at term T" from a quorum of its
// group's voters, asked after a read arrived, knows that no later leader
// had been elected when the read arrived: electing one takes votes from a
// quorum, every voter moves to the later term before it votes (raft
// persists the term and then answers), and any two quorums share a voter.
// So every write acknowledged before the read is at or below the commit
// index the leader read when it had committed in T.
//
// A round asks each peer once (Peer.ConfirmTerms) for all the partitions
// whose reads joined it, so the cost of a round is one small call per
// peer, whatever the number of partitions and reads. raft's VerifyLeader
// made one round per partition through its heartbeat goroutines: 0.33x
// the throughput of a read served at once. A partition is settled as soon
// as a quorum answered, so a slow or frozen peer delays no read while
// the others answer, and a round ends when every partition in it is
// settled.

// errTermMoved: a peer is at a later term than the leader's: a newer
// election has started or ended.
var errTermMoved = errors.New("node: a voter has moved to a later term")

// errNoQuorumAnswer: too few voters answered a leadership round.
var errNoQuorumAnswer = errors.New("node: too few voters confirmed the leader's term")

// maxRoundCalls caps the leadership-round calls in flight to one peer: a
// peer that does not answer is left out of further rounds until its calls
// end (they time out), instead of piling up calls.
const maxRoundCalls = 4

// termClaim is one read's part in a leadership round: this node leads
// partition at term and needs need of peers (the group's other voters)
// to confirm it.
type termClaim struct {
	partition uint32
	term      uint64
	peers     []string
	need      int
	done      chan error // buffered: the round never blocks on it
}

// confirmTermsFunc asks node peer, in one call, which of the claims in
// req it confirms.
type confirmTermsFunc func(ctx context.Context, peer string, req *peerv1.ConfirmTermsRequest) (*peerv1.ConfirmTermsResponse, error)

// leaderRounds runs this node's leadership rounds, one at a time: a claim
// joins the next round, which starts once the round in flight (if any)
// ends and takes in every claim that joined meanwhile.
type leaderRounds struct {
	call confirmTermsFunc
	// timeout bounds one call to a peer.
	timeout time.Duration
	// ctx ends the calls in flight when the node closes; calls counts them.
	ctx    context.Context
	cancel context.CancelFunc
	calls  sync.WaitGroup

	mu          sync.Mutex
	running     bool
	next        []*termClaim
	outstanding map[string]int // calls in flight, per peer
}

func newLeaderRounds(call confirmTermsFunc, timeout time.Duration) *leaderRounds {
	lr := &leaderRounds{call: call, timeout: timeout, outstanding: make(map[string]int)}
	lr.ctx, lr.cancel = context.WithCancel(context.Background())
	return lr
}

// close ends the calls in flight, and waits for them.
func (lr *leaderRounds) close() {
	lr.cancel()
	lr.calls.Wait()
}

// confirm returns nil once a quorum has confirmed, in a round that
// started after the call, that this node's replica of partition still is
// at term; errTermMoved or errNoQuorumAnswer when the round could not;
// ctx's error when ctx ends first.
func (lr *leaderRounds) confirm(ctx context.Context, partition uint32, term uint64, peers []string, need int) error {
	if need <= 0 {
		return nil
	}
	if need > len(peers) {
		return errNoQuorumAnswer
	}
	c := &termClaim{partition: partition, term: term, peers: peers, need: need, done: make(chan error, 1)}
	lr.mu.Lock()
	lr.next = append(lr.next, c)
	start := !lr.running
	lr.running = true
	lr.mu.Unlock()
	if start {
		go lr.rounds()
	}
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rounds runs rounds while claims are waiting.
func (lr *leaderRounds) rounds() {
	for {
		lr.mu.Lock()
		batch := lr.next
		lr.next = nil
		if len(batch) == 0 {
			lr.running = false
			lr.mu.Unlock()
			return
		}
		lr.mu.Unlock()
		lr.round(batch)
	}
}

// claimGroup is the claims of a round that make the same claim (one
// partition, term and set of voters): the round asks about it once.
type claimGroup struct {
	claims    []*termClaim
	need      int
	peers     int // peers asked, or left out, about it
	answered  int
	confirmed int
	moved     bool
	settled   bool
}

func (g *claimGroup) settle(err error) {
	g.settled = true
	for _, c := range g.claims {
		c.done <- err
	}
}

// roundAnswer is one peer's answer to a round.
type roundAnswer struct {
	groups []*claimGroup // in the order of the request
	resp   *peerv1.ConfirmTermsResponse
	err    error
}

// round asks every peer about the claims in batch and settles them.
func (lr *leaderRounds) round(batch []*termClaim) {
	type claimKey struct {
		partition uint32
		term      uint64
	}
	// Claims of one partition and term differ only if its configuration
	// changed between them: a handful of groups per key at most.
	groups := make(map[claimKey][]*claimGroup)
	byPeer := make(map[string][]*claimGroup)
	unsettled := 0
	for _, c := range batch {
		k := claimKey{c.partition, c.term}
		i := slices.IndexFunc(groups[k], func(g *claimGroup) bool { return slices.Equal(g.claims[0].peers, c.peers) })
		if i < 0 {
			g := &claimGroup{need: c.need, peers: len(c.peers)}
			groups[k] = append(groups[k], g)
			i = len(groups[k]) - 1
			unsettled++
			for _, peer := range c.peers {
				byPeer[peer] = append(byPeer[peer], g)
			}
		}
		g := groups[k][i]
		g.claims = append(g.claims, c)
	}
	answers := make(chan roundAnswer, len(byPeer))
	calls := 0
	for peer, gs := range byPeer {
		lr.mu.Lock()
		busy := lr.outstanding[peer] >= maxRoundCalls
		if !busy {
			lr.outstanding[peer]++
		}
		lr.mu.Unlock()
		if busy {
			answers <- roundAnswer{groups: gs, err: errNoQuorumAnswer}
			calls++
			continue
		}
		req := &peerv1.ConfirmTermsRequest{Partitions: make([]*peerv1.PartitionLeader, len(gs))}
		for i, g := range gs {
			req.Partitions[i] = &peerv1.PartitionLeader{Partition: g.claims[0].partition, Term: g.claims[0].term}
		}
		calls++
		lr.calls.Add(1)
		go func() {
			defer lr.calls.Done()
			ctx, cancel := context.WithTimeout(lr.ctx, lr.timeout)
			resp, err := lr.call(ctx, peer, req)
			cancel()
			lr.mu.Lock()
			lr.outstanding[peer]--
			lr.mu.Unlock()
			if err == nil && len(resp.Current) != len(gs) {
				err = errors.New("node: a leadership round's answer does not match its question")
			}
			answers <- roundAnswer{groups: gs, resp: resp, err: err}
		}()
	}
	for ; unsettled > 0 && calls > 0; calls-- {
		a := <-answers
		for i, g := range a.groups {
			if g.settled {
				continue
			}
			g.answered++
			switch {
			case a.err != nil:
			case a.resp.Current[i]:
				g.confirmed++
			default:
				g.moved = true
			}
			switch {
			case g.confirmed >= g.need:
				g.settle(nil)
			case g.answered == g.peers && g.moved:
				g.settle(errTermMoved)
			case g.answered == g.peers:
				g.settle(errNoQuorumAnswer)
			default:
				continue
			}
			unsettled--
		}
	}
}

// confirmTermsAt asks node peer which of the claims in req it confirms.
func (n *Node) confirmTermsAt(ctx context.Context, peer string, req *peerv1.ConfirmTermsRequest) (*peerv1.ConfirmTermsResponse, error) {
	c, err := n.peerClient(peer, raftnet.ClassRaft)
	if err != nil {
		return nil, err
	}
	return c.ConfirmTerms(ctx, req)
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
