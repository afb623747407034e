//go:build !elcache_break

package main

import (
	"errors"
	"log/slog"

	"github.com/elcache/elcache/node"
)

// breakSwitches refuses ELCACHE_BREAK: this binary was built without the
// test-only switches that break promises on purpose (break_on.go, built
// with -tags elcache_break), and a self-test must never run silently
// against a node that keeps them. Without ELCACHE_BREAK it does nothing:
// the node has no Hooks.
func breakSwitches(getenv func(string) string) (*node.Hooks, func(*slog.Logger), error) {
	if getenv("ELCACHE_BREAK") != "" {
		return nil, nil, errors.New("ELCACHE_BREAK is set but this binary was built without -tags elcache_break")
	}
	return nil, func(*slog.Logger) {}, nil
}
