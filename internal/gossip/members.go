package gossip

import (
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// State is what this node believes about a member.
type State int

const (
	// Alive: memberlist counts the member alive.
	Alive State = iota
	// Suspect is part of the vocabulary but is not produced today:
	// memberlist v0.7.0 keeps suspicion internal (no event, and Node.State
	// is never filled in), so a member goes from alive to dead directly.
	Suspect
	// Dead: memberlist declared the member dead, and it had not said it
	// was leaving.
	Dead
	// Left: the member left for good (it called Leave).
	Left
)

// String is the state's name as the Admin API and metrics report it.
func (s State) String() string {
	switch s {
	case Alive:
		return "alive"
	case Suspect:
		return "suspect"
	case Dead:
		return "dead"
	case Left:
		return "left"
	default:
		return "unknown"
	}
}

// Member is one member as this node sees it.
type Member struct {
	ID, Name, GRPCAddr, GossipAddr, BootID string
	// Bootstrapper: the node was started with a bootstrap expectation, so
	// it may form a new cluster.
	Bootstrapper bool
	// HasCluster: the node already belongs to a formed cluster (it has
	// cluster state on disk).
	HasCluster bool
	State      State
	// Since is when State last changed, on the local clock.
	Since time.Time
}

// notify signals Changes without blocking; signals coalesce.
func (m *Membership) notify() {
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

// observe records what memberlist told us about node n. Called under
// memberlist's locks: no blocking, no calls into memberlist.
func (m *Membership) observe(n *memberlist.Node, alive bool) {
	meta, err := decodeNodeMeta(n.Meta)
	if err == nil && meta.ID != n.Name {
		err = fmt.Errorf("metadata is for node %q", meta.ID)
	}
	addr := n.Address()
	now := time.Now()

	m.mu.Lock()
	cur := m.members[n.Name]
	var next entry
	switch {
	case err == nil:
		next = entry{info: Member{ID: meta.ID, Name: meta.Name, GRPCAddr: meta.GRPCAddr, GossipAddr: addr,
			BootID: meta.BootID, HasCluster: meta.HasCluster, Bootstrapper: meta.Bootstrapper}, leaving: meta.Leaving}
	case cur != nil && !alive:
		next = *cur // it failed or left: its state still counts
	default:
		m.mu.Unlock()
		m.log.Warn("ignoring gossip member with malformed metadata", "member_id", n.Name, "gossip_addr", addr, "err", err)
		return
	}
	switch {
	case alive:
		next.info.State = Alive
	case next.leaving:
		next.info.State = Left
	default:
		next.info.State = Dead
	}
	next.info.Since = now
	if cur != nil && cur.info.State == next.info.State {
		next.info.Since = cur.info.Since
	}
	if cur != nil && *cur == next {
		m.mu.Unlock()
		return
	}
	m.members[n.Name] = &next
	m.mu.Unlock()
	m.notify()

	i := next.info
	if cur == nil || cur.info.State != i.State || cur.info.BootID != i.BootID {
		m.log.Info("gossip member "+i.State.String(), "member_id", i.ID, "member_name", i.Name,
			"gossip_addr", i.GossipAddr, "grpc_addr", i.GRPCAddr, "boot_id", i.BootID)
	} else {
		m.log.Debug("gossip member updated", "member_id", i.ID, "gossip_addr", i.GossipAddr,
			"grpc_addr", i.GRPCAddr, "has_cluster", i.HasCluster)
	}
}

// markLeft records that a member we saw fail at addr had in fact left.
// Since stays: it is the same departure, seen better, and Since feeds the
// failure grace.
func (m *Membership) markLeft(id, addr string) {
	m.mu.Lock()
	mb := m.members[id]
	if mb == nil || mb.info.State != Dead || mb.info.GossipAddr != addr {
		m.mu.Unlock()
		return
	}
	mb.info.State = Left
	m.mu.Unlock()
	m.notify()
	m.log.Info("gossip member left", "member_id", id, "gossip_addr", addr)
}
