package readround

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// ErrTermMoved: a peer is at a later term than the leader's: a newer
// election has started or ended.
var ErrTermMoved = errors.New("readround: a voter has moved to a later term")

// ErrNoQuorum: too few voters answered a leadership round.
var ErrNoQuorum = errors.New("readround: too few voters confirmed the leader's term")

// maxPeerCalls caps the leadership-round calls in flight to one peer: a
// peer that does not answer is left out of further rounds until its calls
// end (they time out), instead of piling up calls.
const maxPeerCalls = 4

// Claim is what a round asks a peer about one partition: that the
// node's replica of Partition leads at Term.
type Claim struct {
	Partition uint32
	Term      uint64
}

// CallFunc asks node peer, in one call, which of claims it confirms:
// current[i] reports whether the peer's replica of claims[i].Partition is
// at claims[i].Term, read after the call arrived.
type CallFunc func(ctx context.Context, peer string, claims []Claim) (current []bool, err error)

// Rounds runs a node's leadership rounds, one at a time: a read joins the
// next round, which starts once the round in flight (if any) ends and
// takes in every read that joined meanwhile.
type Rounds struct {
	call CallFunc
	// timeout bounds one call to a peer.
	timeout time.Duration
	// ctx ends the calls in flight when the node closes; calls counts them.
	ctx    context.Context
	cancel context.CancelFunc
	calls  sync.WaitGroup

	mu          sync.Mutex
	running     bool
	next        []*waiter
	outstanding map[string]int // calls in flight, per peer
}

// New returns the leadership rounds of a node that asks its peers with
// call, each call bounded by timeout. Close ends them.
func New(call CallFunc, timeout time.Duration) *Rounds {
	r := &Rounds{call: call, timeout: timeout, outstanding: make(map[string]int)}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Close ends the calls in flight, and waits for them.
func (r *Rounds) Close() {
	r.cancel()
	r.calls.Wait()
}

// waiter is one read's part in a leadership round: this node leads
// partition at term and needs need of peers (the group's other voters)
// to confirm it.
type waiter struct {
	partition uint32
	term      uint64
	peers     []string
	need      int
	done      chan error // buffered: the round never blocks on it
}

// Confirm returns nil once need of peers have confirmed, in a round that
// started after the call, that this node's replica of partition still is
// at term; ErrTermMoved or ErrNoQuorum when the round could not; ctx's
// error when ctx ends first.
func (r *Rounds) Confirm(ctx context.Context, partition uint32, term uint64, peers []string, need int) error {
	if need <= 0 {
		return nil
	}
	if need > len(peers) {
		return ErrNoQuorum
	}
	w := &waiter{partition: partition, term: term, peers: peers, need: need, done: make(chan error, 1)}
	r.mu.Lock()
	r.next = append(r.next, w)
	start := !r.running
	r.running = true
	r.mu.Unlock()
	if start {
		go r.rounds()
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rounds runs rounds while reads are waiting.
func (r *Rounds) rounds() {
	for {
		r.mu.Lock()
		batch := r.next
		r.next = nil
		if len(batch) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		r.round(batch)
	}
}

// claimGroup is the waiters of a round that make the same claim (one
// partition, term and set of voters): the round asks about it once.
type claimGroup struct {
	waiters   []*waiter
	need      int
	peers     int // peers asked, or left out, about it
	answered  int
	confirmed int
	moved     bool
	settled   bool
}

func (g *claimGroup) settle(err error) {
	g.settled = true
	for _, w := range g.waiters {
		w.done <- err
	}
}

// answer is one peer's answer to a round.
type answer struct {
	groups  []*claimGroup // in the order of the call's claims
	current []bool
	err     error
}

// round asks every peer about the claims of batch and settles them.
func (r *Rounds) round(batch []*waiter) {
	// Waiters of one partition and term differ only if its configuration
	// changed between them: a handful of groups per claim at most.
	groups := make(map[Claim][]*claimGroup)
	byPeer := make(map[string][]*claimGroup)
	unsettled := 0
	for _, w := range batch {
		k := Claim{w.partition, w.term}
		i := slices.IndexFunc(groups[k], func(g *claimGroup) bool { return slices.Equal(g.waiters[0].peers, w.peers) })
		if i < 0 {
			g := &claimGroup{need: w.need, peers: len(w.peers)}
			groups[k] = append(groups[k], g)
			i = len(groups[k]) - 1
			unsettled++
			for _, peer := range w.peers {
				byPeer[peer] = append(byPeer[peer], g)
			}
		}
		g := groups[k][i]
		g.waiters = append(g.waiters, w)
	}
	answers := make(chan answer, len(byPeer))
	calls := 0
	for peer, gs := range byPeer {
		r.mu.Lock()
		busy := r.outstanding[peer] >= maxPeerCalls
		if !busy {
			r.outstanding[peer]++
		}
		r.mu.Unlock()
		if busy {
			answers <- answer{groups: gs, err: ErrNoQuorum}
			calls++
			continue
		}
		claims := make([]Claim, len(gs))
		for i, g := range gs {
			claims[i] = Claim{Partition: g.waiters[0].partition, Term: g.waiters[0].term}
		}
		calls++
		r.calls.Add(1)
		go func() {
			defer r.calls.Done()
			ctx, cancel := context.WithTimeout(r.ctx, r.timeout)
			current, err := r.call(ctx, peer, claims)
			cancel()
			r.mu.Lock()
			r.outstanding[peer]--
			r.mu.Unlock()
			if err == nil && len(current) != len(gs) {
				err = errors.New("readround: a peer's answer does not match its question")
			}
			answers <- answer{groups: gs, current: current, err: err}
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
			case a.current[i]:
				g.confirmed++
			default:
				g.moved = true
			}
			switch {
			case g.confirmed >= g.need:
				g.settle(nil)
			case g.answered == g.peers && g.moved:
				g.settle(ErrTermMoved)
			case g.answered == g.peers:
				g.settle(ErrNoQuorum)
			default:
				continue
			}
			unsettled--
		}
	}
}
