package raftnet

import (
	"context"
	"fmt"
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
)

//lint:file-ignore SA1019 the transport carries raft's RPC structs field by field, deprecated fields included (older raft versions read them).

// Outgoing unary RPCs of a group: appends (heartbeats ride the coalesced
// Heartbeats call of heartbeat.go), votes, pre-votes and TimeoutNow, each
// with a deadline (raft sets none), and appends split to fit a message.

// call runs one unary RPC to target with a deadline, after the closed and
// Allow checks.
func (t *Transport) call(target raft.ServerAddress, class Class, timeout time.Duration, what string,
	fn func(ctx context.Context, c peerv1.RaftClient) error) error {
	peer := string(target)
	if t.ctx.Err() != nil {
		return errTransportClosed
	}
	if err := t.rn.allowed(peer); err != nil {
		return err
	}
	cc, err := t.rn.Conn(peer, class)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	if err := fn(ctx, peerv1.NewRaftClient(cc)); err != nil {
		if t.ctx.Err() != nil {
			return errTransportClosed
		}
		return fmt.Errorf("raftnet: raft %s to %s (group %d): %w", what, peer, t.group, err)
	}
	t.rn.noteHeard(peer)
	return nil
}

// AppendEntries implements raft.Transport.
func (t *Transport) AppendEntries(_ raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if isHeartbeat(args) {
		return t.call(target, ClassRaft, t.rn.cfg.RPCTimeout, "heartbeat", func(ctx context.Context, _ peerv1.RaftClient) error {
			t.stats.heartbeats.Add(1)
			t.noteTerm(args.Term)
			sent := time.Now()
			out, err := t.rn.heartbeat(ctx, string(target), appendRequestToProto(t.group, args))
			if err != nil {
				return err
			}
			appendResponseFromProto(out, resp)
			t.recordAck(string(target), args, resp, sent)
			return nil
		})
	}
	return t.call(target, ClassRaft, t.rn.cfg.RPCTimeout, "AppendEntries", func(ctx context.Context, c peerv1.RaftClient) error {
		t.stats.appends.Add(1)
		t.noteTerm(args.Term)
		handed, lease := time.Now(), t.leaseHeld()
		// The parts go one after another; the answer is the first failed
		// part's or the last part's.
		for _, part := range t.splitAppend(args) {
			sent := time.Now()
			// Wait for a connection (up to the deadline) rather than fail
			// at once: raft backs off exponentially per failed append, up
			// to 41 s, so a follower that was down for a while would wait
			// that long to catch up after it is back. Failing only at the
			// deadline keeps the failure count, and the backoff, small.
			out, err := c.AppendEntries(ctx, t.wireAppend(part, handed, lease), grpc.WaitForReady(true))
			if err != nil {
				return err
			}
			appendResponseFromProto(out, resp)
			t.recordAck(string(target), part, resp, sent)
			if !resp.Success {
				return nil
			}
		}
		return nil
	})
}

// splitAppend cuts an append that might not fit in one gRPC message into
// consecutive appends, each continuing from the previous one's last entry.
// A follower that applies the parts in order ends exactly where the whole
// would have left it. An entry too large on its own still goes alone, and
// fails in gRPC.
func (t *Transport) splitAppend(args *raft.AppendEntriesRequest) []*raft.AppendEntriesRequest {
	limit := t.rn.maxAppendBytes
	base := 4<<10 + len(args.ID) + len(args.Addr) + len(args.Leader)
	size := base
	for _, e := range args.Entries {
		size += entryBytesBound(e)
	}
	if len(args.Entries) <= 1 || size <= limit {
		return []*raft.AppendEntriesRequest{args}
	}
	var parts []*raft.AppendEntriesRequest
	cut := func(from, to int) {
		part := *args
		part.Entries = args.Entries[from:to]
		if from > 0 {
			prev := args.Entries[from-1]
			part.PrevLogEntry, part.PrevLogTerm = prev.Index, prev.Term
		}
		parts = append(parts, &part)
	}
	from, size := 0, base
	for i, e := range args.Entries {
		n := entryBytesBound(e)
		if i > from && size+n > limit {
			cut(from, i)
			from, size = i, base
		}
		size += n
	}
	cut(from, len(args.Entries))
	t.stats.splits.Add(uint64(len(parts) - 1))
	return parts
}

// entryBytesBound bounds the encoded size of one entry: its bytes plus
// tags, lengths and varints.
func entryBytesBound(e *raft.Log) int {
	return len(e.Data) + len(e.Extensions) + 64
}

// RequestVote implements raft.Transport.
func (t *Transport) RequestVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.call(target, ClassRaft, t.rn.cfg.RPCTimeout, "RequestVote", func(ctx context.Context, c peerv1.RaftClient) error {
		t.stats.votes.Add(1)
		t.noteTerm(args.Term)
		out, err := c.RequestVote(ctx, &peerv1.RequestVoteRequest{
			Group:              t.group,
			Header:             headerToProto(args.RPCHeader),
			Term:               args.Term,
			Candidate:          args.Candidate,
			LastLogIndex:       args.LastLogIndex,
			LastLogTerm:        args.LastLogTerm,
			LeadershipTransfer: args.LeadershipTransfer,
		})
		if err != nil {
			return err
		}
		*resp = raft.RequestVoteResponse{
			RPCHeader: headerFromProto(out.GetHeader()),
			Term:      out.GetTerm(),
			Peers:     out.GetPeers(),
			Granted:   out.GetGranted(),
		}
		return nil
	})
}

// RequestPreVote implements raft.WithPreVote.
func (t *Transport) RequestPreVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.call(target, ClassRaft, t.rn.cfg.RPCTimeout, "RequestPreVote", func(ctx context.Context, c peerv1.RaftClient) error {
		t.stats.preVotes.Add(1)
		out, err := c.RequestPreVote(ctx, &peerv1.RequestPreVoteRequest{
			Group:        t.group,
			Header:       headerToProto(args.RPCHeader),
			Term:         args.Term,
			LastLogIndex: args.LastLogIndex,
			LastLogTerm:  args.LastLogTerm,
		})
		if err != nil {
			return err
		}
		*resp = raft.RequestPreVoteResponse{
			RPCHeader: headerFromProto(out.GetHeader()),
			Term:      out.GetTerm(),
			Granted:   out.GetGranted(),
		}
		return nil
	})
}

// TimeoutNow implements raft.Transport.
func (t *Transport) TimeoutNow(_ raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.call(target, ClassRaft, t.rn.cfg.RPCTimeout, "TimeoutNow", func(ctx context.Context, c peerv1.RaftClient) error {
		t.stats.timeoutNows.Add(1)
		t.transferMu.Lock()
		t.transferAt = time.Now()
		t.transferMu.Unlock()
		out, err := c.TimeoutNow(ctx, &peerv1.TimeoutNowRequest{Group: t.group, Header: headerToProto(args.RPCHeader)})
		if err != nil {
			return err
		}
		*resp = raft.TimeoutNowResponse{RPCHeader: headerFromProto(out.GetHeader())}
		return nil
	})
}
