package readround

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// roundCall is one call of a leadership round as a test peer saw it.
type roundCall struct {
	peer  string
	at    time.Time
	parts []uint32
}

// TestLeaderRoundsBatch: concurrent reads of many partitions share
// rounds, one call per peer per round, and every read is confirmed by
// calls that started after it joined (what makes its read index valid).
func TestLeaderRoundsBatch(t *testing.T) {
	var mu sync.Mutex
	var calls []roundCall
	lr := New(func(ctx context.Context, peer string, claims []Claim) ([]bool, error) {
		c := roundCall{peer: peer, at: time.Now()}
		var current []bool
		for _, p := range claims {
			c.parts = append(c.parts, p.Partition)
			current = append(current, p.Term == 3)
		}
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // a round trip takes a while
		return current, nil
	}, time.Second)
	defer lr.Close()

	const reads = 400
	var wg sync.WaitGroup
	errs := make(chan error, reads)
	for i := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			part := uint32(i % 16)
			joined := time.Now()
			if err := lr.Confirm(context.Background(), part, 3, []string{"b", "c"}, 1); err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, c := range calls {
				if !c.at.Before(joined) && containsPart(c.parts, part) {
					return
				}
			}
			errs <- fmt.Errorf("partition %d: confirmed without a call that started after the read joined", part)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mu.Lock()
	n := len(calls)
	mu.Unlock()
	if n >= reads/4 {
		t.Errorf("%d reads took %d calls: no batching", reads, n)
	}
	t.Logf("%d reads of 16 partitions, %d calls", reads, n)

	// A claim at another term than the peers' is refused as moved.
	if err := lr.Confirm(context.Background(), 1, 2, []string{"b", "c"}, 1); !errors.Is(err, ErrTermMoved) {
		t.Errorf("stale term: %v, want ErrTermMoved", err)
	}
}

func containsPart(parts []uint32, p uint32) bool {
	for _, q := range parts {
		if q == p {
			return true
		}
	}
	return false
}

// TestLeaderRoundsQuorum: a claim is confirmed by a quorum of answers,
// whatever the others say or whether they answer; short of one it fails,
// as moved if some voter is at another term.
func TestLeaderRoundsQuorum(t *testing.T) {
	// Peers: "cur1", "cur2" confirm, "moved" is at a later term, "down"
	// fails, "frozen" never answers within the round's timeout.
	answer := func(ctx context.Context, peer string, claims []Claim) ([]bool, error) {
		current := make([]bool, len(claims))
		switch peer {
		case "cur1", "cur2":
			for i := range current {
				current[i] = true
			}
		case "down":
			return nil, errors.New("connection refused")
		case "frozen":
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return current, nil
	}
	lr := New(answer, 5*time.Second)
	defer lr.Close()
	for _, tc := range []struct {
		peers []string
		need  int
		want  error
	}{
		{[]string{"cur1", "moved", "down", "cur2"}, 2, nil},
		{[]string{"cur1", "frozen"}, 1, nil},
		{[]string{"cur1", "moved", "down"}, 2, ErrTermMoved},
		{[]string{"cur1", "down"}, 2, ErrNoQuorum},
		{[]string{"moved", "down"}, 1, ErrTermMoved},
		{[]string{}, 0, nil},
		{[]string{"cur1"}, 2, ErrNoQuorum},
	} {
		start := time.Now()
		err := lr.Confirm(context.Background(), 1, 5, tc.peers, tc.need)
		if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Errorf("peers %v need %d: %v, want %v", tc.peers, tc.need, err, tc.want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("peers %v need %d: took %v, a frozen peer held the round", tc.peers, tc.need, d)
		}
	}

	// A read whose caller gives up returns at once.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := lr.Confirm(ctx, 1, 5, []string{"frozen", "down"}, 2); err == nil {
		t.Error("a round no quorum can answer confirmed a read")
	}
}

// TestLeaderRoundsFrozenPeer: rounds go on while a peer never answers,
// and the calls waiting on it stay capped.
func TestLeaderRoundsFrozenPeer(t *testing.T) {
	var inFlight, most atomic.Int64
	release := make(chan struct{})
	lr := New(func(ctx context.Context, peer string, claims []Claim) ([]bool, error) {
		current := make([]bool, len(claims))
		for i := range current {
			current[i] = true
		}
		if peer == "frozen" {
			n := inFlight.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
			inFlight.Add(-1)
			return nil, errors.New("frozen")
		}
		return current, nil
	}, time.Minute)
	defer lr.Close()
	for i := range 50 {
		if err := lr.Confirm(context.Background(), uint32(i), 1, []string{"frozen", "ok"}, 1); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	close(release)
	if m := most.Load(); m > maxPeerCalls {
		t.Errorf("%d calls to a frozen peer at once, cap %d", m, maxPeerCalls)
	}
}
