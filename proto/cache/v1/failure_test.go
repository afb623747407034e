package cachev1

import (
	"testing"

	"google.golang.org/grpc/codes"
)

// TestFailureRoundTrip: every failure a node answers with decodes back to
// itself from its code and a message as the node writes it, so servers
// and clients read one table.
func TestFailureRoundTrip(t *testing.T) {
	for f := range failures {
		failure := Failure(f)
		msg := "partition 3: something went wrong"
		if p := failures[f].prefix; p != "" {
			msg = p + ": " + msg
		}
		if got := FailureOf(failure.Code(), msg); got != failure {
			t.Errorf("FailureOf(%v, %q) = %v, want %v", failure.Code(), msg, got, failure)
		}
	}
}

func TestFailureOf(t *testing.T) {
	tests := []struct {
		code codes.Code
		msg  string
		want Failure
	}{
		{codes.ResourceExhausted, "rate limit: client \"a\" is over 10 requests a second", FailureRateLimited},
		{codes.ResourceExhausted, "node: write-back backlog full: partition 1", FailureBacklog},
		{codes.ResourceExhausted, "", FailureBacklog},
		{codes.Unavailable, "node: not the partition leader: partition 1 is led by node b", FailureUnavailable},
		{codes.FailedPrecondition, "backend: backing database refused the row", FailureFailedPrecondition},
		{codes.Aborted, "anything", FailureUnknown}, // a code the service does not answer with
		{codes.OK, "", FailureUnknown},
	}
	for _, tt := range tests {
		if got := FailureOf(tt.code, tt.msg); got != tt.want {
			t.Errorf("FailureOf(%v, %q) = %v, want %v", tt.code, tt.msg, got, tt.want)
		}
	}
	if got := Failure(-1).Code(); got != codes.Unknown {
		t.Errorf("Failure(-1).Code() = %v", got)
	}
	if got := Failure(len(failures)).String(); got != "unknown" {
		t.Errorf("out-of-range String() = %q", got)
	}
}
