package node

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConfirmBatcherRounds: concurrent callers share rounds, and every
// caller's round starts after the caller joined (what makes the read
// index valid for it).
func TestConfirmBatcherRounds(t *testing.T) {
	var rounds atomic.Int64
	var started sync.Map // round number -> start time
	b := &confirmBatcher{timeout: time.Second, stop: make(chan struct{}),
		round: func(ctx context.Context) (uint64, error) {
			n := rounds.Add(1)
			started.Store(uint64(n), time.Now())
			time.Sleep(2 * time.Millisecond) // a quorum round takes a while
			return uint64(n), nil
		}}
	const callers = 200
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			joined := time.Now()
			r := <-b.join()
			if r.err != nil {
				errs <- r.err
				return
			}
			at, _ := started.Load(r.index)
			if at.(time.Time).Before(joined) {
				errs <- errors.New("a caller got a round that started before it joined")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := rounds.Load(); n >= callers/4 {
		t.Errorf("%d callers took %d rounds: no batching", callers, n)
	}
	t.Logf("%d callers, %d rounds", callers, rounds.Load())

	// A failed round fails its callers; the next round runs again.
	fail := errors.New("not the leader")
	b.round = func(context.Context) (uint64, error) { return 0, fail }
	if r := <-b.join(); !errors.Is(r.err, fail) {
		t.Errorf("round error %v, want %v", r.err, fail)
	}
	b.round = func(context.Context) (uint64, error) { return 7, nil }
	if r := <-b.join(); r.err != nil || r.index != 7 {
		t.Errorf("after a failed round: %v", r)
	}
}

// TestConfirmBatcherStop: closing the partition cancels a round that waits.
func TestConfirmBatcherStop(t *testing.T) {
	stop := make(chan struct{})
	b := &confirmBatcher{timeout: time.Minute, stop: stop,
		round: func(ctx context.Context) (uint64, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}}
	ch := b.join()
	close(stop)
	select {
	case r := <-ch:
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("round ended with %v, want canceled", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("round not canceled by stop")
	}
}
