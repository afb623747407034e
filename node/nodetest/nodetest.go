// Package nodetest starts real elcache nodes inside tests: a real gRPC
// server on 127.0.0.1:0, real Raft groups and Pebble in a temporary data
// directory, with timeouts shortened so tests run fast.
package nodetest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/elcache/elcache/node"
)

// Node is a running test node. Hooks injects faults into it: it is
// Config.Hooks, which StartConfig sets when it is nil.
type Node struct {
	*node.Node
	Hooks  *node.Hooks
	Config node.Config
}

// Config returns a node configuration for tests: 8 partitions, fast Raft
// timeouts, a fresh data directory and logs only when ELCACHE_TEST_LOG is
// set.
func Config(t testing.TB) node.Config {
	cfg := node.DefaultConfig()
	cfg.NodeName = "test-node"
	cfg.DataDir = t.TempDir()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.GossipAddr = "127.0.0.1:0"
	cfg.Partitions = 8
	cfg.Raft.HeartbeatTimeout = 100 * time.Millisecond
	cfg.Raft.ElectionTimeout = 100 * time.Millisecond
	cfg.Raft.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.Raft.CommitTimeout = 5 * time.Millisecond
	cfg.ReapInterval = 50 * time.Millisecond
	cfg.EvictInterval = 20 * time.Millisecond
	cfg.ReclaimInterval = 100 * time.Millisecond
	cfg.Cluster.FastGossip = true
	cfg.Cluster.ReconcileInterval = 50 * time.Millisecond
	cfg.Cluster.FailureGrace = 3 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("ELCACHE_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

// Start starts a node with Config(t) changed by the options, waits until it
// is ready, and closes it when the test ends.
func Start(t testing.TB, opts ...func(*node.Config)) *Node {
	t.Helper()
	cfg := Config(t)
	for _, o := range opts {
		o(&cfg)
	}
	return StartConfig(t, cfg)
}

// StartConfig starts a node with exactly cfg (and a new Hooks if it has
// none) and waits until it is ready.
func StartConfig(t testing.TB, cfg node.Config) *Node {
	t.Helper()
	if cfg.Hooks == nil {
		cfg.Hooks = new(node.Hooks)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("nodetest: start node: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatalf("nodetest: node not ready: %v", err)
	}
	return &Node{Node: n, Hooks: cfg.Hooks, Config: cfg}
}
