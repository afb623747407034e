package node_test

import (
	"strings"
	"testing"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
)

// TestHooksBoundToOneNode: New binds a Hooks to the node it starts and
// refuses it for a second node; a New that fails leaves it free; before
// New, Halt refuses and Pause does nothing.
func TestHooksBoundToOneNode(t *testing.T) {
	h := new(node.Hooks)
	if err := h.Halt(); err == nil {
		t.Fatal("Halt before New succeeded")
	}
	h.Pause() // nothing to pause yet: New must not block on it
	bad := nodetest.Config(t)
	bad.DataDir, bad.Hooks = "", h
	if _, err := node.New(bad); err == nil {
		t.Fatal("New without a DataDir succeeded")
	}
	first := nodetest.Start(t, func(c *node.Config) { c.NodeName, c.Hooks = "first", h })
	if first.Hooks != h {
		t.Fatalf("nodetest replaced the Hooks it was given")
	}

	second := nodetest.Config(t)
	second.NodeName, second.Hooks = "second", h
	n, err := node.New(second)
	if err == nil {
		n.Close()
		t.Fatal("New accepted a Hooks already given to another node")
	}
	if want := `node: Config.Hooks is already given to node "first"`; !strings.Contains(err.Error(), want) {
		t.Fatalf("New with a Hooks in use: %v, want %q", err, want)
	}
	// The refusal leaves the first binding alone.
	h.SetReadDelay(1)
	if first.FaultFreeForTest() {
		t.Fatal("the Hooks no longer reaches the node it was given to")
	}
	h.SetReadDelay(0)
	if !first.FaultFreeForTest() {
		t.Fatal("clearing the read delay left a fault")
	}
}

// TestNilHooksNoFaults: a node started without Hooks has the zero fault
// state, its own and untouched by another node's Hooks.
func TestNilHooksNoFaults(t *testing.T) {
	cfg := nodetest.Config(t)
	cfg.NodeName = "plain"
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.WaitReady(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	other := nodetest.Start(t)
	other.Hooks.Block(n.ID(), n.GossipAddr())
	other.Hooks.BreakLease(true)
	other.Hooks.Pause()
	defer other.Hooks.Resume()
	if other.FaultFreeForTest() {
		t.Fatal("FaultFreeForTest misses the faults of a node with Hooks")
	}
	if !n.FaultFreeForTest() {
		t.Fatal("a node without Hooks has a fault")
	}
}
