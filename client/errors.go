package client

import (
	"context"
	"errors"
	"strings"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors returned by the Client. Errors from the server wrap one of these
// and keep the server's message; test them with errors.Is.
var (
	// ErrNotFound: the key does not exist (Get) or a resource is missing.
	ErrNotFound = errors.New("client: not found")
	// ErrInvalidArgument: the request was rejected as malformed, e.g. an
	// empty or oversized key or a negative TTL.
	ErrInvalidArgument = errors.New("client: invalid argument")
	// ErrUnavailable: the node could not be reached, or the partition has
	// no leader or quorum right now. Retrying later may succeed.
	ErrUnavailable = errors.New("client: unavailable")
	// ErrDeadlineExceeded: the context deadline passed before the request
	// completed. The error also matches context.DeadlineExceeded. A write
	// may still have been applied; retry it with the same idempotency key.
	ErrDeadlineExceeded = errors.New("client: deadline exceeded")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrUnauthenticated: the nodes require a token (Config.Token) and the
	// request had none, or one they do not know.
	ErrUnauthenticated = errors.New("client: unauthenticated")
	// ErrPermissionDenied: the token's role does not allow the request
	// (a read token writing, say).
	ErrPermissionDenied = errors.New("client: permission denied")
	// ErrRateLimited: this client is over its request rate on the node
	// (ResourceExhausted); slow down. The client retries it with backoff
	// before returning it.
	ErrRateLimited = errors.New("client: rate limited")
)

// failureErrors are the client's errors for the Cache service's failures
// (cachev1.Failure: the table of codes the nodes answer with). Failures
// not here have no sentinel; their code stays reachable (status.Code).
var failureErrors = map[cachev1.Failure]error{
	cachev1.FailureNotFound:         ErrNotFound,
	cachev1.FailureInvalidArgument:  ErrInvalidArgument,
	cachev1.FailureUnavailable:      ErrUnavailable,
	cachev1.FailureDeadlineExceeded: ErrDeadlineExceeded,
	cachev1.FailureUnauthenticated:  ErrUnauthenticated,
	cachev1.FailurePermissionDenied: ErrPermissionDenied,
	cachev1.FailureRateLimited:      ErrRateLimited,
}

// serverPackages are the prefixes of the server's package errors a
// message may start with (node's sentinels, internal/request's ErrInvalid).
var serverPackages = []string{"node: ", "request: "}

// statusError is a gRPC status mapped to the client's errors. GRPCStatus
// keeps the original code reachable through status.FromError.
type statusError struct {
	kind error // a sentinel above, or nil for codes without one
	st   *status.Status
}

func (e *statusError) Error() string {
	prefix, msg := "client: "+e.st.Code().String(), e.st.Message()
	if e.kind != nil {
		prefix = e.kind.Error()
		// Servers may start the message with the same words, as
		// their package's error ("node: invalid argument: ...",
		// "request: invalid argument: ...").
		for _, pkg := range serverPackages {
			if m, ok := strings.CutPrefix(msg, pkg); ok {
				msg = m
				break
			}
		}
		msg = strings.TrimPrefix(msg, strings.TrimPrefix(prefix, "client: ")+": ")
	}
	if msg != "" {
		return prefix + ": " + msg
	}
	return prefix
}

func (e *statusError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	switch e.st.Code() {
	case codes.DeadlineExceeded:
		errs = append(errs, context.DeadlineExceeded)
	case codes.Canceled:
		errs = append(errs, context.Canceled)
	}
	return errs
}

func (e *statusError) GRPCStatus() *status.Status { return e.st }

// fromStatus maps an error from a gRPC call (a status error, or a context
// error) to the client's errors. It is the only place codes are mapped.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	kind := failureErrors[cachev1.FailureOf(st.Code(), st.Message())]
	return &statusError{kind: kind, st: st}
}
