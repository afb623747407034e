// Package node is the elcache server: it wires storage, the partition Raft
// groups and the gRPC services together.
//
// Files by concern:
//
//   - config.go: Config, defaults and validation.
//   - node.go: New and Close, the gRPC server, health and reflection.
//   - partition.go: one partition's Raft group, proposals and applied-index
//     waiting.
//   - fsm.go: the replicated state machine that applies commands to storage.
//   - server.go: the cache.v1.Cache handlers.
//   - validate.go: request validation; every limit is enforced here.
//   - errors.go: sentinel errors and the one mapping to gRPC status codes.
//   - evict.go: capacity eviction and the TTL reaper.
package node
