package node

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/elcache/elcache/internal/request"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The Changes stream: a replica's change feed (changefeed.go) sent to a
// client's near cache, with progress marks that prove how fresh the
// replica's data is (DESIGN.md "The near cache").

const (
	// maxChangesPerMessage bounds the changes of one partition in one
	// message; the rest follow in the next.
	maxChangesPerMessage = 4096
	// changesRecheck is how often a stream checks that the replicas it
	// follows are still here, when nothing else wakes it.
	changesRecheck = 250 * time.Millisecond
	// markHorizon is the oldest freshness a progress mark reports: older
	// proofs are reported as none.
	markHorizon = time.Minute
)

// changeSub is one partition followed on a Changes stream.
type changeSub struct {
	id    uint64 // the client's (ChangeSubscription.id)
	p     *partition
	cur   cursor
	reset bool   // the next message says reset
	sent  uint64 // the through of the last message sent
	epoch uint64 // the epoch of the last message sent
	// dirty is set by the feed when it has news; stop ends the watch.
	dirty atomic.Bool
	stop  func()
}

// end stops the subscription's watch of its feed.
func (s *changeSub) end() {
	if s.stop != nil {
		s.stop()
	}
}

// Changes serves a near cache's stream of partition changes.
func (s *cacheServer) Changes(stream cachev1.Cache_ChangesServer) error {
	n := s.n
	ctx := stream.Context()
	// The receiving goroutine ends when the stream does: its context is
	// cancelled once this handler returns, and Recv fails.
	reqs := make(chan *cachev1.ChangesRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	wake := make(chan struct{}, 1)
	subs := make(map[uint32]*changeSub)
	n.stats.changeStreams.Add(1)
	defer func() {
		n.stats.changeStreams.Add(-1)
		for _, sub := range subs {
			sub.end()
		}
	}()
	recheck := time.NewTicker(changesRecheck)
	defer recheck.Stop()
	var buf []change
	for {
		var ping uint64
		var out []*cachev1.PartitionChanges
		all := false // look at every subscription, not only those with news
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.stop:
			return toStatus(ErrClosed)
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case r := <-reqs:
			for _, pid := range r.Unsubscribe {
				if sub := subs[pid]; sub != nil {
					sub.end()
					delete(subs, pid)
				}
			}
			for _, req := range r.Subscribe {
				if old := subs[req.Partition]; old != nil {
					old.end()
					delete(subs, req.Partition)
				}
				pc, sub := n.subscribe(req)
				if pc != nil {
					out = append(out, pc)
					continue
				}
				sub.dirty.Store(true) // its first message: a restart, or the changes since
				unwatch := sub.p.fsm.feed.watch(func() {
					sub.dirty.Store(true)
					select {
					case wake <- struct{}{}:
					default:
					}
				})
				n.stats.changeSubs.Add(1)
				sub.stop = func() {
					unwatch()
					n.stats.changeSubs.Add(-1)
				}
				subs[req.Partition] = sub
			}
			ping = r.Ping
			all = ping != 0
		case <-wake:
		case <-recheck.C:
			all = true
		}
		for pid, sub := range subs {
			if !sub.dirty.Swap(false) && !all {
				continue
			}
			var pc *cachev1.PartitionChanges
			pc, buf = n.nextChanges(pid, sub, ping != 0, buf[:0])
			if pc != nil {
				out = append(out, pc)
			}
			if pc != nil && pc.Error != "" {
				sub.end()
				delete(subs, pid)
			} else if pc != nil && len(pc.KeyHashes) == maxChangesPerMessage {
				sub.dirty.Store(true) // more to send
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
		if len(out) == 0 && ping == 0 {
			continue
		}
		if err := stream.Send(&cachev1.ChangesResponse{Partitions: out, Ping: ping}); err != nil {
			return err
		}
	}
}

// subscribe starts following a partition for a stream: it returns the
// subscription, or a message that ends it at once (no replica here).
func (n *Node) subscribe(req *cachev1.ChangeSubscription) (*cachev1.PartitionChanges, *changeSub) {
	pid := req.Partition
	if pid >= n.ring.Count() {
		return &cachev1.PartitionChanges{Partition: pid, ServedBy: n.cfg.NodeName, Subscription: req.Id,
			Error: fmt.Sprintf("no partition %d: the cluster has partitions 0 to %d", pid, n.ring.Count()-1)}, nil
	}
	p := n.part(pid)
	if p == nil || p.displaced.Load() {
		return &cachev1.PartitionChanges{Partition: pid, ServedBy: n.cfg.NodeName, Subscription: req.Id,
			Error: fmt.Sprintf("node %s holds no replica of partition %d", n.cfg.NodeName, pid)}, nil
	}
	feed := p.fsm.feed
	if req.FromIndex > 0 && req.Epoch == p.fsm.epoch.Load() {
		if cur, _, ok := feed.from(req.FromIndex); ok {
			return nil, &changeSub{id: req.Id, p: p, cur: cur}
		}
	}
	cur, _, _ := feed.from(math.MaxUint64) // the feed's end
	return nil, &changeSub{id: req.Id, p: p, cur: cur, reset: true}
}

// nextChanges returns the next message of a subscription: its new changes,
// a reset, a progress mark (mark: a ping asks for one), or an error that
// ends it; nil when there is nothing to say. buf is scratch space.
func (n *Node) nextChanges(pid uint32, sub *changeSub, mark bool, buf []change) (*cachev1.PartitionChanges, []change) {
	p := sub.p
	if cur := n.part(pid); cur != p || p.displaced.Load() {
		return &cachev1.PartitionChanges{Partition: pid, ServedBy: n.cfg.NodeName, Subscription: sub.id,
			Error: fmt.Sprintf("node %s no longer holds a replica of partition %d", n.cfg.NodeName, pid)}, buf
	}
	var proof replicaFacts
	if mark {
		// The facts are taken after the ping arrived, and before the feed
		// is read: what they prove holds of every index read after them.
		proof = p.facts(request.Read{Level: cachev1.Consistency_CONSISTENCY_BOUNDED, MaxStaleness: markHorizon})
	}
	feed := p.fsm.feed
	epoch := p.fsm.epoch.Load()
	changes, next, through, ok := feed.read(sub.cur, buf, maxChangesPerMessage)
	if !ok {
		sub.cur, through, _ = feed.from(math.MaxUint64)
		sub.reset, changes = true, changes[:0]
	} else {
		sub.cur = next
	}
	if p.faults != nil && p.faults.brokenChanges.Load() {
		changes = changes[:0] // self-test only: invalidations are lost
	}
	if epoch != sub.epoch && sub.sent > 0 {
		// The log was recreated: earlier indexes say nothing of it.
		sub.reset = true
	}
	if !sub.reset && !mark && len(changes) == 0 && through <= sub.sent {
		return nil, changes
	}
	pc := &cachev1.PartitionChanges{Partition: pid, Epoch: epoch, Through: through, Restart: sub.reset,
		ServedBy: n.cfg.NodeName, Role: roleOf(p.raft.State()), Subscription: sub.id}
	if len(changes) > 0 {
		n.stats.changesSent.Add(uint64(len(changes)))
		pc.KeyHashes = make([]uint64, len(changes))
		pc.Indexes = make([]uint64, len(changes))
		for i, c := range changes {
			pc.KeyHashes[i], pc.Indexes[i] = c.hash, c.index
		}
	}
	if mark {
		plan := planBounded(proof, markHorizon)
		if plan.step == stepServe && through >= plan.waitIndex {
			staleness := time.Duration(0)
			if !plan.freshSince.IsZero() {
				staleness = proof.now.Sub(plan.freshSince)
			}
			pc.FreshStaleness = durationpb.New(max(staleness, 0))
		}
	}
	sub.reset, sub.sent, sub.epoch = false, max(through, sub.sent), epoch
	return pc, changes
}
