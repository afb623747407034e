package node

import "sync"

// faults injects network faults for tests: traffic from this node to a
// blocked peer is dropped (Raft, forwarded requests and gossip). Blocking
// both sides of a pair makes a symmetric partition.
type faults struct {
	mu     sync.RWMutex
	nodes  map[string]bool // node ids
	gossip map[string]bool // gossip addresses
}

func (f *faults) allowNode(id string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return !f.nodes[id]
}

func (f *faults) allowGossip(addr string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return !f.gossip[addr]
}

// Block drops all traffic from this node to the node with the given id and
// gossip address, as a network partition would. It is a fault-injection
// hook for tests; call it on both nodes for a symmetric partition.
func (n *Node) Block(nodeID, gossipAddr string) {
	f := &n.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nodes == nil {
		f.nodes, f.gossip = make(map[string]bool), make(map[string]bool)
	}
	f.nodes[nodeID] = true
	f.gossip[gossipAddr] = true
}

// Unblock lifts every Block.
func (n *Node) Unblock() {
	f := &n.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes, f.gossip = nil, nil
}
