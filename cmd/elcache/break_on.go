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
//   - lease-check: LEASE reads skip the lease check (Hooks.BreakLease).
//   - flush-order: the write-back flusher marks rows clean before writing
//     them to the database (Hooks.BreakFlushOrder).
//   - refill-fence: refills are stored without their fence
//     (Hooks.BreakRefillFence); give it to every node of the cluster.
//   - changes-feed: Changes streams send no key changes, only progress
//     marks, so near caches keep overwritten copies (Hooks.BreakChanges).
//   - replicated-ack: REPLICATED writes are acknowledged before the
//     operating system has them (Hooks.BreakReplicated); give it to
//     every node, and kill them all at once.
//
// It runs before the node starts, so that an unknown name refuses to
// start. It returns the node.Hooks to set in the node's Config (nil
// without ELCACHE_BREAK) and a function that turns the switches on once
// the node is up and logs a warning naming them. This file is built only
// with -tags elcache_break; break_off.go refuses ELCACHE_BREAK otherwise.
func breakSwitches(getenv func(string) string) (*node.Hooks, func(*slog.Logger), error) {
	var names []string
	var switches []func(*node.Hooks, bool)
	for _, name := range strings.Split(getenv("ELCACHE_BREAK"), ",") {
		var sw func(*node.Hooks, bool)
		switch name = strings.TrimSpace(name); name {
		case "":
			continue
		case "lease-check":
			sw = (*node.Hooks).BreakLease
		case "flush-order":
			sw = (*node.Hooks).BreakFlushOrder
		case "refill-fence":
			sw = (*node.Hooks).BreakRefillFence
		case "replicated-ack":
			sw = (*node.Hooks).BreakReplicated
		case "changes-feed":
			sw = (*node.Hooks).BreakChanges
		default:
			return nil, nil, fmt.Errorf("ELCACHE_BREAK: unknown switch %q (valid: lease-check, flush-order, refill-fence, replicated-ack, changes-feed)", name)
		}
		names, switches = append(names, name), append(switches, sw)
	}
	if len(switches) == 0 {
		return nil, func(*slog.Logger) {}, nil
	}
	hooks := new(node.Hooks)
	return hooks, func(log *slog.Logger) {
		for _, sw := range switches {
			sw(hooks, true)
		}
		log.Warn("BROKEN ON PURPOSE (ELCACHE_BREAK): this node breaks the promises named for a self-test; never give it real data",
			"break", strings.Join(names, ","))
	}, nil
}
