package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors. Handlers wrap them with %w and detail; toStatus is the one
// place that turns them into gRPC status codes.
var (
	// ErrInvalidArgument: the request is malformed or over a limit.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotLeader: this replica cannot serve the request at the asked level.
	ErrNotLeader = errors.New("not the partition leader")
	// ErrUnavailable: the partition cannot serve now (no leader, shutting
	// down, not ready yet).
	ErrUnavailable = errors.New("unavailable")
	// ErrClosed: the node is shutting down.
	ErrClosed = errors.New("node: closed")
)

// notLeaderError: this replica cannot serve a request that needs the
// leader. leader is the leader's node id when known.
type notLeaderError struct {
	partition uint32
	leader    string
}

func (e *notLeaderError) Error() string {
	if e.leader == "" {
		return fmt.Sprintf("%v: partition %d has no leader (an election is under way)", ErrUnavailable, e.partition)
	}
	return fmt.Sprintf("%v: partition %d is led by node %s", ErrNotLeader, e.partition, e.leader)
}

func (e *notLeaderError) Is(target error) bool {
	return target == ErrNotLeader || (e.leader == "" && target == ErrUnavailable)
}

// invalid returns an InvalidArgument error with a message.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...)
}

// toStatus maps an error to a gRPC status error.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, ErrInvalidArgument):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrBacklog):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, ErrRefused):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrBackend):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, ErrNotLeader), errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed),
		errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown),
		errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return status.Error(codes.Unavailable, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}
