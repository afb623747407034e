// Package node is the elcache server: it wires storage, gossip membership,
// the meta and partition Raft groups, the Raft transport and the gRPC
// services together. DESIGN.md explains the cluster; its sections name the
// files below.
//
// Files by concern. The node and its groups:
//
//   - config.go: Config, defaults and validation.
//   - node.go: New and Close, the gRPC server, health and reflection.
//   - raftconfig.go: every group's Raft config.
//   - partition.go: one partition's Raft group, proposals and applied-index
//     waiting.
//   - fsm.go: the replicated state machine that applies commands to storage.
//   - quorum.go: quorum contact, the leader's read lease built on it, and
//     refusing quorum reads and writes at once on a replica cut off from
//     its group's quorum.
//   - cluster.go: the controller: forming the cluster, writing the
//     partition map, starting and removing replicas, carrying out each
//     group's next configuration step, hand-off on shutdown.
//   - evict.go: capacity eviction and the TTL reaper.
//
// Requests:
//
//   - server.go: the cache.v1.Cache handlers and the metadata of their
//     answers.
//   - mutate.go: Mutate, read-modify-write in one Raft command: the pure
//     decision (mutate) every replica takes as it applies the command.
//   - route.go: request routing as pure decisions (planRoute, planRetry):
//     try the local replica, forward to the leader, refuse a forwarded
//     request, or hand a pipelined call back to run where it may wait.
//   - forward.go: forwarding requests to partition leaders, and the status
//     of an error with the leader hint it carries.
//   - leaders.go: what this node knows about other nodes: their addresses
//     (the book), the partitions they lead, leader hints.
//   - pipeline.go: the Pipeline stream's Handler: refusals, reads answered
//     inline, calls run as their unary RPCs.
//   - errors.go: sentinel errors and the one mapping to gRPC status codes.
//   - topology.go, admin.go: Topology, WatchTopology, Members, Drain,
//     Backup.
//
// Reads:
//
//   - readplan.go: the five read levels as one pure decision (planRead):
//     from what a replica knows, serve here, confirm leadership, ask the
//     leader for a read index, forward, or refuse with a reason.
//   - reads.go: gathering a replica's facts for a read and carrying out
//     planRead's decision: waits, leases, read indexes; the peer calls and
//     answers of read indexes and leadership rounds.
//
// Writes and the database behind the cache:
//
//   - write.go: the write path every mode ends in: the request's
//     fingerprint, eviction victims, the proposal.
//   - writethrough.go: WRITE_THROUGH and WRITE_AROUND.
//   - writeback.go: WRITE_BACK: dirty writes under the backlog bound, and
//     the flusher.
//   - refill.go: refilling a miss from the database, one load per key,
//     and the refill fence (fillFence) that keeps a stale row out.
//   - backing.go: opening the backing database.
//
// Operations:
//
//   - security.go: Role, Token and TLSFiles, and the guard's adapters.
//   - metrics.go: the state a scrape of /metrics reads, and the /metrics
//     and profiler listeners.
//   - hooks.go: Hooks, fault injection for tests (Config.Hooks).
//
// Parts with a life of their own are packages under internal/, each behind
// a small API: raftnet (the multiplexed Raft transport, coalesced
// heartbeats, pooled peer connections), gossip (membership on
// hashicorp/memberlist), meta (the meta Raft group), plan (the meta
// leader's next cluster state and each group's next configuration step,
// as pure decisions), readround (leadership rounds), request (validation:
// every limit is enforced there), pipeline (the Pipeline stream engine),
// auth (authentication, roles, rate limits, TLS), backend (the backing
// database client: retries, circuit breaker), metrics (Prometheus, the operator HTTP listeners) and
// raftlog (raft's log output into slog).
package node
