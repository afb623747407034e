package node

import (
	"fmt"
	"time"

	"github.com/elcache/elcache/internal/request"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// What a replica does with a read, decided by one pure function of what
// the replica knows (DESIGN.md "Reads"). planRead holds every rule of the
// five levels; reads.go gathers the facts a level needs (replicaFacts),
// asks planRead, and carries the plan out: waits, leadership rounds, read
// index calls, forwarding. The rules are table-tested without a cluster
// (readplan_test.go).

// readStep is the first thing a replica does with a read.
type readStep int

const (
	// stepServe: serve from this replica once it has applied
	// readPlan.waitIndex (at once when that is zero).
	stepServe readStep = iota
	// stepConfirm: this replica leads or knows no leader; confirm
	// leadership with a leadership round (waiting for a leader first if
	// there is none), then serve at the confirmed commit index.
	stepConfirm
	// stepAskLeader: a follower asks its leader for a read index
	// (Peer.ReadIndex), then serves once it has applied it, waiting at
	// most followerWait before it forwards the read.
	stepAskLeader
	// stepForward: the read goes to the leader.
	stepForward
	// stepRefuse: the read fails with readPlan.err.
	stepRefuse
)

func (s readStep) String() string {
	switch s {
	case stepServe:
		return "serve"
	case stepConfirm:
		return "confirm"
	case stepAskLeader:
		return "ask-leader"
	case stepForward:
		return "forward"
	case stepRefuse:
		return "refuse"
	}
	return fmt.Sprintf("readStep(%d)", int(s))
}

// readPlan is planRead's decision.
type readPlan struct {
	step readStep
	// level is the level the read is served at: a LEASE read without a
	// lease, and a SESSION read whose token is of another log
	// incarnation, are served as LINEARIZABLE.
	level cachev1.Consistency
	// waitIndex is the index this replica must have applied before it
	// serves (stepServe).
	waitIndex uint64
	// followerWait: the wait for waitIndex is a follower's, at most
	// followerWait; when it runs out the read is forwarded (or, for
	// BOUNDED, decided again by boundedMiss).
	followerWait bool
	// staleness bounds how old the data served may be; -1 when unknown.
	// When freshSince is set, the bound is the time since then, taken
	// when the read is served: a BOUNDED read whose wait to apply took it
	// past its bound is not served from here after all (reads.go).
	staleness  time.Duration
	freshSince time.Time
	// recheckLease: the lease must still hold after the data is read.
	recheckLease bool
	// err is why a read is refused (stepRefuse).
	err error
}

// replicaFacts is what one replica of a partition knows when a read
// arrives. Only the fields the read's level looks at are filled in
// (gatherFacts): an EVENTUAL read looks at none.
type replicaFacts struct {
	partition uint32
	now       time.Time

	// leader: this replica is its group's leader. ready: it leads and
	// has committed in its term. leaderKnown: it knows a leader (itself
	// included).
	leader, ready, leaderKnown bool
	// quorumErr is set when this replica has heard from no quorum of its
	// group for an election timeout (quorum.go): it refuses reads that
	// need one.
	quorumErr error

	// leaseExpiry is when this leader's read lease ends (zero: none).
	// quorumContact is the send time of the latest append a quorum
	// accepted in this term (zero: none). commitIndex is the leader's.
	leaseExpiry   time.Time
	quorumContact time.Time
	commitIndex   uint64

	// freshIndex, freshAt: on a follower, the commit index carried by the
	// latest append its leader sent under a lease, and when the leader
	// checked that lease (raftnet Transport.FreshCommit).
	freshIndex uint64
	freshAt    time.Time

	// epoch is this replica's log incarnation; lastIndex its last log
	// index (a leader checks session tokens against it).
	epoch, lastIndex uint64

	// brokenLease is the self-test switch that skips a lease read's
	// check (Hooks.BreakLease).
	brokenLease bool
}

// planRead decides how a replica with facts f serves a read at o's level.
func planRead(o request.Read, f replicaFacts) readPlan {
	switch o.Level {
	case cachev1.Consistency_CONSISTENCY_LINEARIZABLE:
		return planLinearizable(f)
	case cachev1.Consistency_CONSISTENCY_LEASE:
		return planLease(f)
	case cachev1.Consistency_CONSISTENCY_BOUNDED:
		return planBounded(f, o.MaxStaleness)
	case cachev1.Consistency_CONSISTENCY_SESSION:
		return planSession(f, o.Tokens)
	default: // EVENTUAL: the replica serves what it has.
		return readPlan{step: stepServe, level: o.Level, staleness: -1}
	}
}

// planLinearizable: a replica cut off from its quorum refuses; a leader
// (or a replica that knows no leader) confirms leadership with a round; a
// follower asks its leader for a read index.
func planLinearizable(f replicaFacts) readPlan {
	plan := readPlan{level: cachev1.Consistency_CONSISTENCY_LINEARIZABLE}
	switch {
	case f.quorumErr != nil:
		plan.step, plan.err = stepRefuse, f.quorumErr
	case f.leader || !f.leaderKnown:
		plan.step = stepConfirm
	default:
		plan.step = stepAskLeader
	}
	return plan
}

// planLease: a leader holding a lease serves what it has committed and
// checks the lease again before it replies; without a lease the read is
// LINEARIZABLE.
func planLease(f replicaFacts) readPlan {
	level := cachev1.Consistency_CONSISTENCY_LEASE
	if f.brokenLease && f.ready {
		// Self-test only: the lease is not checked at all.
		return readPlan{step: stepServe, level: level}
	}
	if !f.now.Before(f.leaseExpiry) {
		return planLinearizable(f)
	}
	return readPlan{step: stepServe, level: level, waitIndex: f.commitIndex, recheckLease: true}
}

// planBounded: a replica serves if it can prove its data is no older than
// max. A leader proves it by its lease (nothing else can commit) or by
// its last quorum contact within max; otherwise it confirms with a
// round. A follower proves it by the latest append its leader sent under
// a lease, once it has applied that append's commit index.
func planBounded(f replicaFacts, max time.Duration) readPlan {
	level := cachev1.Consistency_CONSISTENCY_BOUNDED
	if f.leader {
		if f.ready {
			if f.now.Before(f.leaseExpiry) {
				return readPlan{step: stepServe, level: level, waitIndex: f.commitIndex}
			}
			if at := f.quorumContact; !at.IsZero() && f.now.Sub(at) <= max {
				return readPlan{step: stepServe, level: level, waitIndex: f.commitIndex, freshSince: at}
			}
		}
		return readPlan{step: stepConfirm, level: level}
	}
	if at := f.freshAt; !at.IsZero() && f.now.Sub(at) <= max {
		return readPlan{step: stepServe, level: level, waitIndex: f.freshIndex, followerWait: true, freshSince: at}
	}
	return boundedMiss(f, max)
}

// boundedMiss is where a BOUNDED read goes when a follower cannot prove
// its bound: to the leader, or, with no leader known, nowhere.
func boundedMiss(f replicaFacts, max time.Duration) readPlan {
	if f.leaderKnown {
		return readPlan{step: stepForward, level: cachev1.Consistency_CONSISTENCY_BOUNDED}
	}
	since := "never"
	if !f.freshAt.IsZero() {
		since = f.now.Sub(f.freshAt).Round(time.Millisecond).String() + " ago"
	}
	return readPlan{step: stepRefuse, level: cachev1.Consistency_CONSISTENCY_BOUNDED,
		err: fmt.Errorf("%w: partition %d: this replica cannot prove its data is within max_staleness %v "+
			"(last fresh leader contact: %s) and knows no leader", ErrUnavailable, f.partition, max, since)}
}

// planSession: a replica serves once it has applied the index of the
// session's token for its partition (a follower waits at most
// followerWait, then forwards). A token of another log incarnation says
// nothing about this one: the read is LINEARIZABLE. A token beyond a
// leader's log was not issued by this group.
func planSession(f replicaFacts, tokens []*cachev1.SessionToken) readPlan {
	plan := readPlan{step: stepServe, level: cachev1.Consistency_CONSISTENCY_SESSION, staleness: -1}
	for _, t := range tokens {
		if t.GetPartition() != f.partition {
			continue
		}
		if t.GetEpoch() != f.epoch {
			return planLinearizable(f)
		}
		if f.leader {
			if t.GetIndex() > f.lastIndex {
				plan.step = stepRefuse
				plan.err = fmt.Errorf("%w: session token for partition %d is at index %d, beyond the log (%d)",
					ErrInvalidArgument, f.partition, t.GetIndex(), f.lastIndex)
				return plan
			}
			plan.waitIndex = t.GetIndex()
			return plan
		}
		plan.waitIndex, plan.followerWait = t.GetIndex(), true
		return plan
	}
	return plan
}
