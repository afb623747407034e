package client

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

func TestBreaker(t *testing.T) {
	var b breaker
	b.init(3, 50*time.Millisecond)
	b.failure()
	b.failure()
	if b.open() {
		t.Fatal("open after 2 of 3 failures")
	}
	b.failure()
	if !b.open() {
		t.Fatal("closed after 3 consecutive failures")
	}
	time.Sleep(60 * time.Millisecond) // the cool-down itself
	if b.open() {
		t.Fatal("still open after the cool-down")
	}
	b.failure() // the probe fails: open again at once
	if !b.open() {
		t.Fatal("a failed probe did not open it again")
	}
	b.success()
	if b.open() {
		t.Fatal("open after a success")
	}
}

func TestBackoffIsBoundedAndJittered(t *testing.T) {
	c := &Client{cfg: Config{RetryBase: time.Millisecond, RetryMax: 4 * time.Millisecond}}
	for n, ceiling := range map[int]time.Duration{1: time.Millisecond, 2: 2 * time.Millisecond, 3: 4 * time.Millisecond, 40: 4 * time.Millisecond} {
		var longest time.Duration
		distinct := map[time.Duration]bool{}
		for range 20 {
			start := time.Now()
			if err := c.backoff(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			d := time.Since(start)
			longest = max(longest, d)
			distinct[d.Round(100*time.Microsecond)] = true
		}
		// Timers fire late, never early: the bound is checked loosely.
		if longest > ceiling+20*time.Millisecond {
			t.Errorf("retry %d: a pause of %v, over its ceiling %v", n, longest, ceiling)
		}
		if n >= 3 && len(distinct) < 2 {
			t.Errorf("retry %d: 20 pauses all alike (%v): no jitter", n, distinct)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.cfg.RetryMax = time.Hour
	if err := c.backoff(ctx, 30); err == nil {
		t.Fatal("backoff ignored a cancelled context")
	}
}

func TestRetryable(t *testing.T) {
	c := &Client{}
	hint, _ := status.New(codes.Unavailable, "not leader").WithDetails(&cachev1.LeaderHint{Partition: 1, NodeId: "n2"})
	write := &request{leader: true}
	idemWrite := &request{leader: true, idempotent: true}
	for _, tc := range []struct {
		name string
		r    *request
		err  error
		want bool
	}{
		{"lost connection, write without key", write, status.Error(codes.Unavailable, "connection reset"), false},
		{"lost connection, write with key", idemWrite, status.Error(codes.Unavailable, "connection reset"), true},
		{"not leader, write without key", write, hint.Err(), true},
		{"backlog full", write, status.Error(codes.ResourceExhausted, "backlog"), true},
		{"timed out, write without key", write, status.Error(codes.DeadlineExceeded, "slow"), false},
		{"timed out, read", &request{idempotent: true}, status.Error(codes.DeadlineExceeded, "slow"), true},
		{"bad argument", idemWrite, status.Error(codes.InvalidArgument, "key too long"), false},
		{"internal", idemWrite, status.Error(codes.Internal, "bug"), false},
	} {
		if got := c.retryable(context.Background(), tc.r, tc.err); got != tc.want {
			t.Errorf("%s: retryable = %v, want %v", tc.name, got, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c.retryable(ctx, idemWrite, status.Error(codes.Unavailable, "x")) {
		t.Error("retryable after the caller's context ended")
	}
}

func TestSessionsKeepNewest(t *testing.T) {
	var s sessions
	s.observe(&cachev1.SessionToken{Partition: 3, Epoch: 1, Index: 10})
	s.observe(&cachev1.SessionToken{Partition: 3, Epoch: 1, Index: 7})
	if got := s.token(3); got.GetIndex() != 10 {
		t.Fatalf("token after an older one = %v, want index 10", got)
	}
	s.observe(&cachev1.SessionToken{Partition: 3, Epoch: 2, Index: 2})
	if got := s.token(3); got.GetEpoch() != 2 || got.GetIndex() != 2 {
		t.Fatalf("token after a new epoch = %v, want epoch 2 index 2", got)
	}
	if s.token(4) != nil {
		t.Fatal("a token for a partition never seen")
	}
}
