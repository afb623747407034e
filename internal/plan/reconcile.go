package plan

import (
	"slices"
	"sort"

	"github.com/elcache/elcache/internal/gossip"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
)

// MaxMetaVoters is the most voters the meta group has; other nodes hold
// non-voting replicas, so that every node has the partition map locally.
const MaxMetaVoters = 5

// Suffrage is a server's say in its Raft group, as the group's
// configuration records it. The zero value is no suffrage: the server is
// not in the configuration.
type Suffrage uint8

const (
	// Voter votes in elections and counts toward the commit quorum.
	Voter Suffrage = iota + 1
	// Nonvoter receives the log but does not vote.
	Nonvoter
	// Staging is any other suffrage (raft's Staging): such a server is
	// neither promoted nor counted as a voter.
	Staging
)

// Server is one server of a Raft group's configuration.
type Server struct {
	ID       string
	Suffrage Suffrage
}

// Group is what the leader of a Raft group knows when it moves the group's
// configuration one step toward the replicas it wants.
type Group struct {
	// Self is this node, the group's leader.
	Self string
	// Servers is the group's current configuration, in its order.
	Servers []Server
	// Want is the replicas wanted: for a partition, the map's replicas
	// with the preferred leader first; for the meta group, MetaMembers.
	Want []string
	// Alive holds the members gossip sees alive or suspect (see Alive).
	Alive map[string]bool
	// CaughtUp holds the servers that recently acknowledged the leader's
	// log up to close to its end. Only the ids in Want are looked up.
	CaughtUp map[string]bool
	// Blocked holds the nodes that fault injection cuts this node off
	// from: leadership is never moved to one for balance.
	Blocked map[string]bool
}

// suffrages returns each server's suffrage by id and the number of voters.
func (g *Group) suffrages() (map[string]Suffrage, int) {
	in := make(map[string]Suffrage, len(g.Servers))
	voters := 0
	for _, s := range g.Servers {
		in[s.ID] = s.Suffrage
		if s.Suffrage == Voter {
			voters++
		}
	}
	return in, voters
}

// Op is the kind of a reconciliation step.
type Op uint8

const (
	// Nothing: the configuration matches, or the next change must wait.
	Nothing Op = iota
	// AddNonvoter adds a missing replica as a non-voter.
	AddNonvoter
	// Promote makes a non-voter a voter.
	Promote
	// Remove takes a server out of the configuration.
	Remove
	// Demote makes a voter a non-voter.
	Demote
	// HandOver transfers leadership away from a leader that is no longer
	// wanted, so that the new leader removes it. The leader flushes its
	// write-back entries first.
	HandOver
	// MoveLeader transfers leadership to the preferred leader.
	MoveLeader
)

// String returns what the step does, as the node logs it.
func (o Op) String() string {
	switch o {
	case AddNonvoter:
		return "add non-voter"
	case Promote:
		return "promote"
	case Remove:
		return "remove"
	case Demote:
		return "demote"
	case HandOver:
		return "hand over leadership"
	case MoveLeader:
		return "move leadership to the preferred leader"
	}
	return "nothing"
}

// Step is one change to a group's configuration or leadership: Op applied
// to the server ID (for HandOver and MoveLeader, the new leader).
type Step struct {
	Op Op
	ID string
}

// ReconcilePartition returns the one change the leader of a partition's
// group makes next toward g.Want, in the safe order (DESIGN.md
// "Reconciling groups toward the map"):
//
//  1. add the first wanted replica missing from the configuration that is
//     alive, as a non-voter;
//  2. promote the first wanted non-voter that is caught up;
//  3. wait while a wanted replica that is alive does not vote yet;
//  4. remove the first server, in configuration order, that is not wanted
//     (alive or not); if that is the leader itself, hand leadership to the
//     first wanted voter that is alive and caught up, or wait if there is
//     none;
//  5. move leadership to the preferred leader, g.Want[0], when it is
//     another node, votes, is alive, caught up and not blocked.
//
// With nothing wanted it does nothing.
func ReconcilePartition(g Group) Step {
	if len(g.Want) == 0 {
		return Step{}
	}
	in, _ := g.suffrages()
	for _, id := range g.Want {
		if in[id] == 0 && g.Alive[id] {
			return Step{AddNonvoter, id}
		}
	}
	for _, id := range g.Want {
		if in[id] == Nonvoter && g.CaughtUp[id] {
			return Step{Promote, id}
		}
	}
	for _, id := range g.Want {
		if in[id] != Voter && g.Alive[id] {
			return Step{} // wait until every placed replica votes before removing any
		}
	}
	for _, s := range g.Servers {
		if slices.Contains(g.Want, s.ID) {
			continue
		}
		if s.ID == g.Self {
			if to := g.handOverTarget(in); to != "" {
				return Step{HandOver, to}
			}
			return Step{}
		}
		return Step{Remove, s.ID}
	}
	if pref := g.Want[0]; pref != g.Self && in[pref] == Voter && g.Alive[pref] && g.CaughtUp[pref] && !g.Blocked[pref] {
		return Step{MoveLeader, pref}
	}
	return Step{}
}

// handOverTarget picks a live, caught-up wanted voter other than the
// leader to take over, the first in g.Want (the preferred leader first).
func (g *Group) handOverTarget(in map[string]Suffrage) string {
	for _, id := range g.Want {
		if id != g.Self && in[id] == Voter && g.Alive[id] && g.CaughtUp[id] {
			return id
		}
	}
	return ""
}

// MetaMembers returns, sorted and without repeats, the nodes that hold a
// replica of the meta group: the ACTIVE and DRAINING ones of st.
func MetaMembers(st *peerv1.ClusterState) []string {
	var ids []string
	for _, r := range st.Nodes {
		if r.State == peerv1.NodeRecord_STATE_ACTIVE || r.State == peerv1.NodeRecord_STATE_DRAINING {
			ids = append(ids, r.Id)
		}
	}
	sort.Strings(ids)
	return slices.Compact(ids)
}

// MetaVoters returns how many of n meta members vote: at most
// MaxMetaVoters, and an odd count, since an even one adds no fault
// tolerance.
func MetaVoters(n int) int {
	target := min(n, MaxMetaVoters)
	if target%2 == 0 && target > 1 {
		target--
	}
	return target
}

// ReconcileMeta returns the one change the meta group's leader makes next
// toward: every one of g.Want (MetaMembers, sorted) holds a replica,
// MetaVoters(len(g.Want)) of them vote, no other node holds one. In order:
//
//  1. remove the first server, in configuration order, that is not wanted
//     and is not the leader itself;
//  2. add the first wanted node missing from the configuration that is
//     alive, as a non-voter;
//  3. with too few voters, promote the first wanted non-voter that is
//     alive and caught up;
//  4. with too many, demote a voter other than the leader: the last one
//     in configuration order that is not alive, else the first one.
func ReconcileMeta(g Group) Step {
	in, voters := g.suffrages()
	for _, s := range g.Servers {
		if !slices.Contains(g.Want, s.ID) && s.ID != g.Self {
			return Step{Remove, s.ID}
		}
	}
	for _, id := range g.Want {
		if in[id] == 0 && g.Alive[id] {
			return Step{AddNonvoter, id}
		}
	}
	target := MetaVoters(len(g.Want))
	if voters < target {
		for _, id := range g.Want {
			if in[id] == Nonvoter && g.Alive[id] && g.CaughtUp[id] {
				return Step{Promote, id}
			}
		}
	}
	if voters > target {
		var pick string
		for _, s := range g.Servers {
			if s.Suffrage == Voter && s.ID != g.Self && (pick == "" || !g.Alive[s.ID]) {
				pick = s.ID
			}
		}
		if pick != "" {
			return Step{Demote, pick}
		}
	}
	return Step{}
}

// Alive returns the ids of the members gossip sees alive or suspect.
func Alive(members []gossip.Member) map[string]bool {
	out := make(map[string]bool)
	for _, m := range members {
		if m.State == gossip.Alive || m.State == gossip.Suspect {
			out[m.ID] = true
		}
	}
	return out
}

// Left reports whether a configuration of a group, listing the servers
// ids, shows that self left the group for good: it is committed and does
// not list self. Only then may self delete its replica: a configuration
// that is only appended can still be rolled back by a new leader, and
// self would then be a voter with its data gone.
func Left(self string, ids []string, committed bool) bool {
	return committed && !slices.Contains(ids, self)
}
