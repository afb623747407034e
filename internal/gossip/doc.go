// Package gossip is an elcache node's cluster membership: who is in the
// cluster and whether each member is up, by gossip over
// hashicorp/memberlist. It is the only package of the module that imports
// memberlist, and it imports nothing of the node.
//
// memberlist does failure detection (SWIM probes, suspicion, refutation)
// and spreads each node's metadata; this package adapts it to elcache:
//
//   - the memberlist node name is the node id (unique and stable); the
//     human name, gRPC address, boot id and has-cluster flag travel in a
//     small versioned metadata record (meta.go);
//   - memberlist's callbacks run under its locks, so they only update a map
//     under our own mutex and poke a coalesced Changes channel
//     (delegate.go, members.go);
//   - a background loop joins the seeds (with backoff), re-announces this
//     node when a peer still holds an outdated entry for it (a restart at a
//     new address), and reconnects to failed members so a healed partition
//     merges again (memberlist never contacts a node it thinks is dead)
//     (join.go);
//   - the transport wraps memberlist's NetTransport to inject faults
//     (Config.Allow) and to close every connection and abort every dial on
//     Close (transport.go);
//   - memberlist's log lines reach the Config's slog.Logger one level
//     lower than memberlist tags them (log.go).
//
// What it promises: New validates its Config (Config.Validate reports
// every problem) and starts gossip; Members is this node's view of every
// member seen during the run, with its State and when it last changed;
// Changes signals (coalesced) every change of that view; a member that
// called Leave is seen Left, not Dead; Close is idempotent and returns
// once memberlist's listeners, connections, probes and this package's
// goroutines have stopped.
package gossip
