// Package plan is the cluster leader's decision of the next cluster state:
// given the current ClusterState (proto/peer/v1), the gossip view of the
// members and the time, Planner.Next returns the state the meta leader
// writes next, or nil when nothing changes (DESIGN.md "One writer of
// placement: the meta group").
//
// Gossip says who is up; it never places anything by itself, because
// different nodes see different views during churn. Only the meta group's
// leader writes the cluster state, a whole new state with a compare-and-set
// on the revision, and this package is how it computes that state:
//
//   - a new live (alive or suspect) member is added ACTIVE; a FAILED one
//     that is back, or a DRAINING one that restarted (a new boot id),
//     becomes ACTIVE again; every live member's name, addresses and boot id
//     are copied from gossip;
//   - an ACTIVE member gone (dead, left, or never seen since the planner
//     started) for at least FailureGrace becomes FAILED: only then are its
//     replicas placed elsewhere. A node back within the grace keeps its
//     place and catches up from its own log; a leave on shutdown counts as
//     gone, because a restart usually follows;
//   - placement is ring.Place over the ACTIVE nodes, leaders balanced
//     (ring.Placement.BalanceLeaders): a pure function of the partition
//     count, the replication factor, the leader Load (1.25) and the set of
//     active ids, so anyone can check the stored map (DESIGN.md
//     "Placement: consistent hashing for leaders, bounded rendezvous for
//     followers"). With no active node the map stays as it is;
//   - the map version grows only when a partition's replica set changes; a
//     partition's bootstrap voters are set once, when it is first placed,
//     and never change;
//   - a DRAINING node that is gone and holds no replica leaves the table;
//   - the partition count and replication factor are fixed when the first
//     state (revision 0) is planned.
//
// Next is deterministic given its inputs and the Config: it never reads
// the clock (now is passed in), does no I/O and never changes cur. The node
// table comes out sorted by id. The Planner remembers the latest placement
// it computed, because ring.Place builds a consistent-hash ring per call
// and its inputs change only when the active nodes do; the memo changes
// the cost, never the result.
//
// Reconciling a Raft group toward the replicas it should have is decided
// here too (reconcile.go), one step at a time, from a plain Group (the
// configuration's servers and suffrage, the replicas wanted, who is alive,
// caught up or blocked), without importing raft: ReconcilePartition for a
// partition's group (add missing replicas as non-voters, promote caught-up
// ones, wait until every live placed replica votes, remove unplaced ones,
// handing leadership over first when the leader itself goes, then move
// leadership to the preferred leader); ReconcileMeta for the meta group
// (every active or draining node holds a replica, MetaVoters of them
// vote); Left for when a replica the map no longer places may be deleted
// (a committed configuration leaves it out). The node gathers the facts
// and carries the Step out with raft.
//
// The package imports the peer protocol, ring and internal/gossip (for
// the member view) and nothing of the node.
package plan
