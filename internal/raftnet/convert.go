package raftnet

import (
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
)

//lint:file-ignore SA1019 the transport carries raft's RPC structs field by field, deprecated fields included (older raft versions read them).

// Conversions between raft's RPC structs and their peer.v1 messages.

func headerToProto(h raft.RPCHeader) *peerv1.RPCHeader {
	return &peerv1.RPCHeader{ProtocolVersion: int64(h.ProtocolVersion), Id: h.ID, Addr: h.Addr}
}

func headerFromProto(h *peerv1.RPCHeader) raft.RPCHeader {
	return raft.RPCHeader{
		ProtocolVersion: raft.ProtocolVersion(h.GetProtocolVersion()),
		ID:              h.GetId(),
		Addr:            h.GetAddr(),
	}
}

func appendRequestToProto(group uint64, r *raft.AppendEntriesRequest) *peerv1.AppendEntriesRequest {
	out := &peerv1.AppendEntriesRequest{
		Group:             group,
		Header:            headerToProto(r.RPCHeader),
		Term:              r.Term,
		Leader:            r.Leader,
		PrevLogEntry:      r.PrevLogEntry,
		PrevLogTerm:       r.PrevLogTerm,
		LeaderCommitIndex: r.LeaderCommitIndex,
	}
	if len(r.Entries) > 0 {
		out.Entries = make([]*peerv1.LogEntry, len(r.Entries))
		for i, e := range r.Entries {
			var at int64
			if !e.AppendedAt.IsZero() {
				at = e.AppendedAt.UnixNano()
			}
			out.Entries[i] = &peerv1.LogEntry{
				Index:      e.Index,
				Term:       e.Term,
				Type:       uint32(e.Type),
				Data:       e.Data,
				Extensions: e.Extensions,
				AppendedAt: at,
			}
		}
	}
	return out
}

func appendRequestFromProto(in *peerv1.AppendEntriesRequest) *raft.AppendEntriesRequest {
	r := &raft.AppendEntriesRequest{
		RPCHeader:         headerFromProto(in.GetHeader()),
		Term:              in.GetTerm(),
		Leader:            in.GetLeader(),
		PrevLogEntry:      in.GetPrevLogEntry(),
		PrevLogTerm:       in.GetPrevLogTerm(),
		LeaderCommitIndex: in.GetLeaderCommitIndex(),
	}
	if es := in.GetEntries(); len(es) > 0 {
		r.Entries = make([]*raft.Log, len(es))
		for i, e := range es {
			var at time.Time
			if n := e.GetAppendedAt(); n != 0 {
				at = time.Unix(0, n)
			}
			r.Entries[i] = &raft.Log{
				Index:      e.GetIndex(),
				Term:       e.GetTerm(),
				Type:       raft.LogType(e.GetType()),
				Data:       e.GetData(),
				Extensions: e.GetExtensions(),
				AppendedAt: at,
			}
		}
	}
	return r
}

func appendResponseToProto(r *raft.AppendEntriesResponse) *peerv1.AppendEntriesResponse {
	return &peerv1.AppendEntriesResponse{
		Header:         headerToProto(r.RPCHeader),
		Term:           r.Term,
		LastLog:        r.LastLog,
		Success:        r.Success,
		NoRetryBackoff: r.NoRetryBackoff,
	}
}

// appendResponseFromProto overwrites every field of r: raft reuses
// responses between heartbeats.
func appendResponseFromProto(in *peerv1.AppendEntriesResponse, r *raft.AppendEntriesResponse) {
	*r = raft.AppendEntriesResponse{
		RPCHeader:      headerFromProto(in.GetHeader()),
		Term:           in.GetTerm(),
		LastLog:        in.GetLastLog(),
		Success:        in.GetSuccess(),
		NoRetryBackoff: in.GetNoRetryBackoff(),
	}
}

func snapshotRequestToProto(group uint64, r *raft.InstallSnapshotRequest) *peerv1.InstallSnapshotRequest {
	return &peerv1.InstallSnapshotRequest{
		Group:              group,
		Header:             headerToProto(r.RPCHeader),
		SnapshotVersion:    int64(r.SnapshotVersion),
		Term:               r.Term,
		Leader:             r.Leader,
		LastLogIndex:       r.LastLogIndex,
		LastLogTerm:        r.LastLogTerm,
		Peers:              r.Peers,
		Configuration:      r.Configuration,
		ConfigurationIndex: r.ConfigurationIndex,
		Size:               r.Size,
	}
}

func snapshotRequestFromProto(in *peerv1.InstallSnapshotRequest) *raft.InstallSnapshotRequest {
	return &raft.InstallSnapshotRequest{
		RPCHeader:          headerFromProto(in.GetHeader()),
		SnapshotVersion:    raft.SnapshotVersion(in.GetSnapshotVersion()),
		Term:               in.GetTerm(),
		Leader:             in.GetLeader(),
		LastLogIndex:       in.GetLastLogIndex(),
		LastLogTerm:        in.GetLastLogTerm(),
		Peers:              in.GetPeers(),
		Configuration:      in.GetConfiguration(),
		ConfigurationIndex: in.GetConfigurationIndex(),
		Size:               in.GetSize(),
	}
}
