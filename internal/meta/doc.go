// Package meta is an elcache node's replica of the meta Raft group: the
// small group (id GroupID, 2^32, above every partition id) whose state is
// the cluster state, peerv1.ClusterState: the node table and the partition
// map, with a revision and a map version (DESIGN.md "One writer of
// placement: the meta group").
//
// Every node of a cluster holds a replica (a few voters, non-voters on the
// rest), so every node has the partition map locally and learns changes
// through Raft, in order. Its log is short: the state changes only when
// nodes come, go or drain, and a snapshot is the whole state.
//
// Who writes: the cluster leader (the meta group's Raft leader) proposes a
// whole new state with Group.Propose, a compare-and-set on the revision it
// was computed from. The FSM applies it only if that revision is still the
// current one, and then sets the revision to the next number; otherwise the
// proposal fails with ErrStaleRevision and nothing changes, so a leader
// that acted on an old state never overwrites a newer one.
//
// What readers may assume: Group.Current returns a state that is never nil
// and never modified afterwards (a change replaces it whole; clone it to
// derive a new one), with a channel closed when the state next changes.
// Revisions grow by one per applied change. A replica's state may lag the
// leader's: the node checks that its replica has applied what it knows to
// be committed before acting on the partition map.
//
// The package knows nothing of the node: the node builds the Raft
// configuration (Open takes it) and passes the Pebble-backed log store
// (storage.DB) and the group's transport (internal/raftnet); the node's
// controller changes the group's membership through Group.Raft.
package meta
