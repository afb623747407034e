package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/elcache/elcache/internal/gossip"
	"github.com/elcache/elcache/internal/raftnet"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
)

// leaderView is what this node knows about the leaders of partitions it
// does not host (for those it hosts, its own Raft replica knows better).
// Each node polls the others' Leaders RPC; a leader seen in a higher term
// wins.
type leaderView struct {
	mu      sync.Mutex
	leaders map[uint32]seenLeader
}

type seenLeader struct {
	node string
	term uint64
}

func (v *leaderView) get(pid uint32) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.leaders[pid].node
}

// learn records that node leads pid in term; term 0 is a leader hint of
// unknown term from the leader itself, which replaces what is known until
// the next poll.
func (v *leaderView) learn(pid uint32, node string, term uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.leaders == nil {
		v.leaders = make(map[uint32]seenLeader)
	}
	cur, ok := v.leaders[pid]
	if !ok || term > cur.term || term == 0 {
		v.leaders[pid] = seenLeader{node: node, term: max(term, cur.term)}
	}
}

// update applies one node's full answer: it leads exactly led.
func (v *leaderView) update(node string, led map[uint32]uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.leaders == nil {
		v.leaders = make(map[uint32]seenLeader)
	}
	for pid, cur := range v.leaders {
		if _, ok := led[pid]; cur.node == node && !ok {
			v.leaders[pid] = seenLeader{term: cur.term}
		}
	}
	for pid, term := range led {
		if cur := v.leaders[pid]; term >= cur.term {
			v.leaders[pid] = seenLeader{node: node, term: term}
		}
	}
}

// forget drops what is known about a node that is gone.
func (v *leaderView) forget(node string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for pid, cur := range v.leaders {
		if cur.node == node {
			v.leaders[pid] = seenLeader{term: cur.term}
		}
	}
}

// leaderOf returns the node id of partition pid's leader as best known
// here, or "".
func (n *Node) leaderOf(pid uint32) string {
	p := n.part(pid)
	if p != nil && (!p.displaced.Load() || p.raft.State() == raft.Leader) {
		if id := p.leader(); id != "" {
			return id
		}
	}
	if id := n.leaders.get(pid); id != n.id {
		return id
	}
	// Only this node's own replica can say it leads.
	if p != nil {
		return p.leader()
	}
	return ""
}

// updateBook refreshes the node id -> gRPC address book from gossip and
// the cluster state. Raft transports and forwarding resolve through it.
func (n *Node) updateBook() {
	st, _ := n.meta.Current()
	for _, r := range st.Nodes {
		if r.GrpcAddr != "" {
			n.book.Store(r.Id, r.GrpcAddr)
		}
	}
	for _, m := range n.members.Members() {
		if m.GRPCAddr != "" && (m.State == gossip.Alive || m.State == gossip.Suspect) {
			n.book.Store(m.ID, m.GRPCAddr)
		}
	}
}

// resolve returns the gRPC address of a node.
func (n *Node) resolve(id string) (string, bool) {
	if id == n.id {
		return n.addr, true
	}
	v, ok := n.book.Load(id)
	if !ok {
		return "", false
	}
	return v.(string), true
}

// hint describes partition pid's leader as known here.
func (n *Node) hint(pid uint32) *cachev1.LeaderHint {
	h := &cachev1.LeaderHint{Partition: pid, NodeId: n.leaderOf(pid)}
	if h.NodeId != "" {
		h.Address, _ = n.resolve(h.NodeId)
	}
	st, _ := n.meta.Current()
	h.MapVersion = st.MapVersion
	return h
}

// leaderViewLoop polls the other live nodes for the partitions they lead.
func (n *Node) leaderViewLoop() {
	defer n.wg.Done()
	interval := max(n.cfg.Cluster.ReconcileInterval, 50*time.Millisecond)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		var wg sync.WaitGroup
		for _, m := range n.members.Members() {
			if m.ID == n.id {
				continue
			}
			if m.State == gossip.Dead || m.State == gossip.Left {
				n.leaders.forget(m.ID)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.pollLeaders(m.ID, interval)
			}()
		}
		wg.Wait()
	}
}

func (n *Node) pollLeaders(id string, timeout time.Duration) {
	c, err := n.peerClient(id, raftnet.ClassForward)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout, 200*time.Millisecond))
	defer cancel()
	resp, err := c.Leaders(ctx, &peerv1.LeadersRequest{})
	if err != nil || resp.NodeId != id {
		return
	}
	led := make(map[uint32]uint64, len(resp.Partitions))
	for _, pl := range resp.Partitions {
		led[pl.Partition] = pl.Term
	}
	n.leaders.update(id, led)
}

// peerServer implements peer.v1.Peer.
type peerServer struct {
	peerv1.UnimplementedPeerServer
	n *Node
}

// Leaders lists the partitions led here.
func (s *peerServer) Leaders(context.Context, *peerv1.LeadersRequest) (*peerv1.LeadersResponse, error) {
	out := &peerv1.LeadersResponse{NodeId: s.n.id}
	for _, p := range s.n.hosted() {
		if p.raft.State() == raft.Leader {
			out.Partitions = append(out.Partitions, &peerv1.PartitionLeader{Partition: p.id, Term: p.raft.CurrentTerm()})
		}
	}
	return out, nil
}

// Replicas describes this node's view of a partition's configuration.
func (s *peerServer) Replicas(_ context.Context, req *peerv1.ReplicasRequest) (*peerv1.ReplicasResponse, error) {
	p := s.n.part(req.Partition)
	if p == nil {
		return &peerv1.ReplicasResponse{}, nil
	}
	f := p.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, toStatus(fmt.Errorf("%w: partition %d: %v", ErrUnavailable, req.Partition, err))
	}
	out := &peerv1.ReplicasResponse{Leader: p.raft.State() == raft.Leader, Committed: f.Index() <= p.raft.CommitIndex()}
	for _, srv := range f.Configuration().Servers {
		out.Servers = append(out.Servers, string(srv.ID))
	}
	return out, nil
}

// peerClient returns a client of node id's Peer service on its pooled
// connection of class, or raftnet.ErrPeerBlocked while a test fault drops
// this node's traffic to id.
func (n *Node) peerClient(id string, class raftnet.Class) (peerv1.PeerClient, error) {
	if !n.faults.allowNode(id) {
		return nil, raftnet.ErrPeerBlocked
	}
	conn, err := n.net.Conn(id, class)
	if err != nil {
		return nil, err
	}
	return peerv1.NewPeerClient(conn), nil
}
