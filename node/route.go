package node

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/metadata"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Request routing: where a request for a partition goes from this node
// (planRoute), and what follows when this node's replica tried and failed
// (planRetry), as pure decisions; serveOp gathers the facts and carries
// them out, forwarding through forward.go. readplan.go decides what a
// replica that serves a read must prove first.

// routeStep is where a request goes from this node.
type routeStep int

const (
	// routeLocal: this node's replica tries the request.
	routeLocal routeStep = iota
	// routeForward: the request goes to the partition's leader.
	routeForward
	// routeRefuse: a request another node forwarded here cannot be
	// served here; it is answered not-leader (with a hint), never
	// forwarded a second time.
	routeRefuse
	// routeWouldBlock: a pipelined call would wait for a forward; it is
	// run again where it may block.
	routeWouldBlock
)

// routeFacts is what this node knows when a request for a partition
// arrives.
type routeFacts struct {
	// hosted: this node has a replica of the partition. displaced: the
	// replica is being moved off this node (it serves only while it
	// leads). leads: it is the leader. leaderKnown: it knows a leader.
	hosted, displaced, leads, leaderKnown bool
	// leaderOnly: the request needs the leader (writes, LEASE reads);
	// other reads try a local follower first, which hands them on when
	// it cannot prove what their level needs.
	leaderOnly bool
	// triedLocal: the local replica tried and answered not-leader.
	triedLocal bool
	// forwarded: another node sent the request here. mustNotWait: the
	// request is a pipelined call that must not block.
	forwarded, mustNotWait bool
}

// planRoute decides where a request goes. A replica with no known leader
// tries a leader-only request itself: it waits out the election.
func planRoute(f routeFacts) routeStep {
	mayServe := f.hosted && (!f.displaced || f.leads) && (!f.leaderOnly || f.leads || !f.leaderKnown)
	switch {
	case mayServe && !f.triedLocal:
		return routeLocal
	case f.forwarded:
		return routeRefuse
	case f.mustNotWait:
		return routeWouldBlock
	default:
		return routeForward
	}
}

// retryStep is what follows a local attempt that failed.
type retryStep int

const (
	// retryAnswer: the error is the answer.
	retryAnswer retryStep = iota
	// retryPause: the request did not run and the leader changes in a
	// moment; wait a forwarding backoff and route it again.
	retryPause
	// retryElsewhere: the request did not run because this replica does
	// not lead; route it away from here.
	retryElsewhere
)

// planRetry decides what follows a local attempt that failed with err.
func planRetry(err error, forwarded, mustNotWait bool) retryStep {
	switch {
	case errors.Is(err, errWouldBlock):
		return retryAnswer
	case errors.Is(err, raft.ErrLeadershipTransferInProgress) && !forwarded && !mustNotWait:
		return retryPause
	case !isNotLeader(err) || forwarded:
		return retryAnswer
	default:
		return retryElsewhere
	}
}

// isNotLeader reports whether err means the request was not executed
// because this replica does not lead, so that it is safe to send it to
// the leader.
func isNotLeader(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, ErrClosed)
}

// isForwarded reports whether another node forwarded the request of ctx
// here (forwardedKey).
func isForwarded(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	return ok && len(md.Get(forwardedKey)) > 0
}

// noWaitKey marks the context of a pipelined call offered to run at once
// on the stream's receiving goroutine (cacheServer.InlineContext).
type noWaitKey struct{}

// mustNotWait reports whether ctx is a pipelined call's on the receiving
// goroutine: anything that would wait (a quorum round, applying an index,
// the database, forwarding) returns errWouldBlock instead.
func mustNotWait(ctx context.Context) bool {
	v, _ := ctx.Value(noWaitKey{}).(bool)
	return v
}

// routeFacts gathers what planRoute needs for a request for pid, and
// returns this node's replica of it, if any. What the request's context
// says (forwarded, must not wait) matters only to a request that does not
// run here, and is read then (contextFacts).
func (n *Node) routeFacts(pid uint32, leaderOnly bool) (*partition, routeFacts) {
	f := routeFacts{leaderOnly: leaderOnly}
	p := n.part(pid)
	if p != nil {
		f.hosted, f.displaced = true, p.displaced.Load()
		f.leads = p.raft.State() == raft.Leader
		f.leaderKnown = f.leads || p.leader() != ""
	}
	return p, f
}

// contextFacts adds what ctx says to f.
func contextFacts(ctx context.Context, f routeFacts) routeFacts {
	f.forwarded, f.mustNotWait = isForwarded(ctx), mustNotWait(ctx)
	return f
}

// serve runs a request for partition pid on this node's replica when it
// may serve it, and otherwise forwards it (once) to the partition's leader.
func serve[T any](ctx context.Context, n *Node, pid uint32, leaderOnly bool,
	local func(*partition) (T, error), remote func(context.Context, cachev1.CacheClient) (T, error)) (T, error) {
	return serveOp(ctx, n, pid, leaderOnly, false, local, remote)
}

// serveRead is serve for reads, which may be sent again after any
// connection failure.
func serveRead[T any](ctx context.Context, n *Node, pid uint32, leaderOnly bool,
	local func(*partition) (T, error), remote func(context.Context, cachev1.CacheClient) (T, error)) (T, error) {
	return serveOp(ctx, n, pid, leaderOnly, true, local, remote)
}

// serveOp carries out planRoute and planRetry (route.go).
func serveOp[T any](ctx context.Context, n *Node, pid uint32, leaderOnly, read bool,
	local func(*partition) (T, error), remote func(context.Context, cachev1.CacheClient) (T, error)) (T, error) {
	var zero T
	deadline := time.Now().Add(max(4*n.cfg.Raft.ElectionTimeout, 2*time.Second))
	for {
		p, f := n.routeFacts(pid, leaderOnly)
		if planRoute(f) == routeLocal {
			resp, err := local(p)
			if err == nil {
				return resp, nil
			}
			f = contextFacts(ctx, f)
			switch planRetry(err, f.forwarded, f.mustNotWait) {
			case retryAnswer:
				if errors.Is(err, errWouldBlock) {
					return zero, err
				}
				return resp, n.status(err)
			case retryPause:
				if werr := pause(ctx); werr != nil {
					return zero, n.status(err)
				}
				continue
			}
			f.triedLocal = true
		} else {
			f = contextFacts(ctx, f)
		}
		switch planRoute(f) {
		case routeRefuse:
			return zero, n.status(&notLeaderError{partition: pid, leader: n.leaderOf(pid)})
		case routeWouldBlock:
			return zero, errWouldBlock
		}
		resp, err := forward(ctx, n, pid, read, remote)
		if errors.Is(err, errLeaderHere) && time.Now().Before(deadline) {
			// This node became the leader while the request was looking
			// for one: serve it here.
			if werr := pause(ctx); werr != nil {
				return zero, n.status(werr)
			}
			continue
		}
		if errors.Is(err, errLeaderHere) {
			return zero, n.status(&notLeaderError{partition: pid, leader: n.id})
		}
		return resp, err
	}
}

// pause waits a forwarding backoff, or until ctx ends.
func pause(ctx context.Context) error {
	select {
	case <-time.After(forwardBackoff):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
