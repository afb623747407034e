package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/elcache/elcache/internal/raftnet"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// forwardedKey marks a request one node forwarded to another. A forwarded
// request is never forwarded again, so a request takes at most one hop
// between nodes and routing loops cannot happen.
const forwardedKey = "elcache-forwarded"

// forwardAttempts bounds how many leaders a node tries for one request
// (the first guess, then leader hints from the answers).
const forwardAttempts = 3

// errLeaderHere: while forwarding, this node turned out to be the leader;
// the caller serves the request locally.
var errLeaderHere = errors.New("node: this node leads the partition now")

// forwardBackoff is the pause before asking a leader that was not ready
// again.
const forwardBackoff = 20 * time.Millisecond

// status maps err to a gRPC status through the one table (toStatus) and
// adds a LeaderHint detail where the request did not run here: naming the
// leader for a not-leader error, so that the caller can go to it
// directly, and empty for a request that certainly did not run (closed,
// shutting down, no quorum), which tells a forwarding node it may send
// the request elsewhere.
func (n *Node) status(err error) error {
	serr := toStatus(err)
	var hint *cachev1.LeaderHint
	var nl *notLeaderError
	var nr notRunError
	switch {
	case errors.As(err, &nl):
		hint = n.hint(nl.partition)
		if nl.leader != "" {
			hint.NodeId = nl.leader
			hint.Address, _ = n.resolve(nl.leader)
		}
	case errors.Is(err, ErrClosed), errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrRaftShutdown),
		errors.As(err, &nr):
		hint = &cachev1.LeaderHint{}
	default:
		return serr
	}
	if st, derr := status.Convert(serr).WithDetails(hint); derr == nil {
		return st.Err()
	}
	return serr
}

// notRunError marks an error returned before the request was proposed or
// forwarded anywhere: it certainly did not run. Its status carries a
// LeaderHint with no leader, which tells clients and forwarding nodes
// that they may send it again, elsewhere or later.
type notRunError struct{ error }

func (e notRunError) Unwrap() error { return e.error }

// hintOf returns the LeaderHint detail of a gRPC error, or nil.
func hintOf(err error) *cachev1.LeaderHint {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if h, ok := d.(*cachev1.LeaderHint); ok {
			return h
		}
	}
	return nil
}

// routeTarget returns the node to forward a request for pid to: the known
// leader, else the preferred leader of the partition map.
func (n *Node) routeTarget(pid uint32) string {
	if id := n.leaderOf(pid); id != "" {
		return id
	}
	st, _ := n.meta.Current()
	if int(pid) < len(st.Partitions) && len(st.Partitions[pid].Replicas) > 0 {
		return st.Partitions[pid].Replicas[0]
	}
	return ""
}

// forward sends a request for partition pid to its leader on another node
// and returns the answer. The node it calls never forwards again. While no
// leader can take the request (an election, a leadership hand-off), it
// follows leader hints and waits, up to the request's deadline or the
// election wait, whichever is first. Writes are sent again only after an
// answer that says they were not executed (a not-leader answer with a
// hint); reads also after a connection failure.
func forward[T any](ctx context.Context, n *Node, pid uint32, read bool,
	call func(context.Context, cachev1.CacheClient) (T, error)) (T, error) {
	var zero T
	n.stats.forwarded.Add(1)
	deadline := time.Now().Add(max(4*n.cfg.Raft.ElectionTimeout, 2*time.Second))
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	var lastErr error = &notLeaderError{partition: pid}
	target := n.routeTarget(pid)
	for hops := 0; ; {
		p := n.part(pid)
		if target == n.id && p != nil {
			return zero, errLeaderHere
		}
		if p != nil {
			// This node's replica has heard from no quorum: neither is
			// there a leader it can reach, nor can one be elected with
			// it. Fail now, not at the deadline.
			if err := p.quorumLost(time.Now()); err != nil {
				return zero, n.status(err)
			}
		}
		if n.net.Isolated(2 * n.cfg.Raft.ElectionTimeout) {
			// Cut off from every peer (the minority side of a partition):
			// no leader is reachable, so fail now, not at the deadline.
			// Writes reach this point only before any forward or after
			// answers that said they were not executed.
			return zero, n.status(notRunError{fmt.Errorf("%w: partition %d: this node has heard from no peer for %v", ErrUnavailable,
				pid, 2*n.cfg.Raft.ElectionTimeout)})
		}
		if target != "" && target != n.id && n.faults.allowNode(target) {
			resp, err, retry := forwardOnceQuorum(ctx, n, p, target, read, call)
			if err == nil {
				return resp, nil
			}
			if isNoQuorum(err) {
				return zero, n.status(err)
			}
			lastErr = err
			if !retry {
				break
			}
			if h := hintOf(err); h != nil && h.NodeId != "" && h.NodeId != target && hops < forwardAttempts {
				n.leaders.learn(pid, h.NodeId, 0)
				target = h.NodeId
				hops++
				continue
			}
		} else if target != "" && target != n.id {
			lastErr = fmt.Errorf("%w: partition %d: node %s is unreachable", ErrUnavailable, pid, target)
		}
		// No leader can take it now: wait a moment and look again.
		if time.Now().Add(forwardBackoff).After(deadline) {
			break
		}
		select {
		case <-time.After(forwardBackoff):
		case <-ctx.Done():
			return zero, n.status(fmt.Errorf("%w: partition %d: no leader took the request: %v", ctx.Err(), pid, lastErr))
		}
		hops = 0
		target = n.routeTarget(pid)
	}
	if _, ok := status.FromError(lastErr); ok {
		return zero, lastErr
	}
	return zero, n.status(lastErr)
}

// forwardOnceQuorum is forwardOnce, given up on when this node's replica
// p (if any) loses its quorum while it waits for the answer: the target
// is then as good as unreachable. The error then is a *noQuorumError; a
// read's (and an unsent write's) says the request did not run, a sent
// write's does not, because the target may have run it.
func forwardOnceQuorum[T any](ctx context.Context, n *Node, p *partition, target string, read bool,
	call func(context.Context, cachev1.CacheClient) (T, error)) (T, error, bool) {
	if p == nil {
		return forwardOnce(ctx, n, target, read, call)
	}
	qctx, stop := p.untilQuorumLost(ctx)
	resp, err, retry := forwardOnce(qctx, n, target, read, call)
	cause := context.Cause(qctx)
	stop()
	if err == nil || ctx.Err() != nil || !isNoQuorum(cause) {
		return resp, err, retry
	}
	if read || unsent(err) {
		return resp, cause, false
	}
	var nq *noQuorumError
	errors.As(cause, &nq)
	return resp, fmt.Errorf("%w; the write was sent to node %s and may have run", nq, target), false
}

// forwardOnce sends one forwarded request to target. retry says whether
// the request may be sent again.
func forwardOnce[T any](ctx context.Context, n *Node, target string, read bool,
	call func(context.Context, cachev1.CacheClient) (T, error)) (T, error, bool) {
	var zero T
	conn, err := n.net.Conn(target, raftnet.ClassForward)
	if err != nil {
		return zero, fmt.Errorf("%w: node %s: %v", ErrUnavailable, target, err), true
	}
	resp, err := call(metadata.AppendToOutgoingContext(ctx, forwardedKey, n.id), cachev1.NewCacheClient(conn))
	if err == nil {
		return resp, nil, false
	}
	if hintOf(err) != nil {
		return zero, err, true
	}
	if unsent(err) {
		// The target is down, or back and the connection has not noticed:
		// what this node knew of its leaderships is stale, and the next
		// attempt should dial at once.
		n.leaders.forget(target)
		conn.ResetConnectBackoff()
		return zero, err, true
	}
	return zero, err, read && status.Code(err) == codes.Unavailable && ctx.Err() == nil
}

// unsent reports whether a call failed before its request left this node:
// gRPC could not connect. Such a request is safe to send elsewhere even
// when it is a write.
func unsent(err error) bool {
	if status.Code(err) != codes.Unavailable {
		return false
	}
	msg := status.Convert(err).Message()
	return strings.Contains(msg, "Error while dialing") || strings.Contains(msg, "connection refused")
}
