package node

import (
	"context"
	"errors"
	"fmt"
	"github.com/elcache/elcache/internal/meta"
	"github.com/elcache/elcache/internal/raftnet"
	"github.com/elcache/elcache/storage"
	"slices"
	"strings"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// adminServer implements cache.v1.Admin.
type adminServer struct {
	cachev1.UnimplementedAdminServer
	n *Node
}

func placementState(s peerv1.NodeRecord_State) string {
	switch s {
	case peerv1.NodeRecord_STATE_ACTIVE:
		return "active"
	case peerv1.NodeRecord_STATE_DRAINING:
		return "draining"
	case peerv1.NodeRecord_STATE_FAILED:
		return "failed"
	default:
		return ""
	}
}

// Members lists the nodes known by gossip or by the cluster state.
func (s *adminServer) Members(context.Context, *cachev1.MembersRequest) (*cachev1.MembersResponse, error) {
	n := s.n
	st, _ := n.meta.Current()
	out := &cachev1.MembersResponse{MapVersion: st.MapVersion, MetaLeader: n.meta.Leader()}
	byID := make(map[string]*cachev1.Member)
	for _, m := range n.members.Members() {
		mm := &cachev1.Member{Id: m.ID, Name: m.Name, GrpcAddr: m.GRPCAddr, GossipAddr: m.GossipAddr, GossipState: m.State.String()}
		byID[m.ID] = mm
		out.Members = append(out.Members, mm)
	}
	for _, r := range st.Nodes {
		mm := byID[r.Id]
		if mm == nil {
			mm = &cachev1.Member{Id: r.Id, Name: r.Name, GrpcAddr: r.GrpcAddr, GossipAddr: r.GossipAddr, GossipState: "unknown"}
			byID[r.Id] = mm
			out.Members = append(out.Members, mm)
		}
		mm.PlacementState = placementState(r.State)
	}
	for pid, pp := range st.Partitions {
		for _, id := range pp.Replicas {
			if mm := byID[id]; mm != nil {
				mm.Replicas++
			}
		}
		if mm := byID[n.leaderOf(uint32(pid))]; mm != nil {
			mm.Leaders++
		}
	}
	slices.SortFunc(out.Members, func(a, b *cachev1.Member) int { return strings.Compare(a.Name+a.Id, b.Name+b.Id) })
	return out, nil
}

// Drain marks a node as draining. The meta leader records it; other nodes
// forward the call there.
func (s *adminServer) Drain(ctx context.Context, req *cachev1.DrainRequest) (*cachev1.DrainResponse, error) {
	n := s.n
	if req.Node == "" {
		return nil, status.Error(codes.InvalidArgument, "node is required: a node id or name")
	}
	if !n.meta.IsLeader() {
		leader := n.meta.Leader()
		if isForwarded(ctx) || leader == "" || leader == n.id {
			return nil, status.Errorf(codes.Unavailable, "the cluster's meta group has no reachable leader (known: %q)", leader)
		}
		if !n.faults.allowNode(leader) {
			return nil, status.Errorf(codes.Unavailable, "meta leader %s is unreachable", leader)
		}
		conn, err := n.net.Conn(leader, raftnet.ClassForward)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "meta leader %s: %v", leader, err)
		}
		return cachev1.NewAdminClient(conn).Drain(metadata.AppendToOutgoingContext(ctx, forwardedKey, n.id), req)
	}
	for attempt := 0; ; attempt++ {
		st, _ := n.meta.Current()
		next := proto.CloneOf(st)
		var rec *peerv1.NodeRecord
		active := 0
		for _, r := range next.Nodes {
			if r.Id == req.Node || r.Name == req.Node {
				if rec != nil {
					return nil, status.Errorf(codes.InvalidArgument, "node %q is ambiguous: several nodes have that name; use the node id", req.Node)
				}
				rec = r
			}
			if r.State == peerv1.NodeRecord_STATE_ACTIVE {
				active++
			}
		}
		if rec == nil {
			return nil, status.Errorf(codes.NotFound, "node %q is not in the cluster", req.Node)
		}
		if rec.State == peerv1.NodeRecord_STATE_ACTIVE {
			if active == 1 {
				return nil, status.Errorf(codes.FailedPrecondition, "node %s is the last active node; draining it would leave no replica", req.Node)
			}
			if active == 2 && next.ReplicationFactor > 1 {
				return nil, status.Errorf(codes.FailedPrecondition,
					"draining node %s would leave one active node, and every partition with a single replica; add a node first", req.Node)
			}
			rec.State = peerv1.NodeRecord_STATE_DRAINING
			if planned := n.planner.Next(next, n.members.Members(), time.Now()); planned != nil {
				next = planned
			}
			err := n.meta.Propose(ctx, st.Revision, next)
			if errors.Is(err, meta.ErrStaleRevision) && attempt < 5 {
				continue
			}
			if err != nil {
				return nil, n.status(fmt.Errorf("%w: record drain: %v", ErrUnavailable, err))
			}
			n.log.Info("node draining", "peer", rec.Id, "name", rec.Name, "map_version", next.MapVersion)
		}
		out := &cachev1.DrainResponse{NodeId: rec.Id, MapVersion: next.MapVersion}
		for _, pp := range next.Partitions {
			if slices.Contains(pp.Replicas, rec.Id) {
				out.Replicas++
			}
		}
		return out, nil
	}
}

// backupChunkBytes bounds a Backup message's entries, well under the
// clients' receive limit.
const backupChunkBytes = 1 << 20

// Backup streams a consistent copy of one partition from its leader.
func (s *adminServer) Backup(req *cachev1.BackupRequest, stream cachev1.Admin_BackupServer) error {
	n := s.n
	if req.Partition >= n.ring.Count() {
		return toStatus(invalid("partition %d: the cluster has partitions 0 to %d", req.Partition, n.ring.Count()-1))
	}
	ctx := stream.Context()
	p, f := n.routeFacts(req.Partition, true)
	if !f.leads {
		return n.status(&notLeaderError{partition: req.Partition, leader: n.leaderOf(req.Partition)})
	}
	// Everything acknowledged before the backup began is applied here.
	if err := p.readIndex(ctx); err != nil {
		return n.status(err)
	}
	var batch []*cachev1.Entry
	size := 0
	var applied uint64
	flush := func() error {
		err := stream.Send(&cachev1.BackupChunk{Partition: req.Partition, AppliedIndex: applied, Entries: batch})
		batch, size = nil, 0
		return err
	}
	_, err := p.store.EachLive(time.Now().UnixNano(), func(a uint64) { applied = a }, func(e storage.Entry) error {
		batch = append(batch, entryProto(e, false))
		size += len(e.Key) + len(e.Value) + 32
		if size >= backupChunkBytes {
			return flush()
		}
		return ctx.Err()
	})
	if err != nil {
		return n.status(err)
	}
	return flush()
}
