package node

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// LogEntryForTest reads the entry at index of partition pid's Raft log on
// this node, as its log store holds it (for the tests of node_test).
func (n *Node) LogEntryForTest(pid uint32, index uint64) (*raft.Log, error) {
	p := n.part(pid)
	if p == nil {
		return nil, fmt.Errorf("node: partition %d has no replica on %s", pid, n.cfg.NodeName)
	}
	var l raft.Log
	if err := p.logs.GetLog(index, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// FaultFreeForTest reports whether this node's fault state is the zero
// one: no peer blocked, no pause, every promise kept, no fill hook and no
// read delay (for the tests of node_test).
func (n *Node) FaultFreeForTest() bool {
	f := n.faults
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.nodes == nil && f.gossip == nil && !f.all && f.paused.Load() == nil &&
		!f.brokenLease.Load() && !f.brokenFlushOrder.Load() && !f.brokenRefillFence.Load() && !f.brokenChanges.Load() &&
		f.fillHook.Load() == nil && f.readDelay.Load() == 0
}
