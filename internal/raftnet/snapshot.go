package raftnet

import (
	"context"
	"errors"
	"fmt"
	"io"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// InstallSnapshot, both ends: the sender streams the request, then the
// data in chunks, on the peer's snapshot connection; the receiver hands
// raft the data through a pipe.

// InstallSnapshot implements raft.Transport: it streams the header, then
// data in chunks, on the peer's snapshot connection.
func (t *Transport) InstallSnapshot(_ raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	peer := string(target)
	return t.call(target, ClassSnapshot, t.rn.cfg.SnapshotTimeout, "InstallSnapshot", func(ctx context.Context, c peerv1.RaftClient) error {
		t.stats.snapshots.Add(1)
		stream, err := c.InstallSnapshot(ctx)
		if err != nil {
			return err
		}
		err = stream.Send(&peerv1.InstallSnapshotChunk{Request: snapshotRequestToProto(t.group, args)})
		for err == nil {
			if err = t.rn.allowed(peer); err != nil {
				return err
			}
			buf := make([]byte, snapshotChunkBytes) // gRPC may hold a sent message: never reuse
			n, rerr := io.ReadFull(data, buf)
			if n > 0 {
				err = stream.Send(&peerv1.InstallSnapshotChunk{Data: buf[:n]})
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				return fmt.Errorf("read snapshot: %w", rerr)
			}
		}
		if err != nil && err != io.EOF {
			return err
		}
		// On io.EOF the server ended the stream early: CloseAndRecv
		// returns its status.
		out, err := stream.CloseAndRecv()
		if err != nil {
			return err
		}
		*resp = raft.InstallSnapshotResponse{
			RPCHeader: headerFromProto(out.GetHeader()),
			Term:      out.GetTerm(),
			Success:   out.GetSuccess(),
		}
		return nil
	})
}

var errSnapshotHandled = errors.New("raftnet: snapshot rpc finished")

// InstallSnapshot gives raft the stream's data as the RPC's Reader, through
// a pipe fed by a pump goroutine: raft may stop reading (a stale term) or
// the wait may end before raft is done, and neither may leave a goroutine
// reading the stream after the handler returns.
func (s *raftService) InstallSnapshot(stream peerv1.Raft_InstallSnapshotServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	in := first.GetRequest()
	if in == nil {
		return status.Error(codes.InvalidArgument, "raftnet: InstallSnapshot: first message has no request")
	}
	t, err := s.rn.lookup(in.GetGroup())
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		pumpSnapshot(stream, first.GetData(), pw)
	}()
	defer func() {
		pr.CloseWithError(errSnapshotHandled)
		<-pumped
	}()
	out, err := t.dispatch(stream.Context(), snapshotRequestFromProto(in), io.LimitReader(pr, in.GetSize()), false)
	if err != nil {
		return s.rn.serveStatus(err)
	}
	resp, ok := out.(*raft.InstallSnapshotResponse)
	if !ok {
		return status.Errorf(codes.Internal, "raftnet: raft answered InstallSnapshot with %T", out)
	}
	return stream.SendAndClose(&peerv1.InstallSnapshotResponse{
		Header:  headerToProto(resp.RPCHeader),
		Term:    resp.Term,
		Success: resp.Success,
	})
}

// pumpSnapshot copies the stream's data into w until the client ends the
// stream, the stream fails or the reader side closes.
func pumpSnapshot(stream peerv1.Raft_InstallSnapshotServer, first []byte, w *io.PipeWriter) {
	if len(first) > 0 {
		if _, err := w.Write(first); err != nil {
			return
		}
	}
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			w.Close()
			return
		}
		if err != nil {
			w.CloseWithError(fmt.Errorf("raftnet: snapshot stream: %w", err))
			return
		}
		if _, err := w.Write(msg.GetData()); err != nil {
			return
		}
	}
}
