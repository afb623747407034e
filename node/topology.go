package node

import (
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"google.golang.org/protobuf/proto"

	"context"
)

// topology returns the partition map with the leaders known here.
func (n *Node) topology() *cachev1.Topology {
	st, _ := n.meta.Current()
	t := &cachev1.Topology{MapVersion: st.MapVersion, PartitionCount: n.cfg.Partitions}
	for _, r := range st.Nodes {
		t.Nodes = append(t.Nodes, &cachev1.TopologyNode{Id: r.Id, Name: r.Name, Address: r.GrpcAddr, State: placementState(r.State)})
	}
	for pid, pp := range st.Partitions {
		t.Partitions = append(t.Partitions, &cachev1.PartitionRoute{Partition: uint32(pid),
			Leader: n.leaderOf(uint32(pid)), Replicas: pp.Replicas})
	}
	return t
}

// Topology returns the partition map.
func (s *cacheServer) Topology(context.Context, *cachev1.TopologyRequest) (*cachev1.Topology, error) {
	return s.n.topology(), nil
}

// WatchTopology streams the partition map whenever it or a leader changes.
func (s *cacheServer) WatchTopology(_ *cachev1.TopologyRequest, stream cachev1.Cache_WatchTopologyServer) error {
	n := s.n
	t := time.NewTicker(max(n.cfg.Cluster.ReconcileInterval/2, 20*time.Millisecond))
	defer t.Stop()
	var last *cachev1.Topology
	for {
		_, changed := n.meta.Current()
		if cur := n.topology(); last == nil || !proto.Equal(cur, last) {
			if err := stream.Send(cur); err != nil {
				return err
			}
			last = cur
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-n.stop:
			return toStatus(ErrClosed)
		case <-changed:
		case <-t.C:
		}
	}
}
