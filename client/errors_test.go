package client

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestFromStatus(t *testing.T) {
	sentinels := []error{ErrNotFound, ErrInvalidArgument, ErrUnavailable, ErrDeadlineExceeded, ErrClosed, ErrRateLimited, context.DeadlineExceeded, context.Canceled}
	tests := []struct {
		name string
		err  error
		is   []error
		msg  string
		code codes.Code
	}{
		{"not found", status.Error(codes.NotFound, "no such key"),
			[]error{ErrNotFound}, "client: not found: no such key", codes.NotFound},
		{"invalid argument", status.Error(codes.InvalidArgument, "key is 2048 bytes; the maximum is 1024"),
			[]error{ErrInvalidArgument}, "client: invalid argument: key is 2048 bytes; the maximum is 1024", codes.InvalidArgument},
		{"server repeats the code", status.Error(codes.InvalidArgument, "invalid argument: key is empty"),
			[]error{ErrInvalidArgument}, "client: invalid argument: key is empty", codes.InvalidArgument},
		{"server's package error", status.Error(codes.InvalidArgument, "node: invalid argument: key is empty"),
			[]error{ErrInvalidArgument}, "client: invalid argument: key is empty", codes.InvalidArgument},
		{"server's request error", status.Error(codes.InvalidArgument, "request: invalid argument: key is 9 bytes, over the limit of 8"),
			[]error{ErrInvalidArgument}, "client: invalid argument: key is 9 bytes, over the limit of 8", codes.InvalidArgument},
		{"rate limited", status.Error(codes.ResourceExhausted, "rate limit: client \"a\" is over 5 requests a second"),
			[]error{ErrRateLimited}, "client: rate limited: rate limit: client \"a\" is over 5 requests a second", codes.ResourceExhausted},
		{"unavailable", status.Error(codes.Unavailable, "not leader; leader is node-2"),
			[]error{ErrUnavailable}, "client: unavailable: not leader; leader is node-2", codes.Unavailable},
		{"deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"),
			[]error{ErrDeadlineExceeded, context.DeadlineExceeded}, "client: deadline exceeded: context deadline exceeded", codes.DeadlineExceeded},
		{"canceled", status.Error(codes.Canceled, "context canceled"),
			[]error{context.Canceled}, "client: Canceled: context canceled", codes.Canceled},
		{"no sentinel", status.Error(codes.ResourceExhausted, "cache full"),
			nil, "client: ResourceExhausted: cache full", codes.ResourceExhausted},
		{"empty message", status.Error(codes.Unavailable, ""),
			[]error{ErrUnavailable}, "client: unavailable", codes.Unavailable},
		{"raw context error", fmt.Errorf("dial: %w", context.DeadlineExceeded),
			[]error{ErrDeadlineExceeded, context.DeadlineExceeded}, "client: deadline exceeded: dial: context deadline exceeded", codes.DeadlineExceeded},
		{"other error", errors.New("boom"),
			nil, "client: Unknown: boom", codes.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fromStatus(tt.err)
			if got := err.Error(); got != tt.msg {
				t.Errorf("Error() = %q, want %q", got, tt.msg)
			}
			for _, s := range sentinels {
				want := false
				for _, w := range tt.is {
					want = want || w == s
				}
				if got := errors.Is(err, s); got != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", err, s, got, want)
				}
			}
			if got := status.Code(err); got != tt.code {
				t.Errorf("status.Code() = %v, want %v", got, tt.code)
			}
		})
	}
	if err := fromStatus(nil); err != nil {
		t.Errorf("fromStatus(nil) = %v", err)
	}
}
