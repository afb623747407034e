package cachev1

import (
	"strings"

	"google.golang.org/grpc/codes"
)

// Failure is a kind of failure the Cache service reports, and failures is
// the one table of their gRPC status codes: a node maps each of its
// errors to a Failure and answers with its code (node/errors.go), and the
// Go client decodes a code (and, where two failures share one, the
// message) back to the same Failure (client/errors.go). This file is
// written by hand; protoc does not generate it.
type Failure int

// The failures, with their codes in failures.
const (
	FailureUnknown Failure = iota
	// FailureInvalidArgument: the request is malformed or over a limit;
	// sending it again cannot succeed.
	FailureInvalidArgument
	// FailureNotFound: the key, node or resource named does not exist.
	FailureNotFound
	// FailureUnavailable: no leader, no quorum, shutting down, or the
	// backing database is down; the request may succeed later or on
	// another node. A LeaderHint detail names the leader when known.
	FailureUnavailable
	// FailureDeadlineExceeded and FailureCanceled: the caller's context.
	FailureDeadlineExceeded
	FailureCanceled
	// FailureUnauthenticated: no token, or an unknown one.
	FailureUnauthenticated
	// FailurePermissionDenied: the token's role does not allow the call.
	FailurePermissionDenied
	// FailureRateLimited: the caller is over its request rate; slow down.
	FailureRateLimited
	// FailureBacklog: the write-back backlog is full; retry later.
	FailureBacklog
	// FailureFailedPrecondition: the call cannot run in the state it
	// finds: the backing database refused the row (a constraint or type
	// error), or a drain would leave no replica. Sending it again as it
	// is cannot succeed.
	FailureFailedPrecondition
	// FailureInternal: a bug or a broken invariant on the node.
	FailureInternal
)

// RateLimitPrefix starts the message of every FailureRateLimited status:
// it shares ResourceExhausted with FailureBacklog.
const RateLimitPrefix = "rate limit"

var failures = [...]struct {
	name string
	code codes.Code
	// prefix, if set, starts the message of a failure that shares its
	// code with another; FailureOf matches it first.
	prefix string
}{
	FailureUnknown:            {"unknown", codes.Unknown, ""},
	FailureInvalidArgument:    {"invalid argument", codes.InvalidArgument, ""},
	FailureNotFound:           {"not found", codes.NotFound, ""},
	FailureUnavailable:        {"unavailable", codes.Unavailable, ""},
	FailureDeadlineExceeded:   {"deadline exceeded", codes.DeadlineExceeded, ""},
	FailureCanceled:           {"canceled", codes.Canceled, ""},
	FailureUnauthenticated:    {"unauthenticated", codes.Unauthenticated, ""},
	FailurePermissionDenied:   {"permission denied", codes.PermissionDenied, ""},
	FailureRateLimited:        {"rate limited", codes.ResourceExhausted, RateLimitPrefix},
	FailureBacklog:            {"write-back backlog full", codes.ResourceExhausted, ""},
	FailureFailedPrecondition: {"failed precondition", codes.FailedPrecondition, ""},
	FailureInternal:           {"internal", codes.Internal, ""},
}

// Code returns the gRPC status code a node answers f with.
func (f Failure) Code() codes.Code {
	if f < 0 || int(f) >= len(failures) {
		return codes.Unknown
	}
	return failures[f].code
}

func (f Failure) String() string {
	if f < 0 || int(f) >= len(failures) {
		return failures[FailureUnknown].name
	}
	return failures[f].name
}

// FailureOf decodes a status with code and message: among the failures
// with that code, the one whose message prefix matches, else the one
// with no prefix; FailureUnknown for a code the service does not use.
func FailureOf(code codes.Code, msg string) Failure {
	found := FailureUnknown
	for f, row := range failures {
		if row.code != code {
			continue
		}
		if row.prefix != "" {
			if strings.HasPrefix(msg, row.prefix) {
				return Failure(f)
			}
			continue
		}
		if found == FailureUnknown {
			found = Failure(f)
		}
	}
	return found
}
