package respserver

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

func TestSubstr(t *testing.T) {
	v := []byte("This is a string")
	tests := []struct {
		start, end int64
		want       string
	}{
		{0, 3, "This"},
		{-3, -1, "ing"},
		{0, -1, "This is a string"},
		{10, 100, "string"},
		{5, 2, ""},
		{-1, -5, ""},
		{100, 200, ""},
		{-100, 2, "Thi"},
	}
	for _, tc := range tests {
		if got := string(substr(v, tc.start, tc.end)); got != tc.want {
			t.Errorf("substr(%d, %d) = %q, want %q", tc.start, tc.end, got, tc.want)
		}
	}
	if got := substr(nil, 0, -1); len(got) != 0 {
		t.Errorf("substr of a missing value = %q", got)
	}
}

func TestParseExpiry(t *testing.T) {
	args := func(s ...string) [][]byte {
		out := make([][]byte, len(s))
		for i, a := range s {
			out[i] = []byte(a)
		}
		return out
	}
	var e expiryArg
	if used, bad := parseExpiry("set", args("set", "k", "v", "EX", "10"), 3, &e); used != 2 || bad.kind != kindNone || e.after != 10*time.Second {
		t.Fatalf("EX 10: used %d, bad %+v, after %v", used, bad, e.after)
	}
	e = expiryArg{}
	if used, _ := parseExpiry("set", args("set", "k", "v", "pxat", "1700000000000"), 3, &e); used != 2 || !e.at.Equal(time.UnixMilli(1700000000000)) {
		t.Fatalf("PXAT: used %d, at %v", used, e.at)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "k", "v", "EX", "0"}, "ERR invalid expire time in 'set' command"},
		{[]string{"set", "k", "v", "EX", "-5"}, "ERR invalid expire time in 'set' command"},
		{[]string{"set", "k", "v", "EX", "abc"}, errNotInteger},
		{[]string{"set", "k", "v", "EX"}, errSyntax},
		{[]string{"set", "k", "v", "PX", "9223372036854775807"}, "ERR invalid expire time in 'set' command"},
	} {
		e = expiryArg{}
		_, bad := parseExpiry("set", args(tc.args...), 3, &e)
		if bad.kind != kindError || bad.s != tc.want {
			t.Errorf("%v: reply %+v, want error %q", tc.args, bad, tc.want)
		}
	}
	e = expiryArg{set: true}
	if _, bad := parseExpiry("set", args("set", "k", "v", "EX", "1"), 3, &e); bad.s != errSyntax {
		t.Errorf("a second expiry option: %+v, want a syntax error", bad)
	}
}

func TestRetryable(t *testing.T) {
	hinted, _ := status.New(codes.Unavailable, "not leader").WithDetails(&cachev1.LeaderHint{Partition: 1})
	tests := []struct {
		name string
		err  error
		read bool
		want bool
	}{
		{"read unavailable", status.Error(codes.Unavailable, "x"), true, true},
		{"write unavailable: outcome unknown", status.Error(codes.Unavailable, "x"), false, false},
		{"write with leader hint: not run", hinted.Err(), false, true},
		{"backlog full", status.Error(codes.ResourceExhausted, "write-back backlog full"), false, true},
		{"rate limited", status.Error(codes.ResourceExhausted, cachev1.RateLimitPrefix+": slow down"), false, false},
		{"invalid", status.Error(codes.InvalidArgument, "bad"), true, false},
	}
	for _, tc := range tests {
		if got := retryable(tc.err, tc.read); got != tc.want {
			t.Errorf("%s: retryable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestErrReply(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{status.Error(codes.InvalidArgument, "request: invalid argument: key is empty"), "ERR key is empty"},
		{status.Error(codes.Unavailable, "node: partition 3: node is not the leader"), "TRYAGAIN partition 3: node is not the leader"},
		{status.Error(codes.Unavailable, "node: connection lost"), "ERR unavailable, the command may or may not have been applied: connection lost"},
		{status.Error(codes.PermissionDenied, "no"), "NOPERM no"},
		{status.Error(codes.FailedPrecondition, "x"), "ERR x"},
	}
	for _, tc := range tests {
		if got := errReply(tc.err); got.kind != kindError || got.s != tc.want {
			t.Errorf("errReply(%v) = %+v, want %q", tc.err, got, tc.want)
		}
	}
}

func TestCursors(t *testing.T) {
	c := newCursors()
	first := c.put([]byte("a"))
	if first == 0 {
		t.Fatal("cursor 0 handed out: it means a finished scan")
	}
	if cur, ok := c.get(first); !ok || string(cur) != "a" {
		t.Fatalf("get(%d) = %q, %v", first, cur, ok)
	}
	for range maxCursors {
		c.put([]byte("b"))
	}
	if _, ok := c.get(first); ok {
		t.Fatal("the oldest cursor is still kept past maxCursors")
	}
}
