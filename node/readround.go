package node

import (
	"context"

	"github.com/elcache/elcache/internal/raftnet"
	"github.com/elcache/elcache/internal/readround"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
)

// The node's side of leadership rounds, the quorum round of a
// linearizable read (internal/readround, DESIGN.md "Reads"): the call a
// round makes to a peer, and the peer's answer.

// confirmTermsAt asks node peer, in one Peer.ConfirmTerms call, which of
// claims it confirms (a readround.CallFunc).
func (n *Node) confirmTermsAt(ctx context.Context, peer string, claims []readround.Claim) ([]bool, error) {
	c, err := n.peerClient(peer, raftnet.ClassRaft)
	if err != nil {
		return nil, err
	}
	req := &peerv1.ConfirmTermsRequest{Partitions: make([]*peerv1.PartitionLeader, len(claims))}
	for i, cl := range claims {
		req.Partitions[i] = &peerv1.PartitionLeader{Partition: cl.Partition, Term: cl.Term}
	}
	resp, err := c.ConfirmTerms(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.GetCurrent(), nil
}

// ConfirmTerms answers a leader's leadership round: whether this node's
// replica of each partition is at the term the leader claims. The term is
// read after the call arrived, which is what the leader's proof needs.
func (s *peerServer) ConfirmTerms(_ context.Context, req *peerv1.ConfirmTermsRequest) (*peerv1.ConfirmTermsResponse, error) {
	resp := &peerv1.ConfirmTermsResponse{Current: make([]bool, len(req.Partitions))}
	for i, c := range req.Partitions {
		if p := s.n.part(c.Partition); p != nil {
			resp.Current[i] = p.raft.CurrentTerm() == c.Term
		}
	}
	return resp, nil
}
