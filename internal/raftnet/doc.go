// Package raftnet is the multi-raft transport of an elcache node: every
// Raft group hosted on the node talks to its peers through one Net, over
// the node's gRPC port (the peer.v1 Raft service) and pooled connections,
// one per peer and traffic class (Class).
//
// A Net hands out one Transport per group (Net.Transport), which
// implements raft.Transport and raft.WithPreVote. A replica's raft
// ServerID and ServerAddress are both its node id; Config.Resolve turns a
// node id into an address at call time.
//
// What it adds to a plain transport, in files of their own:
//
//   - transport.go: Net, its Config and the registry of group transports.
//   - group.go: one group's Transport and the bookkeeping the node's read
//     levels need: per follower the send time of the latest accepted
//     append (Transport.Match, for leases), the leader's commit index as a
//     follower last saw it under a lease (Transport.FreshCommit, for
//     bounded staleness), and leadership transfers (Transport.TransferAt).
//   - send.go: outgoing unary RPCs with deadlines on every call (raft sets
//     none), and appends split to fit a message.
//   - pipeline.go: append pipelines with at most two appends in flight.
//   - serve.go: the Raft service for incoming RPCs, and the heartbeat fast
//     path.
//   - snapshot.go: snapshots streamed in chunks, both ends.
//   - convert.go: raft's RPC structs to and from peer.v1 messages.
//   - heartbeat.go: coalesced heartbeats. Every group's heartbeats to one
//     peer travel in one Heartbeats call, at most one per
//     Config.HeartbeatInterval, and an idle group's repeated empty append
//     rides the same call.
//   - peerconn.go: the pooled peer connections and their dial options.
//
// Net also remembers when each peer last talked to this node (HeardAt,
// HeardWithin, Isolated), which the node uses to refuse quorum reads and
// writes at once when it is cut off.
//
// raftnet imports nothing of the node: errors the node's raft returns
// become gRPC statuses through Config.ErrorStatus.
package raftnet
