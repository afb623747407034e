package gossip

import "github.com/hashicorp/memberlist"

// delegate receives memberlist's callbacks. They run under memberlist's
// locks: they must not block or call back into memberlist.
type delegate struct{ m *Membership }

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
	_ memberlist.MergeDelegate    = (*delegate)(nil)
)

func (d *delegate) NodeMeta(limit int) []byte {
	d.m.metaMu.Lock()
	b := d.m.meta.encode()
	d.m.metaMu.Unlock()
	if len(b) > limit { // Validate rules this out; memberlist would panic
		d.m.log.Error("node metadata too large, gossiping none", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}

func (d *delegate) NotifyMsg([]byte)                {}
func (d *delegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *delegate) LocalState(bool) []byte          { return nil }
func (d *delegate) MergeRemoteState([]byte, bool)   {}
func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.m.observe(n, true) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.m.observe(n, true) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.m.observe(n, false) }

// NotifyConflict: a node claims a name already known at another address.
// About us, a peer has our previous address (we restarted elsewhere);
// about another node, it restarted before its old entry failed. Either
// way memberlist drops the claim until the old entry is dead.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	if existing.Name == d.m.cfg.NodeID {
		d.m.staleSelf()
		return
	}
	d.m.log.Debug("gossip member reappeared at a new address; waiting for its old entry to fail",
		"member_id", existing.Name, "old_addr", existing.Address(), "new_addr", other.Address())
}

// NotifyMerge sees a peer's whole view during push/pull (here, unlike in
// events, Node.State is filled in). If the peer has us at another address,
// re-announce. If it saw a member leave that we only saw fail (we missed
// its leaving flag), record the departure.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		switch {
		case p.Name == d.m.cfg.NodeID:
			if p.Address() != d.m.addr {
				d.m.staleSelf()
			}
		case p.State == memberlist.StateLeft:
			d.m.markLeft(p.Name, p.Address())
		}
	}
	return nil
}
