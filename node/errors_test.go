package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/elcache/elcache/internal/request"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestToStatus: each node error, wrapped as handlers wrap them, answers
// with its failure's code and keeps its message; errors from the
// packages below (raft, context) map too; anything else is Internal.
func TestToStatus(t *testing.T) {
	tests := []struct {
		err  error
		code codes.Code
	}{
		{invalid("key is %d bytes", 2048), codes.InvalidArgument},
		{request.New(request.Config{MaxKeyBytes: 8}).Key("keys[1]", []byte("123456789")), codes.InvalidArgument},
		{fmt.Errorf("%w: partition 2: 10000 dirty keys", ErrBacklog), codes.ResourceExhausted},
		{fmt.Errorf("%w: null value in column", ErrRefused), codes.FailedPrecondition},
		{fmt.Errorf("%w: dial: refused", ErrBackend), codes.Unavailable},
		{fmt.Errorf("waiting: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{context.Canceled, codes.Canceled},
		{&notLeaderError{partition: 1, leader: "b"}, codes.Unavailable},
		{&notLeaderError{partition: 1}, codes.Unavailable},
		{notRunError{&noQuorumError{partition: 1}}, codes.Unavailable},
		{ErrClosed, codes.Unavailable},
		{fmt.Errorf("apply: %w", raft.ErrLeadershipLost), codes.Unavailable},
		{raft.ErrEnqueueTimeout, codes.Unavailable},
		{errors.New("storage: corrupt entry"), codes.Internal},
		{status.Error(codes.NotFound, "already a status"), codes.NotFound},
	}
	for _, tt := range tests {
		got := toStatus(tt.err)
		if c := status.Code(got); c != tt.code {
			t.Errorf("toStatus(%v) code = %v, want %v", tt.err, c, tt.code)
		}
		if msg := status.Convert(got).Message(); msg != tt.err.Error() && status.Code(tt.err) == codes.Unknown {
			t.Errorf("toStatus(%v) message = %q, want the error's own", tt.err, msg)
		}
	}
	if toStatus(nil) != nil {
		t.Error("toStatus(nil) != nil")
	}
	// Every sentinel says which package it comes from: node's own, the
	// backing database's that node re-exports from internal/backend, and
	// internal/request's.
	for _, s := range []struct {
		err    error
		prefix string
	}{
		{ErrInvalidArgument, "node: "}, {ErrNotLeader, "node: "}, {ErrUnavailable, "node: "}, {ErrClosed, "node: "},
		{ErrBacklog, "node: "}, {ErrRefused, "backend: "}, {ErrBackend, "backend: "}, {request.ErrInvalid, "request: "},
	} {
		if !strings.HasPrefix(s.err.Error(), s.prefix) {
			t.Errorf("sentinel %q has no %s prefix", s.err, s.prefix)
		}
	}
}
