package node

import (
	"errors"

	"github.com/hashicorp/raft"
)

// Request routing, as pure decisions: where a request for a partition
// goes from this node (planRoute), and what follows when this node's
// replica tried and failed (planRetry). serveOp (server.go) gathers the
// facts and carries the decisions out; readplan.go decides what a replica
// that serves a read must prove first.

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
