package node

import "github.com/hashicorp/raft"

// raftConfig returns the Raft configuration every group of this node uses.
// maxAppendEntries is how many entries raft puts in one append, and how
// many queued proposals its leader takes into one log write (raft's
// default is 64). A follower that lags (restarted, or slow) catches up in
// 8x fewer round trips, which is what a failover waits for when the new
// leader's only peer is that follower; the transport splits an append
// that would not fit in one gRPC message (Transport.splitAppend).
const maxAppendEntries = 512

func raftConfig(nodeID string, c RaftConfig) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(nodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotInterval = c.SnapshotInterval
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.TrailingLogs = c.TrailingLogs
	rc.MaxAppendEntries = maxAppendEntries
	// BatchApplyCh stays off: with it, Apply can hand a future to a
	// buffered channel that a shutting-down leader never drains, and the
	// future never resolves (a caller waiting on it hangs for ever).
	rc.BatchApplyCh = false
	return rc
}
