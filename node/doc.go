// Package node is the elcache server: it wires storage, gossip membership,
// the meta and partition Raft groups, the Raft transport (internal/raftnet)
// and the gRPC services together. DESIGN.md explains the cluster.
//
// Files by concern:
//
//   - config.go: Config, defaults and validation.
//   - node.go: New and Close, the gRPC server, health and reflection.
//   - partition.go: one partition's Raft group, proposals and applied-index
//     waiting.
//   - fsm.go: the replicated state machine that applies commands to storage.
//   - server.go: the cache.v1.Cache handlers.
//   - write.go: the write path every mode ends in: the request's
//     fingerprint, eviction victims, the proposal.
//   - internal/request: request validation; every limit is enforced there.
//   - errors.go: sentinel errors and the one mapping to gRPC status codes.
//   - evict.go: capacity eviction and the TTL reaper.
//   - writethrough.go: write modes against a backing database;
//     WRITE_THROUGH and WRITE_AROUND.
//   - writeback.go: WRITE_BACK: dirty writes under the backlog bound, and
//     the flusher.
//   - refill.go: refilling a miss from the database, one load per key,
//     and the refill fence (fillFence) that keeps a stale row out.
//   - raftconfig.go: every group's Raft config (the meta group: internal/meta).
//   - cluster.go: the controller: forming the cluster, writing the
//     partition map, starting and removing replicas, carrying out each
//     group's next configuration step (decided by internal/plan's
//     ReconcilePartition and ReconcileMeta), hand-off on shutdown.
//   - quorum.go: quorum contact, the leader's read lease built on it,
//     and refusing quorum reads and writes at once on a replica cut off
//     from its group's quorum.
//   - readplan.go: the five read levels as one pure decision (planRead):
//     from what a replica knows, serve here, confirm leadership, ask the
//     leader for a read index, forward, or refuse with a reason.
//   - reads.go: gathering a replica's facts for a read and carrying out
//     planRead's decision: waits, leases, read indexes.
//   - readround.go: the peer call and the ConfirmTerms answer of leadership
//     rounds, the quorum round of linearizable reads (internal/readround).
//   - pipeline.go: the Pipeline stream's Handler (internal/pipeline):
//     refusals, reads answered inline, calls run as their unary RPCs.
//   - route.go: request routing as pure decisions (planRoute, planRetry):
//     try the local replica, forward to the leader, refuse a forwarded
//     request, or hand a pipelined call back to run where it may wait.
//   - forward.go: forwarding requests to partition leaders, and the status
//     of an error with the leader hint it carries.
//   - leaders.go: what this node knows about other nodes: their addresses
//     (the book), the partitions they lead, the leader hint of an answer.
//   - topology.go, admin.go: Topology, WatchTopology, Members, Drain.
//   - hooks.go: Hooks, fault injection for tests (Config.Hooks).
//   - metrics.go: the state a scrape of /metrics reads (internal/metrics)
//     and the /metrics listener.
//
// The multiplexed Raft transport, coalesced heartbeats and pooled peer
// connections are a package of their own, internal/raftnet.
// Gossip membership on hashicorp/memberlist is internal/gossip.
// The meta leader's next cluster state (node table, partition map) and each
// group leader's next configuration step are pure decisions, internal/plan;
// cluster.go proposes and carries them out.
// Authentication, roles, rate limits and TLS are internal/auth (security.go).
// Raft's hclog output reaches the node's slog logger through
// internal/raftlog.
// Prometheus metrics (request metrics, the state collector, the /metrics
// handler) are internal/metrics (metrics.go).
// The backing database client (retries, circuit breaker, its errors) is
// internal/backend (backing.go).
package node
