package node

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/internal/request"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// TestPlanRead walks planRead through every read level on a leader, a
// follower and a replica that knows no leader, with and without what each
// level needs to serve locally.
func TestPlanRead(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	const (
		lin      = cachev1.Consistency_CONSISTENCY_LINEARIZABLE
		lease    = cachev1.Consistency_CONSISTENCY_LEASE
		bounded  = cachev1.Consistency_CONSISTENCY_BOUNDED
		session  = cachev1.Consistency_CONSISTENCY_SESSION
		eventual = cachev1.Consistency_CONSISTENCY_EVENTUAL
	)
	cutOff := notRunError{&noQuorumError{partition: 7, ago: time.Second}}
	// Replicas as a read finds them.
	leader := replicaFacts{partition: 7, now: now, leader: true, ready: true, leaderKnown: true,
		commitIndex: 90, lastIndex: 100, epoch: 3}
	leaderLease := leader
	leaderLease.leaseExpiry = now.Add(100 * time.Millisecond)
	leaderQuorum := leader
	leaderQuorum.quorumContact = now.Add(-300 * time.Millisecond)
	leaderNotReady := leader
	leaderNotReady.ready = false
	leaderCutOff := leader
	leaderCutOff.quorumErr = cutOff
	follower := replicaFacts{partition: 7, now: now, leaderKnown: true, epoch: 3,
		freshIndex: 80, freshAt: now.Add(-50 * time.Millisecond)}
	followerStale := follower
	followerStale.freshAt = now.Add(-2 * time.Second)
	followerNeverFresh := follower
	followerNeverFresh.freshAt = time.Time{}
	orphan := replicaFacts{partition: 7, now: now, epoch: 3, freshAt: now.Add(-1500 * time.Millisecond)}
	orphanCutOff := orphan
	orphanCutOff.quorumErr = cutOff
	brokenLease := leader
	brokenLease.brokenLease = true

	token := func(partition uint32, epoch, index uint64) []*cachev1.SessionToken {
		return []*cachev1.SessionToken{
			{Partition: partition + 1, Epoch: 99, Index: 1_000_000}, // another partition's: ignored
			{Partition: partition, Epoch: epoch, Index: index},
		}
	}

	tests := []struct {
		name  string
		o     request.Read
		f     replicaFacts
		want  readPlan
		errIs error  // for stepRefuse
		errIn string // in the refusal's text
	}{
		// LINEARIZABLE: refuse when cut off, confirm on a leader or with
		// no leader known, else ask the leader for a read index.
		{name: "lin/leader", o: request.Read{Level: lin}, f: leader, want: readPlan{step: stepConfirm, level: lin}},
		{name: "lin/leader-not-ready", o: request.Read{Level: lin}, f: leaderNotReady, want: readPlan{step: stepConfirm, level: lin}},
		{name: "lin/leader-cut-off", o: request.Read{Level: lin}, f: leaderCutOff, want: readPlan{step: stepRefuse, level: lin}, errIs: cutOff},
		{name: "lin/follower", o: request.Read{Level: lin}, f: follower, want: readPlan{step: stepAskLeader, level: lin}},
		{name: "lin/no-leader", o: request.Read{Level: lin}, f: orphan, want: readPlan{step: stepConfirm, level: lin}},
		{name: "lin/no-leader-cut-off", o: request.Read{Level: lin}, f: orphanCutOff, want: readPlan{step: stepRefuse, level: lin}, errIs: cutOff},

		// LEASE: serve under a lease with a recheck, else LINEARIZABLE.
		{name: "lease/leader-with-lease", o: request.Read{Level: lease}, f: leaderLease,
			want: readPlan{step: stepServe, level: lease, waitIndex: 90, recheckLease: true}},
		{name: "lease/lease-just-ended", o: request.Read{Level: lease}, f: func() replicaFacts { f := leaderLease; f.now = f.leaseExpiry; return f }(),
			want: readPlan{step: stepConfirm, level: lin}},
		{name: "lease/leader-no-lease", o: request.Read{Level: lease}, f: leader, want: readPlan{step: stepConfirm, level: lin}},
		{name: "lease/leader-cut-off", o: request.Read{Level: lease}, f: leaderCutOff, want: readPlan{step: stepRefuse, level: lin}, errIs: cutOff},
		{name: "lease/follower", o: request.Read{Level: lease}, f: follower, want: readPlan{step: stepAskLeader, level: lin}},
		{name: "lease/no-leader", o: request.Read{Level: lease}, f: orphan, want: readPlan{step: stepConfirm, level: lin}},
		{name: "lease/broken-switch", o: request.Read{Level: lease}, f: brokenLease, want: readPlan{step: stepServe, level: lease}},
		{name: "lease/broken-switch-not-ready", o: request.Read{Level: lease}, f: func() replicaFacts { f := brokenLease; f.ready = false; return f }(),
			want: readPlan{step: stepConfirm, level: lin}},

		// BOUNDED: a leader serves under its lease or a recent enough
		// quorum contact, else confirms; a follower serves on a fresh
		// enough leased append, else forwards, or refuses with no leader.
		{name: "bounded/leader-lease", o: request.Read{Level: bounded, MaxStaleness: time.Second}, f: leaderLease,
			want: readPlan{step: stepServe, level: bounded, waitIndex: 90}},
		{name: "bounded/leader-quorum-within", o: request.Read{Level: bounded, MaxStaleness: time.Second}, f: leaderQuorum,
			want: readPlan{step: stepServe, level: bounded, waitIndex: 90, freshSince: leaderQuorum.quorumContact}},
		{name: "bounded/leader-quorum-too-old", o: request.Read{Level: bounded, MaxStaleness: 100 * time.Millisecond}, f: leaderQuorum,
			want: readPlan{step: stepConfirm, level: bounded}},
		{name: "bounded/leader-no-contact", o: request.Read{Level: bounded, MaxStaleness: time.Second}, f: leader,
			want: readPlan{step: stepConfirm, level: bounded}},
		{name: "bounded/leader-not-ready", o: request.Read{Level: bounded, MaxStaleness: time.Second}, f: func() replicaFacts { f := leaderLease; f.ready = false; return f }(),
			want: readPlan{step: stepConfirm, level: bounded}},
		{name: "bounded/follower-fresh", o: request.Read{Level: bounded, MaxStaleness: 100 * time.Millisecond}, f: follower,
			want: readPlan{step: stepServe, level: bounded, waitIndex: 80, followerWait: true, freshSince: follower.freshAt}},
		{name: "bounded/follower-at-the-bound", o: request.Read{Level: bounded, MaxStaleness: 50 * time.Millisecond}, f: follower,
			want: readPlan{step: stepServe, level: bounded, waitIndex: 80, followerWait: true, freshSince: follower.freshAt}},
		{name: "bounded/follower-stale", o: request.Read{Level: bounded, MaxStaleness: time.Second}, f: followerStale,
			want: readPlan{step: stepForward, level: bounded}},
		{name: "bounded/follower-never-fresh", o: request.Read{Level: bounded, MaxStaleness: time.Hour}, f: followerNeverFresh,
			want: readPlan{step: stepForward, level: bounded}},
		{name: "bounded/no-leader", o: request.Read{Level: bounded, MaxStaleness: time.Second}, f: orphan,
			want: readPlan{step: stepRefuse, level: bounded}, errIs: ErrUnavailable, errIn: "last fresh leader contact: 1.5s ago"},
		{name: "bounded/no-leader-never-fresh", o: request.Read{Level: bounded, MaxStaleness: time.Second}, f: func() replicaFacts { f := orphan; f.freshAt = time.Time{}; return f }(),
			want: readPlan{step: stepRefuse, level: bounded}, errIs: ErrUnavailable, errIn: "last fresh leader contact: never"},
		{name: "bounded/no-leader-fresh", o: request.Read{Level: bounded, MaxStaleness: 2 * time.Second}, f: orphan,
			want: readPlan{step: stepServe, level: bounded, followerWait: true, freshSince: orphan.freshAt}},

		// SESSION: serve once the token's index is applied; a token of
		// another incarnation reads LINEARIZABLE; one beyond a leader's
		// log is refused.
		{name: "session/no-token", o: request.Read{Level: session}, f: follower, want: readPlan{step: stepServe, level: session, staleness: -1}},
		{name: "session/leader", o: request.Read{Level: session, Tokens: token(7, 3, 95)}, f: leader,
			want: readPlan{step: stepServe, level: session, staleness: -1, waitIndex: 95}},
		{name: "session/leader-token-at-log-end", o: request.Read{Level: session, Tokens: token(7, 3, 100)}, f: leader,
			want: readPlan{step: stepServe, level: session, staleness: -1, waitIndex: 100}},
		{name: "session/leader-token-beyond-log", o: request.Read{Level: session, Tokens: token(7, 3, 101)}, f: leader,
			want: readPlan{step: stepRefuse, level: session, staleness: -1}, errIs: ErrInvalidArgument, errIn: "beyond the log (100)"},
		{name: "session/follower", o: request.Read{Level: session, Tokens: token(7, 3, 500)}, f: follower,
			want: readPlan{step: stepServe, level: session, staleness: -1, waitIndex: 500, followerWait: true}},
		{name: "session/no-leader", o: request.Read{Level: session, Tokens: token(7, 3, 5)}, f: orphan,
			want: readPlan{step: stepServe, level: session, staleness: -1, waitIndex: 5, followerWait: true}},
		{name: "session/other-epoch-leader", o: request.Read{Level: session, Tokens: token(7, 2, 5)}, f: leader, want: readPlan{step: stepConfirm, level: lin}},
		{name: "session/other-epoch-follower", o: request.Read{Level: session, Tokens: token(7, 4, 5)}, f: follower, want: readPlan{step: stepAskLeader, level: lin}},
		{name: "session/other-epoch-cut-off", o: request.Read{Level: session, Tokens: token(7, 2, 5)}, f: leaderCutOff,
			want: readPlan{step: stepRefuse, level: lin}, errIs: cutOff},

		// EVENTUAL: every replica serves what it has, cut off or not.
		{name: "eventual/leader", o: request.Read{Level: eventual}, f: leader, want: readPlan{step: stepServe, level: eventual, staleness: -1}},
		{name: "eventual/follower", o: request.Read{Level: eventual}, f: followerStale, want: readPlan{step: stepServe, level: eventual, staleness: -1}},
		{name: "eventual/cut-off", o: request.Read{Level: eventual}, f: orphanCutOff, want: readPlan{step: stepServe, level: eventual, staleness: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planRead(tt.o, tt.f)
			err := got.err
			got.err = nil
			if got != tt.want {
				t.Fatalf("planRead = %+v (err %v), want %+v", got, err, tt.want)
			}
			switch {
			case tt.want.step != stepRefuse && err != nil:
				t.Fatalf("plan %v carries error %v", got.step, err)
			case tt.want.step == stepRefuse && err == nil:
				t.Fatal("refusal without an error")
			case tt.errIs != nil && !errors.Is(err, tt.errIs):
				t.Fatalf("refusal %v is not %v", err, tt.errIs)
			case tt.errIn != "" && !strings.Contains(err.Error(), tt.errIn):
				t.Fatalf("refusal %q does not say %q", err, tt.errIn)
			}
		})
	}
}

// TestPlanReadEveryLevel: every level the API defines has a plan on every
// role, and none but EVENTUAL and SESSION without a token serves a
// replica cut off from its quorum unless it proved its bound.
func TestPlanReadEveryLevel(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	cutOff := notRunError{&noQuorumError{partition: 1, ago: time.Second}}
	for v := range cachev1.Consistency_name {
		level := cachev1.Consistency(v)
		if level == cachev1.Consistency_CONSISTENCY_UNSPECIFIED {
			continue // validation resolves it to the node's default first
		}
		for _, leader := range []bool{true, false} {
			f := replicaFacts{partition: 1, now: now, leader: leader, leaderKnown: true, quorumErr: cutOff}
			plan := planRead(request.Read{Level: level, MaxStaleness: time.Second}, f)
			served := plan.step == stepServe
			wantServed := level == cachev1.Consistency_CONSISTENCY_EVENTUAL || level == cachev1.Consistency_CONSISTENCY_SESSION
			if served != wantServed {
				t.Errorf("%v on a cut-off replica (leader %v): plan %v", level, leader, plan.step)
			}
		}
	}
}
