package node

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/raft"
)

// faults injects faults for tests: traffic from this node to a blocked
// peer is dropped (Raft, forwarded requests and gossip), and a paused node
// stops its Raft groups. Blocking both sides of a pair makes a symmetric
// partition.
type faults struct {
	mu     sync.RWMutex
	nodes  map[string]bool // node ids
	gossip map[string]bool // gossip addresses
	all    bool            // paused: every peer is blocked

	// paused, while non-nil, is closed when the pause ends; Raft log
	// writes wait for it.
	paused atomic.Pointer[chan struct{}]
	// Promises broken on purpose, so that the test suites can prove they
	// catch them: see Node.BreakLeaseForTest, BreakFlushOrderForTest and
	// BreakRefillFenceForTest.
	brokenLease       atomic.Bool
	brokenFlushOrder  atomic.Bool
	brokenRefillFence atomic.Bool
}

func (f *faults) allowNode(id string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return !f.all && !f.nodes[id]
}

func (f *faults) allowGossip(addr string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return !f.all && !f.gossip[addr]
}

// waitPause blocks while the node is paused.
func (f *faults) waitPause() {
	if ch := f.paused.Load(); ch != nil {
		<-*ch
	}
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

// Pause is a fault-injection hook for tests that makes the node's Raft
// behave like a stopped process (SIGSTOP, a long GC pause): traffic to
// every peer is dropped, every Raft log write blocks, and each group this
// node leads is handed a write, so its raft main loop blocks in the log
// store and stops stepping down, answering or voting. The client-facing
// gRPC server keeps running, so the node is a leader that does not know it
// has been replaced: reads must not trust it. Peers should block this node
// too (nodetest.Cluster.Pause does). Resume ends the pause.
func (n *Node) Pause() {
	f := &n.faults
	ch := make(chan struct{})
	if !f.paused.CompareAndSwap(nil, &ch) {
		return
	}
	f.mu.Lock()
	f.all = true
	f.mu.Unlock()
	for _, p := range n.hosted() {
		if p.raft.State() != raft.Leader {
			continue
		}
		// Raft's main loop takes it and blocks in the log store; the
		// outcome is not needed.
		go p.raft.Apply(p.noopCommand(), 0)
	}
}

// Resume ends a Pause.
func (n *Node) Resume() {
	f := &n.faults
	f.mu.Lock()
	f.all = false
	f.mu.Unlock()
	if ch := f.paused.Swap(nil); ch != nil {
		close(*ch)
	}
}

// BreakLeaseForTest makes LEASE reads on this node skip the lease check:
// they are served by whichever replica raft calls leader. It exists only
// to prove that the read tests catch a broken lease; never use it
// otherwise.
func (n *Node) BreakLeaseForTest(on bool) {
	n.faults.brokenLease.Store(on)
}

// BreakReplicatedForTest makes this node's Raft log acknowledge REPLICATED
// writes before the operating system has them (held in memory for up to a
// second, as an unsynced Pebble batch is), so that a kill -9 of a majority
// loses acknowledged writes. It exists only to prove that the fault
// suite's crash nemesis catches such a loss; never use it otherwise.
func (n *Node) BreakReplicatedForTest(on bool) {
	if err := n.db.BreakReplicatedForTest(on); err != nil {
		n.log.Error("break replicated writes", "err", err)
	}
}

// BreakFlushOrderForTest makes this node's write-back flusher mark rows
// clean through Raft before it writes them to the database, instead of
// after: when the write then fails (or the node dies in between), the rows
// are clean, never flushed again, and acknowledged write-back writes are
// lost from the database. It exists only to prove that the write-back
// tests catch a lost write; never use it otherwise.
func (n *Node) BreakFlushOrderForTest(on bool) {
	n.faults.brokenFlushOrder.Store(on)
}

// BreakRefillFenceForTest makes this node's replicas apply every refill
// (FILL) without its fence: the loaded row is stored even over a newer
// entry, a dirty entry or a newer tombstone, however old the load is, so
// a refill that loaded a row before a concurrent write overwrites the
// newer value. The switch acts where commands are applied, so replicas
// stay consistent only if it is the same on every node of the cluster:
// set it on all of them, before any traffic. It exists only to prove that
// the refill tests catch a stale fill; never use it otherwise.
func (n *Node) BreakRefillFenceForTest(on bool) {
	n.faults.brokenRefillFence.Store(on)
}

// pausableLogs is a partition's log and stable store, whose writes wait
// while the node is paused (faults.Pause).
type pausableLogs struct {
	*storage.LogStore
	f *faults
}

func (l pausableLogs) StoreLog(e *raft.Log) error {
	l.f.waitPause()
	return l.LogStore.StoreLog(e)
}

func (l pausableLogs) StoreLogs(es []*raft.Log) error {
	l.f.waitPause()
	return l.LogStore.StoreLogs(es)
}

// SetFillHookForTest makes every refill call fn between its database load
// and storing the row (nil removes it), so a test can force a write to
// race a refill.
func (n *Node) SetFillHookForTest(fn func(key []byte)) {
	if fn == nil {
		n.fillHook.Store(nil)
		return
	}
	n.fillHook.Store(&fn)
}

// SetReadDelayForTest makes this node wait d before answering each Get (0
// turns it off), so a test can make one replica slow.
func (n *Node) SetReadDelayForTest(d time.Duration) { n.readDelay.Store(int64(d)) }
