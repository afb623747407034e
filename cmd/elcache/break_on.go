//go:build elcache_break

package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/elcache/elcache/node"
)

// breakSwitches reads ELCACHE_BREAK, a comma-separated list of promises
// this node must break on purpose, for a self-test that proves its
// checkers catch them:
//
//   - lease-check: LEASE reads skip the lease check (Node.BreakLeaseForTest).
//   - flush-order: the write-back flusher marks rows clean before writing
//     them to the database (Node.BreakFlushOrderForTest).
//   - refill-fence: refills are stored without their fence
//     (Node.BreakRefillFenceForTest); give it to every node of the cluster.
//   - replicated-ack: REPLICATED writes are acknowledged before the
//     operating system has them (Node.BreakReplicatedForTest); give it to
//     every node, and kill them all at once.
//
// It runs before the node starts, so that an unknown name refuses to
// start; the returned function turns the switches on once the node is up
// and logs a warning naming them. This file is built only with -tags
// elcache_break; break_off.go refuses ELCACHE_BREAK otherwise.
func breakSwitches(getenv func(string) string) (func(*node.Node, *slog.Logger), error) {
	var names []string
	var switches []func(*node.Node, bool)
	for _, name := range strings.Split(getenv("ELCACHE_BREAK"), ",") {
		var sw func(*node.Node, bool)
		switch name = strings.TrimSpace(name); name {
		case "":
			continue
		case "lease-check":
			sw = (*node.Node).BreakLeaseForTest
		case "flush-order":
			sw = (*node.Node).BreakFlushOrderForTest
		case "refill-fence":
			sw = (*node.Node).BreakRefillFenceForTest
		case "replicated-ack":
			sw = (*node.Node).BreakReplicatedForTest
		default:
			return nil, fmt.Errorf("ELCACHE_BREAK: unknown switch %q (valid: lease-check, flush-order, refill-fence, replicated-ack)", name)
		}
		names, switches = append(names, name), append(switches, sw)
	}
	return func(n *node.Node, log *slog.Logger) {
		if len(switches) == 0 {
			return
		}
		for _, sw := range switches {
			sw(n, true)
		}
		log.Warn("BROKEN ON PURPOSE (ELCACHE_BREAK): this node breaks the promises named for a self-test; never give it real data",
			"break", strings.Join(names, ","))
	}, nil
}
