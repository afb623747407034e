package node

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/raft"
)

// Hooks is fault injection for tests and the fault suite's self-tests: set
// Config.Hooks to a new(node.Hooks) before New and call its methods while
// the node runs. A node without Hooks has none of these abilities and pays
// nothing for them: it keeps a zero fault state of its own, in which every
// peer is reachable and every promise is kept.
//
// New binds a Hooks to the node it starts, for good: New refuses a Hooks
// already given to another node (a restarted node needs a new one). Before
// New, Block, Unblock, the Break switches but BreakReplicated, SetFillHook
// and SetReadDelay record a fault that holds from the node's start; Pause
// and BreakReplicated do nothing, Resume only lifts a pause, and Halt
// returns an error.
type Hooks struct {
	faults faults

	// mu guards the binding: claimed from the start of New, by the node
	// named name; node is the node New started, nil until then.
	mu      sync.Mutex
	claimed bool
	name    string
	node    *Node
}

// errHooksUnbound is returned by the Hooks methods that need a running node
// when called before New.
var errHooksUnbound = errors.New("node: Hooks used before New started its node")

// claim reserves h for the node New is starting, named name.
func (h *Hooks) claim(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.claimed {
		return fmt.Errorf("node: Config.Hooks is already given to node %q: each node needs its own Hooks", h.name)
	}
	h.claimed, h.name = true, name
	return nil
}

// bind ties h to n, the node New started; n == nil (New failed) frees h
// for another node.
func (h *Hooks) bind(n *Node) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n == nil {
		h.claimed, h.name = false, ""
		return
	}
	h.node = n
}

// bound returns the node h is bound to, nil before New.
func (h *Hooks) bound() *Node {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.node
}

// faults is the fault state a node consults: traffic from this node to a
// blocked peer is dropped (Raft, forwarded requests and gossip), and a
// paused node stops its Raft groups. Blocking both sides of a pair makes a
// symmetric partition. Its zero value is a node without faults.
type faults struct {
	mu     sync.RWMutex
	nodes  map[string]bool // node ids
	gossip map[string]bool // gossip addresses
	all    bool            // paused: every peer is blocked

	// paused, while non-nil, is closed when the pause ends; Raft log
	// writes wait for it.
	paused atomic.Pointer[chan struct{}]
	// Promises broken on purpose, so that the test suites can prove they
	// catch them: see Hooks.BreakLease, BreakFlushOrder and
	// BreakRefillFence.
	brokenLease       atomic.Bool
	brokenFlushOrder  atomic.Bool
	brokenRefillFence atomic.Bool
	brokenChanges     atomic.Bool
	// fillHook, if set, runs between a refill's load and its FILL.
	fillHook atomic.Pointer[func(key []byte)]
	// readDelay, if set, delays every Get this node answers.
	readDelay atomic.Int64
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

// resume ends a pause, if any.
func (f *faults) resume() {
	f.mu.Lock()
	f.all = false
	f.mu.Unlock()
	if ch := f.paused.Swap(nil); ch != nil {
		close(*ch)
	}
}

// Block drops all traffic from this node to the node with the given id and
// gossip address, as a network partition would. Call it on both nodes for
// a symmetric partition.
func (h *Hooks) Block(nodeID, gossipAddr string) {
	f := &h.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nodes == nil {
		f.nodes, f.gossip = make(map[string]bool), make(map[string]bool)
	}
	f.nodes[nodeID] = true
	f.gossip[gossipAddr] = true
}

// Unblock lifts every Block.
func (h *Hooks) Unblock() {
	f := &h.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes, f.gossip = nil, nil
}

// Pause makes the node's Raft behave like a stopped process (SIGSTOP, a
// long GC pause): traffic to every peer is dropped, every Raft log write
// blocks, and each group this node leads is handed a write, so its raft
// main loop blocks in the log store and stops stepping down, answering or
// voting. The client-facing gRPC server keeps running, so the node is a
// leader that does not know it has been replaced: reads must not trust it.
// Peers should block this node too (nodetest.Cluster.Pause does). Resume
// ends the pause. Before New it does nothing.
func (h *Hooks) Pause() {
	n := h.bound()
	if n == nil {
		return
	}
	f := &h.faults
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
func (h *Hooks) Resume() { h.faults.resume() }

// BreakLease makes LEASE reads on this node skip the lease check: they are
// served by whichever replica raft calls leader. It exists only to prove
// that the read tests catch a broken lease; never use it otherwise.
func (h *Hooks) BreakLease(on bool) {
	h.faults.brokenLease.Store(on)
}

// BreakReplicated makes this node's Raft log acknowledge REPLICATED writes
// before the operating system has them (held in memory for up to a
// second, as an unsynced Pebble batch is), so that a kill -9 of a majority
// loses acknowledged writes. It exists only to prove that the fault
// suite's crash nemesis catches such a loss; never use it otherwise.
// Before New it does nothing.
func (h *Hooks) BreakReplicated(on bool) {
	n := h.bound()
	if n == nil {
		return
	}
	if err := n.db.BreakReplicatedForTest(on); err != nil {
		n.log.Error("break replicated writes", "err", err)
	}
}

// BreakFlushOrder makes this node's write-back flusher mark rows clean
// through Raft before it writes them to the database, instead of after:
// when the write then fails (or the node dies in between), the rows are
// clean, never flushed again, and acknowledged write-back writes are lost
// from the database. It exists only to prove that the write-back tests
// catch a lost write; never use it otherwise.
func (h *Hooks) BreakFlushOrder(on bool) {
	h.faults.brokenFlushOrder.Store(on)
}

// BreakRefillFence makes this node's replicas apply every refill (FILL)
// without its fence: the loaded row is stored even over a newer entry, a
// dirty entry or a newer tombstone, however old the load is, so a refill
// that loaded a row before a concurrent write overwrites the newer value.
// The switch acts where commands are applied, so replicas stay consistent
// only if it is the same on every node of the cluster: set it on all of
// them, before any traffic. It exists only to prove that the refill tests
// catch a stale fill; never use it otherwise.
func (h *Hooks) BreakRefillFence(on bool) {
	h.faults.brokenRefillFence.Store(on)
}

// BreakChanges makes this node's Changes streams send no key changes,
// only progress marks, so near caches in clients keep copies the cluster
// has overwritten. It exists only to prove that the near-cache tests and
// the fault suite catch a lost invalidation; never use it otherwise.
func (h *Hooks) BreakChanges(on bool) {
	h.faults.brokenChanges.Store(on)
}

// SetFillHook makes every refill call fn between its database load and
// storing the row (nil removes it), so a test can force a write to race a
// refill.
func (h *Hooks) SetFillHook(fn func(key []byte)) {
	if fn == nil {
		h.faults.fillHook.Store(nil)
		return
	}
	h.faults.fillHook.Store(&fn)
}

// SetReadDelay makes this node wait d before answering each Get (0 turns
// it off), so a test can make one replica slow.
func (h *Hooks) SetReadDelay(d time.Duration) { h.faults.readDelay.Store(int64(d)) }

// Halt stops the node the way a crash would, as far as the cluster can
// tell: no leadership hand-off and no gossip leave. Acknowledged writes
// are in synced Raft logs either way. Close is the graceful stop. Before
// New it returns an error.
func (h *Hooks) Halt() error {
	n := h.bound()
	if n == nil {
		return errHooksUnbound
	}
	n.closeOnce.Do(func() {
		n.faults.resume() // a paused node's log writes would block shutdown
		n.health.Shutdown()
		close(n.stop)
		n.srv.Stop()
		n.wg.Wait()
		n.closeErr = n.shutdown()
		n.log.Info("node halted")
	})
	return n.closeErr
}

// pausableLogs is a partition's log and stable store, whose writes wait
// while the node is paused (Hooks.Pause).
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
