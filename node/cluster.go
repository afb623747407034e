package node

import (
	"context"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/elcache/elcache/internal/gossip"
	"github.com/elcache/elcache/internal/plan"
	"github.com/elcache/elcache/internal/raftnet"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
)

// controlLoop moves this node toward the cluster state: it forms the
// cluster, and on the meta leader it writes the cluster state from the
// gossip view; on every node it starts and stops replicas as the partition
// map says, and partition leaders reconcile their Raft configuration toward
// it.
func (n *Node) controlLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.Cluster.ReconcileInterval)
	defer t.Stop()
	for {
		_, changed := n.meta.Current()
		n.controlStep()
		select {
		case <-n.stop:
			return
		case <-t.C:
		case <-n.members.Changes():
		case <-changed:
		}
	}
}

func (n *Node) controlStep() {
	n.updateBook()
	if !n.meta.Formed() {
		n.maybeBootstrap()
		return
	}
	n.members.SetHasCluster(true)
	if n.meta.IsLeader() {
		n.leadCluster()
	}
	st, _ := n.meta.Current()
	if st.Revision == 0 || !n.metaCurrent() {
		return
	}
	n.syncReplicas(st)
	n.reconcilePartitions(st)
}

// metaCurrent reports whether this node's copy of the cluster state is
// current enough to act on: the meta group has a leader and this replica
// has applied everything it knows to be committed. After a restart the
// meta log replays older maps first; acting on them would stop replicas
// the current map places here.
func (n *Node) metaCurrent() bool {
	r := n.meta.Raft()
	return n.meta.Leader() != "" && r.AppliedIndex() >= r.CommitIndex()
}

// bootstrapExpect returns how many nodes this node waits for before it
// forms a new cluster, 0 if it never does (see Config.BootstrapExpect).
func (n *Node) bootstrapExpect() int {
	if n.cfg.BootstrapExpect == 0 && len(n.cfg.Join) == 0 {
		return 1
	}
	return n.cfg.BootstrapExpect
}

// maybeBootstrap forms a new cluster when BootstrapExpect nodes that
// belong to no cluster see each other. Only one node bootstraps: the one
// with the lowest id among those started with an expectation (so a
// cluster forms whether or not the other nodes were given one). It makes
// the nodes it sees voters of the meta group; the others are added later.
func (n *Node) maybeBootstrap() {
	expect := n.bootstrapExpect()
	if expect == 0 {
		return
	}
	var ids, bootstrappers []string
	for _, m := range n.members.Members() {
		if m.State != gossip.Alive {
			continue
		}
		if m.HasCluster && m.ID != n.id {
			return // a cluster exists: wait to be added to it
		}
		ids = append(ids, m.ID)
		if m.Bootstrapper || m.ID == n.id {
			bootstrappers = append(bootstrappers, m.ID)
		}
	}
	if len(ids) < expect {
		return
	}
	sort.Strings(ids)
	if slices.Min(bootstrappers) != n.id {
		return
	}
	voters := ids[:min(len(ids), plan.MaxMetaVoters)]
	n.log.Info("forming a new cluster", "voters", voters)
	if err := n.meta.Bootstrap(voters); err != nil {
		n.log.Warn("cluster bootstrap failed", "err", err)
	}
}

// leadCluster runs on the meta leader: it writes the cluster state that
// follows from the gossip view and reconciles the meta group's membership.
func (n *Node) leadCluster() {
	st, _ := n.meta.Current()
	next := n.planner.Next(st, n.members.Members(), time.Now())
	if next != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := n.meta.Propose(ctx, st.Revision, next)
		cancel()
		if err != nil {
			n.log.Debug("cluster state update failed", "err", err)
			return
		}
		if next.MapVersion != st.MapVersion {
			n.log.Info("partition map changed", "map_version", next.MapVersion, "nodes", plan.ActiveNodes(next))
		}
		return
	}
	n.reconcileMeta(st)
}

// reconcileMeta makes one change to the meta group's membership toward:
// every active or draining node holds a replica, up to plan.MaxMetaVoters
// live ones vote, failed and removed nodes hold none (plan.ReconcileMeta).
func (n *Node) reconcileMeta(st *peerv1.ClusterState) {
	r := n.meta.Raft()
	f := r.GetConfiguration()
	if f.Error() != nil {
		return
	}
	want := plan.MetaMembers(st)
	step := plan.ReconcileMeta(plan.Group{Self: n.id, Servers: servers(f.Configuration()), Want: want,
		Alive: n.aliveSet(), CaughtUp: n.caughtUpSet(r, n.meta.Transport(), want)})
	if step.Op != plan.Nothing {
		n.logChange("meta: "+step.Op.String(), step.ID, carryOut(r, step, f.Index(), 2*n.cfg.Raft.ElectionTimeout))
	}
}

// servers returns a Raft configuration as internal/plan reads it.
func servers(cfg raft.Configuration) []plan.Server {
	out := make([]plan.Server, len(cfg.Servers))
	for i, s := range cfg.Servers {
		su := plan.Staging
		switch s.Suffrage {
		case raft.Voter:
			su = plan.Voter
		case raft.Nonvoter:
			su = plan.Nonvoter
		}
		out[i] = plan.Server{ID: string(s.ID), Suffrage: su}
	}
	return out
}

// carryOut makes step's change to the group r leads, as a configuration
// change with prevIndex idx, or as a leadership transfer.
func carryOut(r *raft.Raft, step plan.Step, idx uint64, timeout time.Duration) error {
	id, addr := raft.ServerID(step.ID), raft.ServerAddress(step.ID)
	switch step.Op {
	case plan.AddNonvoter:
		return r.AddNonvoter(id, addr, idx, timeout).Error()
	case plan.Promote:
		return r.AddVoter(id, addr, idx, timeout).Error()
	case plan.Remove:
		return r.RemoveServer(id, idx, timeout).Error()
	case plan.Demote:
		return r.DemoteVoter(id, idx, timeout).Error()
	case plan.HandOver, plan.MoveLeader:
		return r.LeadershipTransferToServer(id, addr).Error()
	}
	return nil
}

func (n *Node) logChange(what, id string, err error) {
	if err != nil {
		n.log.Debug(what+" failed", "peer", id, "err", err)
		return
	}
	n.log.Info(what, "peer", id)
}

// aliveSet returns the ids of members gossip sees alive (or suspect).
func (n *Node) aliveSet() map[string]bool {
	return plan.Alive(n.members.Members())
}

// reachable reports whether node id is this node or a member gossip sees
// up, and traffic to it is not blocked.
func (n *Node) reachable(id string) bool {
	if id == n.id {
		return true
	}
	if n.members == nil || !n.faults.allowNode(id) {
		return false
	}
	// Raft traffic is the freshest evidence either way: a peer heard from
	// within two election timeouts is up (gossip may not have noticed a
	// healed partition yet), and a node that has heard from no peer for
	// that long is cut off (gossip takes a second or more to say so).
	window := 2 * n.cfg.Raft.ElectionTimeout
	if n.net.HeardWithin(id, window) {
		return true
	}
	if n.net.Isolated(window) {
		return false
	}
	return n.members.Up(id)
}

// caughtUp reports whether peer acknowledged the leader's log up to close
// to its end recently.
func (n *Node) caughtUp(r *raft.Raft, t *raftnet.Transport, peer string) bool {
	match, at := t.Match(peer)
	if at.IsZero() || time.Since(at) > 2*n.cfg.Raft.HeartbeatTimeout {
		return false
	}
	return match+catchUpSlack >= r.LastIndex()
}

// caughtUpSet returns which of ids are caught up (caughtUp) in the group r
// leads.
func (n *Node) caughtUpSet(r *raft.Raft, t *raftnet.Transport, ids []string) map[string]bool {
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = n.caughtUp(r, t, id)
	}
	return out
}

// catchUpSlack is how many entries behind the leader's last index a replica
// may be and still count as caught up: it is then a few appends away.
const catchUpSlack = 16

// syncReplicas starts the replicas the partition map places here and stops
// (and deletes) those it placed elsewhere once they left their group.
func (n *Node) syncReplicas(st *peerv1.ClusterState) {
	for pid, pp := range st.Partitions {
		id := uint32(pid)
		want := slices.Contains(pp.Replicas, n.id)
		p := n.part(id)
		if p != nil {
			p.displaced.Store(!want)
		}
		switch {
		case want && p == nil:
			np, err := openPartition(id, n.deps, pp.Bootstrap)
			if err != nil {
				n.log.Error("start replica failed", "partition", id, "err", err)
				continue
			}
			n.partsMu.Lock()
			n.parts[id] = np
			n.partsMu.Unlock()
			n.log.Debug("replica started", "partition", id)
		case !want && p != nil:
			if n.removable(p) {
				n.dropReplica(p)
			}
		}
	}
}

// removable reports whether replica p, which the map no longer places
// here, can be deleted: a committed configuration of its group no longer
// lists this node. A configuration that is only appended could still be
// rolled back by a new leader, and then this replica would be a voter with
// its data gone. The replica's own log says so when it learned of the
// commit; otherwise the partition's leader is asked.
func (n *Node) removable(p *partition) bool {
	if p.raft.State() == raft.Leader {
		return false
	}
	f := p.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	var ids []string
	for _, s := range f.Configuration().Servers {
		ids = append(ids, string(s.ID))
	}
	if plan.Left(n.id, ids, f.Index() <= p.raft.CommitIndex()) {
		return true
	}
	leader := n.leaderOf(p.id)
	if leader == "" || leader == n.id {
		return false
	}
	c, err := n.peerClient(leader, raftnet.ClassForward)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*n.cfg.Raft.HeartbeatTimeout)
	defer cancel()
	resp, err := c.Replicas(ctx, &peerv1.ReplicasRequest{Partition: p.id})
	return err == nil && resp.Leader && plan.Left(n.id, resp.Servers, resp.Committed)
}

// dropReplica stops replica p and deletes its data.
func (n *Node) dropReplica(p *partition) {
	n.partsMu.Lock()
	if n.parts[p.id] == p {
		n.parts[p.id] = nil
	}
	n.partsMu.Unlock()
	if err := p.close(); err != nil {
		n.log.Debug("replica close", "partition", p.id, "err", err)
	}
	if err := n.db.DropReplica(p.id, uint64(p.id)); err != nil {
		n.log.Error("drop replica failed", "partition", p.id, "err", err)
		return
	}
	os.RemoveAll(p.snaps)
	n.log.Info("replica removed", "partition", p.id)
}

// reconcilePartitions starts a reconciliation step on every partition led
// here whose previous step has finished.
func (n *Node) reconcilePartitions(st *peerv1.ClusterState) {
	alive := n.aliveSet()
	for _, p := range n.hosted() {
		if int(p.id) >= len(st.Partitions) || !p.ready() || !p.busy.CompareAndSwap(false, true) {
			continue
		}
		want := st.Partitions[p.id].Replicas
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer p.busy.Store(false)
			n.reconcilePartition(p, want, alive)
		}()
	}
}

// reconcilePartition makes at most one change to partition p's Raft
// configuration toward the replicas want, the one plan.ReconcilePartition
// decides: add missing replicas as non-voters, promote them once caught
// up, then remove replicas no longer placed (handing leadership over first
// when the leader itself goes), and finally move leadership to the
// preferred leader.
func (n *Node) reconcilePartition(p *partition, want []string, alive map[string]bool) {
	f := p.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	g := plan.Group{Self: n.id, Servers: servers(f.Configuration()), Want: want, Alive: alive,
		CaughtUp: n.caughtUpSet(p.raft, p.trans, want)}
	if len(want) > 0 && !n.faults.allowNode(want[0]) {
		g.Blocked = map[string]bool{want[0]: true}
	}
	step := plan.ReconcilePartition(g)
	switch step.Op {
	case plan.Nothing:
		return
	case plan.HandOver:
		// Leaving (a drain, a rebalance): flush write-back entries first,
		// so the database is current now rather than after the next
		// leader's first flush.
		n.flushPartition(p, 2*time.Second)
	}
	n.logPart(p, step.Op.String(), step.ID, carryOut(p.raft, step, f.Index(), 2*n.cfg.Raft.ElectionTimeout))
}

func (n *Node) logPart(p *partition, what, peer string, err error) {
	if err != nil {
		p.log.Debug(what+" failed", "peer", peer, "err", err)
		return
	}
	p.log.Info(what, "peer", peer)
}

// handOff moves the leadership of every partition led here to another
// voter before the node stops, so that requests see a transfer instead of
// an election timeout. It gives up after timeout.
func (n *Node) handOff(timeout time.Duration) {
	deadline := time.After(timeout)
	hosted := n.hosted()
	done := make(chan struct{}, len(hosted)+1)
	var pending int
	for _, p := range append(hosted, nil) {
		var r *raft.Raft
		if p != nil {
			r = p.raft
		} else if n.meta != nil {
			r = n.meta.Raft()
		}
		if r == nil || r.State() != raft.Leader || len(r.GetConfiguration().Configuration().Servers) < 2 {
			continue
		}
		pending++
		go func() {
			r.LeadershipTransfer().Error()
			done <- struct{}{}
		}()
	}
	for ; pending > 0; pending-- {
		select {
		case <-done:
		case <-deadline:
			n.log.Warn("leadership hand-off timed out", "pending", pending)
			return
		}
	}
}

// Converged reports whether this node sees a settled cluster: the
// partition map is known, every partition has a known leader (also to each
// replica placed here), on its preferred node when that node is up, and
// every partition led here has exactly the map's replicas as voters. It is
// status for a program embedding the node (a readiness check before
// rolling the next node, a test waiting for a cluster).
func (n *Node) Converged() bool {
	st, _ := n.meta.Current()
	if st.Revision == 0 || len(st.Partitions) != int(n.cfg.Partitions) {
		return false
	}
	for pid, pp := range st.Partitions {
		lead := n.leaderOf(uint32(pid))
		if lead == "" {
			return false
		}
		if len(pp.Replicas) > 0 && lead != pp.Replicas[0] && n.reachable(pp.Replicas[0]) {
			return false // leadership is still moving to the preferred leader
		}
		p := n.part(uint32(pid))
		if p != nil && slices.Contains(pp.Replicas, n.id) && p.leader() == "" {
			return false // a replica placed here has not heard from its leader
		}
		if p == nil || p.raft.State() != raft.Leader {
			continue
		}
		f := p.raft.GetConfiguration()
		if f.Error() != nil {
			return false
		}
		var voters []string
		for _, s := range f.Configuration().Servers {
			if s.Suffrage != raft.Voter {
				return false
			}
			voters = append(voters, string(s.ID))
		}
		want := slices.Clone(pp.Replicas)
		slices.Sort(want)
		slices.Sort(voters)
		if !slices.Equal(want, voters) {
			return false
		}
	}
	return true
}

// MapVersion returns the version of the partition map this node knows:
// status, like Converged; nodes that agree on it agree on placement.
func (n *Node) MapVersion() uint64 {
	st, _ := n.meta.Current()
	return st.MapVersion
}
