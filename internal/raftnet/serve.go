package raftnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

//lint:file-ignore SA1019 the transport carries raft's RPC structs field by field, deprecated fields included (older raft versions read them).

// Incoming Raft RPCs: the peer.v1 Raft service routes each request to its
// group's Transport, which hands it to raft and waits for the answer.

// dispatch hands an incoming RPC to raft (heartbeats to the heartbeat
// handler when raft set one) and waits for raft's answer, the end of ctx
// or the transport's close.
func (t *Transport) dispatch(ctx context.Context, cmd any, data io.Reader, heartbeat bool) (any, error) {
	respCh := make(chan raft.RPCResponse, 1)
	rpc := raft.RPC{Command: cmd, Reader: data, RespChan: respCh}
	fast := false
	if heartbeat {
		t.hbMu.Lock()
		fn := t.heartbeatFn
		t.hbMu.Unlock()
		if fn != nil {
			t.stats.heartbeatsFast.Add(1)
			fn(rpc)
			fast = true
		}
	}
	if !fast {
		select {
		case t.consumeCh <- rpc:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.ctx.Done():
			return nil, errTransportClosed
		}
	}
	select {
	case resp := <-respCh:
		return resp.Response, resp.Error
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.ctx.Done():
		return nil, errTransportClosed
	}
}

// serveAppend runs one incoming append (unary or pipelined).
func (t *Transport) serveAppend(ctx context.Context, in *peerv1.AppendEntriesRequest) (*peerv1.AppendEntriesResponse, error) {
	received := time.Now()
	req := appendRequestFromProto(in)
	heartbeat := isHeartbeat(req)
	out, err := t.dispatch(ctx, req, nil, heartbeat)
	if err != nil {
		return nil, err
	}
	resp, ok := out.(*raft.AppendEntriesResponse)
	if !ok {
		return nil, fmt.Errorf("raftnet: raft answered AppendEntries with %T", out)
	}
	if resp.Success && !heartbeat {
		t.commitMu.Lock()
		t.leaderCommit = max(t.leaderCommit, req.LeaderCommitIndex)
		if received.After(t.leaderCommitAt) {
			t.leaderCommitAt = received
		}
		if in.GetLeaderLease() {
			t.freshCommit = max(t.freshCommit, req.LeaderCommitIndex)
			if sent := received.Add(-appendAge(in, received)); sent.After(t.freshAt) {
				t.freshAt = sent
			}
		}
		t.commitMu.Unlock()
	}
	return appendResponseToProto(resp), nil
}

// appendAge is how long before received the leader checked its lease for
// an append: the larger of the sender's own wait (monotonic) and the
// difference of the two wall clocks. The second covers what the first
// cannot see: a wait for a connection to a restarted follower, blocked
// flow control to a paused one, time on the wire.
func appendAge(in *peerv1.AppendEntriesRequest, received time.Time) time.Duration {
	age := time.Duration(in.GetQueuedNanos())
	if at := in.GetLeaseCheckedUnixNanos(); at > 0 {
		age = max(age, time.Duration(received.UnixNano()-at))
	}
	return max(age, 0)
}

// serveStatus maps a server-side error to a gRPC status: a closed
// transport or a raft that is shutting down is Unavailable (the caller
// retries elsewhere or later), anything else goes through
// Config.ErrorStatus.
func (rn *Net) serveStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, errTransportClosed) || errors.Is(err, raft.ErrRaftShutdown) {
		return status.Error(codes.Unavailable, err.Error())
	}
	if rn.cfg.ErrorStatus != nil {
		return rn.cfg.ErrorStatus(err)
	}
	return status.Error(codes.Unknown, err.Error())
}

// raftService serves peer.v1 Raft by routing each request to its group.
type raftService struct {
	peerv1.UnimplementedRaftServer
	rn *Net
}

func (s *raftService) AppendEntries(ctx context.Context, in *peerv1.AppendEntriesRequest) (*peerv1.AppendEntriesResponse, error) {
	s.rn.noteHeard(string(in.GetHeader().GetAddr()))
	t, err := s.rn.lookup(in.GetGroup())
	if err != nil {
		return nil, err
	}
	out, err := t.serveAppend(ctx, in)
	return out, s.rn.serveStatus(err)
}

// AppendEntriesPipeline answers a stream's appends one by one, in order.
func (s *raftService) AppendEntriesPipeline(stream peerv1.Raft_AppendEntriesPipelineServer) error {
	ctx := stream.Context()
	var t *Transport
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		s.rn.noteHeard(string(in.GetHeader().GetAddr()))
		if t == nil || t.group != in.GetGroup() {
			if t, err = s.rn.lookup(in.GetGroup()); err != nil {
				return err
			}
		}
		out, err := t.serveAppend(ctx, in)
		if err != nil {
			return s.rn.serveStatus(err)
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

func (s *raftService) RequestVote(ctx context.Context, in *peerv1.RequestVoteRequest) (*peerv1.RequestVoteResponse, error) {
	t, err := s.rn.lookup(in.GetGroup())
	if err != nil {
		return nil, err
	}
	if s.rn.quiet() {
		return &peerv1.RequestVoteResponse{Header: s.rn.header(), Term: in.GetTerm()}, nil
	}
	out, err := t.dispatch(ctx, &raft.RequestVoteRequest{
		RPCHeader:          headerFromProto(in.GetHeader()),
		Term:               in.GetTerm(),
		Candidate:          in.GetCandidate(),
		LastLogIndex:       in.GetLastLogIndex(),
		LastLogTerm:        in.GetLastLogTerm(),
		LeadershipTransfer: in.GetLeadershipTransfer(),
	}, nil, false)
	if err != nil {
		return nil, s.rn.serveStatus(err)
	}
	resp, ok := out.(*raft.RequestVoteResponse)
	if !ok {
		return nil, status.Errorf(codes.Internal, "raftnet: raft answered RequestVote with %T", out)
	}
	return &peerv1.RequestVoteResponse{
		Header:  headerToProto(resp.RPCHeader),
		Term:    resp.Term,
		Peers:   resp.Peers,
		Granted: resp.Granted,
	}, nil
}

func (s *raftService) RequestPreVote(ctx context.Context, in *peerv1.RequestPreVoteRequest) (*peerv1.RequestPreVoteResponse, error) {
	t, err := s.rn.lookup(in.GetGroup())
	if err != nil {
		return nil, err
	}
	if s.rn.quiet() {
		return &peerv1.RequestPreVoteResponse{Header: s.rn.header(), Term: in.GetTerm()}, nil
	}
	out, err := t.dispatch(ctx, &raft.RequestPreVoteRequest{
		RPCHeader:    headerFromProto(in.GetHeader()),
		Term:         in.GetTerm(),
		LastLogIndex: in.GetLastLogIndex(),
		LastLogTerm:  in.GetLastLogTerm(),
	}, nil, false)
	if err != nil {
		return nil, s.rn.serveStatus(err)
	}
	resp, ok := out.(*raft.RequestPreVoteResponse)
	if !ok {
		return nil, status.Errorf(codes.Internal, "raftnet: raft answered RequestPreVote with %T", out)
	}
	return &peerv1.RequestPreVoteResponse{
		Header:  headerToProto(resp.RPCHeader),
		Term:    resp.Term,
		Granted: resp.Granted,
	}, nil
}

func (s *raftService) TimeoutNow(ctx context.Context, in *peerv1.TimeoutNowRequest) (*peerv1.TimeoutNowResponse, error) {
	t, err := s.rn.lookup(in.GetGroup())
	if err != nil {
		return nil, err
	}
	out, err := t.dispatch(ctx, &raft.TimeoutNowRequest{RPCHeader: headerFromProto(in.GetHeader())}, nil, false)
	if err != nil {
		return nil, s.rn.serveStatus(err)
	}
	resp, ok := out.(*raft.TimeoutNowResponse)
	if !ok {
		return nil, status.Errorf(codes.Internal, "raftnet: raft answered TimeoutNow with %T", out)
	}
	return &peerv1.TimeoutNowResponse{Header: headerToProto(resp.RPCHeader)}, nil
}
