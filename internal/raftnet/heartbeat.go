package raftnet

import (
	"context"
	"fmt"
	"sync"
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Coalesced heartbeats. Every group's leader sends a heartbeat to each
// follower every HeartbeatTimeout/10 or so, and every CommitTimeout an
// empty append down each follower's pipeline; a node leading 20 of 64
// groups would send hundreds of tiny messages a second, each a write(2)
// and a wake-up at both ends, and idle CPU would go to syscalls and
// HTTP/2 framing. Instead, all the heartbeats a node has for one peer
// travel in one Heartbeats call, at most one call per
// Config.HeartbeatInterval: a heartbeat waits for the next call to
// its peer, so the number of calls between two nodes no longer grows with
// the number of groups they share. An empty append that repeats what the
// follower already acknowledged on the pipeline (same term, same last
// entry, same commit index: raft sends one every CommitTimeout to an idle
// follower) rides the same call (appendPipeline.fold).
//
// One Heartbeats call is in flight to a peer at a time. The answer a
// heartbeat gets came from a call sent after it was queued, so a
// coalesced answer never confirms leadership with news older than the
// question (the lease counts on that). The send time the
// leader records for a heartbeat is when raft handed it over, earlier
// than the call: the lease it backs ends no later than with unbatched
// heartbeats.

// hbCall is one group's heartbeat (or folded append) waiting for its call.
type hbCall struct {
	req  *peerv1.AppendEntriesRequest
	done chan hbResult
}

type hbResult struct {
	resp *peerv1.AppendEntriesResponse
	err  error
}

// hbPeer is the coalescing state of one peer.
type hbPeer struct {
	pending  []*hbCall
	sending  bool        // a Heartbeats call to the peer is in flight
	timer    *time.Timer // armed to send pending at the next interval
	lastSent time.Time   // when the latest call went out
}

// heartbeats coalesces heartbeats per peer.
type heartbeats struct {
	rn       *Net
	interval time.Duration

	mu    sync.Mutex
	peers map[string]*hbPeer
}

// heartbeat sends req (a heartbeat of some group, or a folded append) to
// peer in the next call and returns its answer.
func (rn *Net) heartbeat(ctx context.Context, peer string, req *peerv1.AppendEntriesRequest) (*peerv1.AppendEntriesResponse, error) {
	call := &hbCall{req: req, done: make(chan hbResult, 1)}
	rn.hb.enqueue(peer, call)
	select {
	case r := <-call.done:
		return r.resp, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (h *heartbeats) enqueue(peer string, call *hbCall) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.peers == nil {
		h.peers = make(map[string]*hbPeer)
	}
	p := h.peers[peer]
	if p == nil {
		p = &hbPeer{}
		h.peers[peer] = p
	}
	p.pending = append(p.pending, call)
	h.scheduleLocked(peer, p)
}

// scheduleLocked starts a sender for peer's pending calls now if they may
// go now, or arms the timer for when they may. A running sender looks at
// pending itself when its call returns.
func (h *heartbeats) scheduleLocked(peer string, p *hbPeer) {
	if p.sending || len(p.pending) == 0 {
		return
	}
	wait := time.Until(p.lastSent.Add(h.interval))
	if wait <= 0 {
		p.sending = true
		go h.send(peer, p)
		return
	}
	if p.timer == nil {
		p.timer = time.AfterFunc(wait, func() {
			h.mu.Lock()
			p.timer = nil
			h.scheduleLocked(peer, p)
			h.mu.Unlock()
		})
	}
}

// send sends peer's pending calls, one Heartbeats call at a time, while
// some may go.
func (h *heartbeats) send(peer string, p *hbPeer) {
	for {
		h.mu.Lock()
		p.sending = false
		calls := p.pending
		if len(calls) == 0 || time.Since(p.lastSent) < h.interval {
			h.scheduleLocked(peer, p)
			h.mu.Unlock()
			return
		}
		p.pending, p.sending, p.lastSent = nil, true, time.Now()
		h.mu.Unlock()
		h.rn.flushHeartbeats(peer, calls)
	}
}

// flushHeartbeats sends calls, heartbeats for peer, in one call.
func (rn *Net) flushHeartbeats(peer string, calls []*hbCall) {
	fail := func(err error) {
		for _, c := range calls {
			c.done <- hbResult{err: err}
		}
	}
	if err := rn.allowed(peer); err != nil {
		fail(err)
		return
	}
	cc, err := rn.Conn(peer, ClassRaft)
	if err != nil {
		fail(err)
		return
	}
	batch := &peerv1.HeartbeatBatch{Heartbeats: make([]*peerv1.AppendEntriesRequest, len(calls))}
	for i, c := range calls {
		batch.Heartbeats[i] = c.req
	}
	ctx, cancel := context.WithTimeout(rn.ctx, rn.cfg.RPCTimeout)
	defer cancel()
	out, err := peerv1.NewRaftClient(cc).Heartbeats(ctx, batch)
	if err != nil {
		fail(err)
		return
	}
	if len(out.Results) != len(calls) {
		fail(fmt.Errorf("raftnet: %s answered %d heartbeats with %d results", peer, len(calls), len(out.Results)))
		return
	}
	rn.noteHeard(peer)
	for i, c := range calls {
		r := out.Results[i]
		if r.GetError() != "" || r.GetResponse() == nil {
			c.done <- hbResult{err: status.Error(codes.Code(r.GetCode()), "raftnet: heartbeat: "+r.GetError())}
			continue
		}
		c.done <- hbResult{resp: r.GetResponse()}
	}
}

// Heartbeats serves a batch of heartbeats, each through its group's
// heartbeat fast path, and of folded appends, each through its group's
// raft loop. The appends are served side by side: one group busy writing
// its log must not hold up the heartbeats and appends of the others.
func (s *raftService) Heartbeats(ctx context.Context, in *peerv1.HeartbeatBatch) (*peerv1.HeartbeatBatchResponse, error) {
	out := &peerv1.HeartbeatBatchResponse{Results: make([]*peerv1.HeartbeatResult, len(in.GetHeartbeats()))}
	var wg sync.WaitGroup
	for i, hb := range in.GetHeartbeats() {
		s.rn.noteHeard(string(hb.GetHeader().GetAddr()))
		res := &peerv1.HeartbeatResult{}
		out.Results[i] = res
		t, err := s.rn.lookup(hb.GetGroup())
		if err != nil {
			setHeartbeatError(res, err)
			continue
		}
		serve := func() {
			var err error
			if res.Response, err = t.serveAppend(ctx, hb); err != nil {
				// The same status an AppendEntries call would get.
				setHeartbeatError(res, s.rn.serveStatus(err))
			}
		}
		if isHeartbeat(appendRequestFromProto(hb)) {
			serve()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serve()
		}()
	}
	wg.Wait()
	return out, nil
}

// setHeartbeatError records err as res's answer, with its gRPC code.
func setHeartbeatError(res *peerv1.HeartbeatResult, err error) {
	st := status.Convert(err)
	res.Error, res.Code = st.Message(), uint32(st.Code())
}
