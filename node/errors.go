package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/elcache/elcache/internal/request"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc/status"
)

// Sentinel errors. Handlers wrap them with %w and detail; failureTable is
// the one place that turns them into gRPC status codes.
var (
	// ErrInvalidArgument: the request is malformed or over a limit. The
	// checks of internal/request wrap its own ErrInvalid, which maps the
	// same way.
	ErrInvalidArgument = errors.New("node: invalid argument")
	// ErrNotLeader: this replica cannot serve the request at the asked level.
	ErrNotLeader = errors.New("node: not the partition leader")
	// ErrUnavailable: the partition cannot serve now (no leader, shutting
	// down, not ready yet).
	ErrUnavailable = errors.New("node: unavailable")
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

// failureTable maps node errors to the Cache service's failures
// (cachev1.Failure, whose table holds the gRPC codes): the first entry
// err satisfies (errors.Is) wins; an error in none is FailureInternal.
// The server, forwarding, pipelined calls and the Raft transport all
// answer through it (toStatus, Node.status), and the Go client decodes
// the codes with the same cachev1 table.
var failureTable = []struct {
	err     error
	failure cachev1.Failure
}{
	{ErrInvalidArgument, cachev1.FailureInvalidArgument},
	{request.ErrInvalid, cachev1.FailureInvalidArgument},
	{ErrBacklog, cachev1.FailureBacklog},
	{ErrRefused, cachev1.FailureFailedPrecondition},
	{ErrBackend, cachev1.FailureUnavailable},
	{context.DeadlineExceeded, cachev1.FailureDeadlineExceeded},
	{context.Canceled, cachev1.FailureCanceled},
	{ErrNotLeader, cachev1.FailureUnavailable},
	{ErrUnavailable, cachev1.FailureUnavailable},
	{ErrClosed, cachev1.FailureUnavailable},
	{raft.ErrNotLeader, cachev1.FailureUnavailable},
	{raft.ErrLeadershipLost, cachev1.FailureUnavailable},
	{raft.ErrRaftShutdown, cachev1.FailureUnavailable},
	{raft.ErrEnqueueTimeout, cachev1.FailureUnavailable},
	{raft.ErrLeadershipTransferInProgress, cachev1.FailureUnavailable},
}

// failureOf returns the failure err reports.
func failureOf(err error) cachev1.Failure {
	for _, row := range failureTable {
		if errors.Is(err, row.err) {
			return row.failure
		}
	}
	return cachev1.FailureInternal
}

// toStatus maps an error to a gRPC status error through failureTable; a
// status error passes unchanged.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(failureOf(err).Code(), err.Error())
}
