package nodetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/elcache/elcache/node"
)

// Cluster is a set of real nodes in this process, each with its own gRPC
// server, gossip and data directory, with controls to kill, restart, add
// and partition them.
type Cluster struct {
	t    testing.TB
	opts []func(i int, c *node.Config)
	size int // the bootstrap expectation of the first nodes
	// Nodes[i] is node i, nil while it is stopped; Hooks[i] injects
	// faults into it (Config.Hooks, a new one at each start).
	Nodes   []*node.Node
	Hooks   []*node.Hooks
	Configs []node.Config
}

// StartCluster starts size nodes that form one cluster and waits until it
// has converged (every partition has a leader and its full replica set).
// Every node gets BootstrapExpect = size and node 0's gossip address to
// join; opts change each node's configuration (i is the node's index).
func StartCluster(t testing.TB, size int, opts ...func(i int, c *node.Config)) *Cluster {
	t.Helper()
	c := &Cluster{t: t, opts: opts, size: size}
	for i := 0; i < size; i++ {
		c.start(c.config(i))
	}
	c.WaitConverged(60 * time.Second)
	return c
}

func (c *Cluster) config(i int) node.Config {
	cfg := Config(c.t)
	cfg.NodeName = fmt.Sprintf("n%d", i)
	// Replicated groups need more slack than a lone voter: a leader that
	// cannot reach a quorum within the lease steps down, and the race
	// detector on 2 cores slows every node down several times.
	cfg.Raft.HeartbeatTimeout = 500 * time.Millisecond
	cfg.Raft.ElectionTimeout = 500 * time.Millisecond
	cfg.Raft.LeaderLeaseTimeout = 500 * time.Millisecond
	cfg.Raft.CommitTimeout = 20 * time.Millisecond
	cfg.Cluster.FailureGrace = 15 * time.Second
	if i > 0 && c.Nodes[0] != nil {
		cfg.Join = []string{c.Nodes[0].GossipAddr()}
	}
	cfg.BootstrapExpect = c.size
	for _, o := range c.opts {
		o(i, &cfg)
	}
	return cfg
}

func (c *Cluster) start(cfg node.Config) int {
	c.t.Helper()
	cfg.Hooks = new(node.Hooks)
	n, err := node.New(cfg)
	if err != nil {
		c.t.Fatalf("nodetest: start %s: %v", cfg.NodeName, err)
	}
	// Restarts reuse the addresses, so that seeds stay valid.
	cfg.GRPCAddr, cfg.GossipAddr = n.Addr(), n.GossipAddr()
	c.t.Cleanup(func() { n.Close() })
	for i, old := range c.Configs {
		if old.DataDir == cfg.DataDir {
			c.Nodes[i], c.Hooks[i], c.Configs[i] = n, cfg.Hooks, cfg
			return i
		}
	}
	c.Nodes = append(c.Nodes, n)
	c.Hooks = append(c.Hooks, cfg.Hooks)
	c.Configs = append(c.Configs, cfg)
	return len(c.Nodes) - 1
}

// Add starts a new node that joins the cluster and returns its index. It
// does not wait for rebalancing: call WaitConverged.
func (c *Cluster) Add() int {
	c.t.Helper()
	cfg := c.config(len(c.Nodes))
	var seeds []string
	for _, n := range c.Nodes {
		if n != nil {
			seeds = append(seeds, n.GossipAddr())
		}
	}
	cfg.Join = seeds
	return c.start(cfg)
}

// Kill stops node i as a crash would (no hand-off, no gossip leave).
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	if err := c.Hooks[i].Halt(); err != nil {
		c.t.Logf("nodetest: halt n%d: %v", i, err)
	}
	c.Nodes[i] = nil
}

// Stop stops node i gracefully.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	if err := c.Nodes[i].Close(); err != nil {
		c.t.Logf("nodetest: close n%d: %v", i, err)
	}
	c.Nodes[i] = nil
}

// Restart starts a stopped node i again on its data directory and
// addresses.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if c.Nodes[i] != nil {
		c.t.Fatalf("nodetest: n%d is running", i)
	}
	cfg := c.Configs[i]
	var seeds []string
	for j, n := range c.Nodes {
		if n != nil && j != i {
			seeds = append(seeds, n.GossipAddr())
		}
	}
	cfg.Join = seeds
	cfg.BootstrapExpect = 0
	c.start(cfg)
}

// Partition cuts the network between every node of side and every other
// running node, both ways (Raft, forwarding and gossip).
func (c *Cluster) Partition(side ...int) {
	in := make(map[int]bool)
	for _, i := range side {
		in[i] = true
	}
	for i, a := range c.Nodes {
		for j, b := range c.Nodes {
			if a == nil || b == nil || in[i] == in[j] {
				continue
			}
			c.Hooks[i].Block(b.ID(), b.GossipAddr())
		}
	}
}

// Pause makes node i behave like a stopped process that still answers its
// clients (node.Hooks.Pause): its Raft groups freeze and every other running
// node drops traffic to it. Resume ends it.
func (c *Cluster) Pause(i int) {
	c.Partition(i)
	c.Hooks[i].Pause()
}

// Resume ends Pause(i) and lifts every partition.
func (c *Cluster) Resume(i int) {
	if c.Nodes[i] != nil {
		c.Hooks[i].Resume()
	}
	c.Heal()
}

// Heal lifts every partition.
func (c *Cluster) Heal() {
	for i, n := range c.Nodes {
		if n != nil {
			c.Hooks[i].Unblock()
		}
	}
}

// Running returns the indexes of running nodes.
func (c *Cluster) Running() []int {
	var out []int
	for i, n := range c.Nodes {
		if n != nil {
			out = append(out, i)
		}
	}
	return out
}

// Index returns the index of the node with id, or -1.
func (c *Cluster) Index(id string) int {
	for i, n := range c.Nodes {
		if n != nil && n.ID() == id {
			return i
		}
	}
	return -1
}

// WaitConverged waits until every running node sees the same partition
// map version and a converged cluster, and fails the test after timeout.
func (c *Cluster) WaitConverged(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := c.converged()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nodetest: cluster did not converge in %v: %s", timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) converged() (bool, string) {
	var version uint64
	first := true
	for i, n := range c.Nodes {
		if n == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		ready := n.WaitReady(ctx) == nil
		cancel()
		if !ready {
			return false, fmt.Sprintf("n%d not ready", i)
		}
		if !n.Converged() {
			return false, fmt.Sprintf("n%d not converged (map version %d)", i, n.MapVersion())
		}
		if first {
			version, first = n.MapVersion(), false
		} else if n.MapVersion() != version {
			return false, fmt.Sprintf("map versions differ: n%d has %d, want %d", i, n.MapVersion(), version)
		}
	}
	return true, ""
}
