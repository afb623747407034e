package node

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
)

// TestPlanRoute walks planRoute through the replica states a request can
// find on a node, for leader-only requests and others, arriving from a
// client, from another node, and as a pipelined call.
func TestPlanRoute(t *testing.T) {
	leader := routeFacts{hosted: true, leads: true, leaderKnown: true}
	follower := routeFacts{hosted: true, leaderKnown: true}
	electing := routeFacts{hosted: true}
	displacedFollower := routeFacts{hosted: true, displaced: true, leaderKnown: true}
	displacedLeader := routeFacts{hosted: true, displaced: true, leads: true, leaderKnown: true}
	notHosted := routeFacts{leaderKnown: true}
	with := func(f routeFacts, edits ...func(*routeFacts)) routeFacts {
		for _, edit := range edits {
			edit(&f)
		}
		return f
	}
	leaderOnly := func(f *routeFacts) { f.leaderOnly = true }
	tried := func(f *routeFacts) { f.triedLocal = true }
	forwarded := func(f *routeFacts) { f.forwarded = true }
	pipelined := func(f *routeFacts) { f.mustNotWait = true }

	tests := []struct {
		name string
		f    routeFacts
		want routeStep
	}{
		{"leader serves a write", with(leader, leaderOnly), routeLocal},
		{"leader serves a read", leader, routeLocal},
		{"follower tries a read", follower, routeLocal},
		{"follower forwards a write", with(follower, leaderOnly), routeForward},
		{"replica in an election waits it out", with(electing, leaderOnly), routeLocal},
		{"displaced follower serves nothing", displacedFollower, routeForward},
		{"displaced leader still serves", with(displacedLeader, leaderOnly), routeLocal},
		{"no replica here", notHosted, routeForward},
		{"follower that tried forwards", with(follower, tried), routeForward},
		{"forwarded write on a follower is refused", with(follower, leaderOnly, forwarded), routeRefuse},
		{"forwarded read on a follower is tried", with(follower, forwarded), routeLocal},
		{"forwarded read that failed is refused", with(follower, forwarded, tried), routeRefuse},
		{"forwarded to a node without a replica", with(notHosted, forwarded), routeRefuse},
		{"pipelined write on a follower would block", with(follower, leaderOnly, pipelined), routeWouldBlock},
		{"pipelined write on the leader runs", with(leader, leaderOnly, pipelined), routeLocal},
		{"pipelined call for another node's partition would block", with(notHosted, pipelined), routeWouldBlock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planRoute(tt.f); got != tt.want {
				t.Fatalf("planRoute(%+v) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}
}

// TestPlanRetry: only a request that certainly did not run because this
// replica does not lead is routed elsewhere, and never one that another
// node forwarded here.
func TestPlanRetry(t *testing.T) {
	notLeader := &notLeaderError{partition: 1, leader: "b"}
	tests := []struct {
		err                    error
		forwarded, mustNotWait bool
		want                   retryStep
	}{
		{notLeader, false, false, retryElsewhere},
		{fmt.Errorf("apply: %w", raft.ErrNotLeader), false, false, retryElsewhere},
		{ErrClosed, false, false, retryElsewhere},
		{notLeader, true, false, retryAnswer},
		{errWouldBlock, false, true, retryAnswer},
		{raft.ErrLeadershipTransferInProgress, false, false, retryPause},
		{raft.ErrLeadershipTransferInProgress, true, false, retryAnswer},
		{raft.ErrLeadershipTransferInProgress, false, true, retryAnswer},
		{invalid("bad key"), false, false, retryAnswer},
		{fmt.Errorf("%w: partition 1", ErrBacklog), false, false, retryAnswer},
		{fmt.Errorf("apply: %w", raft.ErrLeadershipLost), false, false, retryAnswer}, // may have run
	}
	for _, tt := range tests {
		if got := planRetry(tt.err, tt.forwarded, tt.mustNotWait); got != tt.want {
			t.Errorf("planRetry(%v, forwarded %v, mustNotWait %v) = %v, want %v", tt.err, tt.forwarded, tt.mustNotWait, got, tt.want)
		}
	}
}
