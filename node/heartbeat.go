package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
)

// Heartbeat coalescing. Every group's leader sends a heartbeat to each
// follower every HeartbeatTimeout/10, so a node leading 20 of 64 groups
// sends hundreds of tiny RPCs a second, and idle CPU goes to syscalls and
// HTTP/2 framing. A heartbeat to a peer waits up to heartbeatWindow for the
// heartbeats other groups send to the same peer, and they travel in one
// Heartbeats call. The delay is a fraction of the heartbeat interval and a
// thirtieth of the timeout a follower waits before it calls an election.
// A heartbeat a read is waiting for (raft's VerifyLeader sends one at once
// to every follower) goes out at once with whatever is pending.
//
// One Heartbeats call is in flight to a peer at a time: heartbeats that
// come while it is go out together as soon as it returns. Under
// LINEARIZABLE reads every group's leader confirms its leadership
// hundreds of times a second, each round an urgent heartbeat to each
// follower; sent one call each, they took 17% of the nodes' CPU in gRPC
// stream set-up (issue 8's profile).

// hbCall is one group's heartbeat waiting for its batch.
type hbCall struct {
	req  *peerv1.AppendEntriesRequest
	done chan hbResult
}

type hbResult struct {
	resp *peerv1.AppendEntriesResponse
	err  error
}

// heartbeat sends req (a heartbeat of some group) to peer in the next
// batch, or at once if urgent, and returns its answer.
func (rn *raftNet) heartbeat(ctx context.Context, peer string, req *peerv1.AppendEntriesRequest, urgent bool) (*peerv1.AppendEntriesResponse, error) {
	call := &hbCall{req: req, done: make(chan hbResult, 1)}
	rn.hbMu.Lock()
	if rn.hbPending == nil {
		rn.hbPending = make(map[string][]*hbCall)
	}
	q := rn.hbPending[peer]
	rn.hbPending[peer] = append(q, call)
	rn.hbMu.Unlock()
	switch {
	case urgent:
		rn.kickHeartbeats(peer)
	case len(q) == 0:
		time.AfterFunc(rn.cfg.HeartbeatWindow, func() { rn.kickHeartbeats(peer) })
	}
	select {
	case r := <-call.done:
		return r.resp, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// kickHeartbeats sends the heartbeats waiting for peer, unless a call to
// peer is in flight: its sender sends them when it returns.
func (rn *raftNet) kickHeartbeats(peer string) {
	rn.hbMu.Lock()
	if rn.hbSending[peer] {
		rn.hbMu.Unlock()
		return
	}
	if rn.hbSending == nil {
		rn.hbSending = make(map[string]bool)
	}
	rn.hbSending[peer] = true
	rn.hbMu.Unlock()
	go func() {
		for {
			rn.hbMu.Lock()
			calls := rn.hbPending[peer]
			delete(rn.hbPending, peer)
			if len(calls) == 0 {
				delete(rn.hbSending, peer)
				rn.hbMu.Unlock()
				return
			}
			rn.hbMu.Unlock()
			rn.flushHeartbeats(peer, calls)
		}
	}()
}

// flushHeartbeats sends calls, heartbeats for peer, in one call.
func (rn *raftNet) flushHeartbeats(peer string, calls []*hbCall) {
	fail := func(err error) {
		for _, c := range calls {
			c.done <- hbResult{err: err}
		}
	}
	if err := rn.allowed(peer); err != nil {
		fail(err)
		return
	}
	cc, err := rn.Conn(peer, classRaft)
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
		fail(fmt.Errorf("node: %s answered %d heartbeats with %d results", peer, len(calls), len(out.Results)))
		return
	}
	rn.noteHeard(peer)
	for i, c := range calls {
		r := out.Results[i]
		if r.GetError() != "" || r.GetResponse() == nil {
			c.done <- hbResult{err: errors.New("node: heartbeat: " + r.GetError())}
			continue
		}
		c.done <- hbResult{resp: r.GetResponse()}
	}
}

// Heartbeats serves a batch of heartbeats, each through its group's
// heartbeat fast path.
func (s *raftService) Heartbeats(ctx context.Context, in *peerv1.HeartbeatBatch) (*peerv1.HeartbeatBatchResponse, error) {
	out := &peerv1.HeartbeatBatchResponse{Results: make([]*peerv1.HeartbeatResult, len(in.GetHeartbeats()))}
	for i, hb := range in.GetHeartbeats() {
		s.rn.noteHeard(string(hb.GetHeader().GetAddr()))
		res := &peerv1.HeartbeatResult{}
		t, err := s.rn.lookup(hb.GetGroup())
		if err == nil {
			res.Response, err = t.serveAppend(ctx, hb)
		}
		if err != nil {
			res.Error = err.Error()
		}
		out.Results[i] = res
	}
	return out, nil
}
