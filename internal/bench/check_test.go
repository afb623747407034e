package bench

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// logTarget is a working in-memory Target that reports versions: every
// write is applied at the next version of one log, after a random delay
// (so that concurrent writes of a key are applied out of the order they
// were issued), and reads see the store as it was lag ago. It promises
// reads stale by at most bound.
type logTarget struct {
	bound time.Duration
	lag   time.Duration
	// swap: reads return the value of the write before the one whose
	// version they report.
	swap bool

	mu      sync.Mutex
	version uint64
	hist    map[string][]logWrite // by key, oldest first
}

type logWrite struct {
	at      time.Time
	version uint64
	value   []byte
}

var (
	_ versionedTarget = (*logTarget)(nil)
	_ boundedTarget   = (*logTarget)(nil)
)

func newLogTarget(bound, lag time.Duration) *logTarget {
	return &logTarget{bound: bound, lag: lag, hist: make(map[string][]logWrite)}
}

func (l *logTarget) Name() string { return "log" }

func (l *logTarget) Get(ctx context.Context, key string) error {
	_, _, _, err := l.GetVersion(ctx, key)
	return err
}

func (l *logTarget) Put(ctx context.Context, key string, value []byte) error {
	_, err := l.PutVersion(ctx, key, value)
	return err
}

func (l *logTarget) GetVersion(_ context.Context, key string) ([]byte, uint64, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.hist[key]
	asOf := time.Now().Add(-l.lag)
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].at.After(asOf) {
			continue
		}
		if l.swap && i > 0 {
			return h[i-1].value, h[i].version, true, nil
		}
		return h[i].value, h[i].version, true, nil
	}
	return nil, 0, false, nil
}

func (l *logTarget) PutVersion(_ context.Context, key string, value []byte) (uint64, error) {
	time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.version++
	l.hist[key] = append(l.hist[key], logWrite{at: time.Now(), version: l.version, value: append([]byte(nil), value...)})
	return l.version, nil
}

func (l *logTarget) StalenessBound() (time.Duration, bool) { return l.bound, true }

func (l *logTarget) Close() error { return nil }

// TestRunCheck runs workload A over few keys, so that writes of a key
// overlap, against targets that keep their promise and ones that break
// it.
func TestRunCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		target     *logTarget
		noLoad     bool // the keys hold values from before the run
		stale, bad bool // violations expected
	}{
		{name: "fresh", target: newLogTarget(0, 0)},
		{name: "values from before the run", target: newLogTarget(0, 0), noLoad: true},
		{name: "within bound", target: newLogTarget(50*time.Millisecond, 20*time.Millisecond)},
		{name: "beyond bound", target: newLogTarget(10*time.Millisecond, 100*time.Millisecond), stale: true},
		{name: "value of another version", target: func() *logTarget { l := newLogTarget(time.Second, 0); l.swap = true; return l }(), bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := smallConfig()
			cfg.Keys, cfg.Check = 20, true
			cfg.Warmup, cfg.Duration = 0, 400*time.Millisecond
			if tc.noLoad {
				cfg.Load = false
				for i := range cfg.Keys {
					tc.target.Put(context.Background(), newKeyspace(cfg.Keys).key(i), []byte("from an earlier run"))
				}
			}
			res, err := Run(context.Background(), tc.target, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Check
			if c == nil || c.Reads == 0 {
				t.Fatalf("check %+v, want reads checked", c)
			}
			if c.Bound != tc.target.bound.String() {
				t.Errorf("bound %q, want %v", c.Bound, tc.target.bound)
			}
			if (c.Stale > 0) != tc.stale || (c.Wrong > 0) != tc.bad || (c.First != "") != (tc.stale || tc.bad) {
				t.Errorf("check %+v: want stale %v, wrong %v, and the first violation described", c, tc.stale, tc.bad)
			}
			if len(tc.target.hist) != cfg.Keys {
				t.Errorf("%d keys written, want all %d", len(tc.target.hist), cfg.Keys)
			}
		})
	}
}

func TestRunCheckNeedsVersions(t *testing.T) {
	cfg := smallConfig()
	cfg.Check = true
	if _, err := Run(context.Background(), newMemTarget(), cfg, nil); err == nil || !strings.Contains(err.Error(), "versions") {
		t.Errorf("err = %v, want the check's need of versions", err)
	}
	cfg.ValueSize = 8
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "at least 16 bytes") {
		t.Errorf("Validate = %v, want values too small for the check", err)
	}
}

// TestCheckerRequired follows one key's acknowledgements: the version a
// read must see is the highest acknowledged by its start minus the
// bound, and forgetting old acknowledgements keeps that.
func TestCheckerRequired(t *testing.T) {
	l := newLogTarget(0, 0)
	c, err := newChecker(l, 1)
	if err != nil {
		t.Fatal(err)
	}
	c.bound = 0
	value := make([]byte, checkHeader)
	var acked []time.Duration
	for range 2000 {
		if err := c.put(context.Background(), l, "k", 0, value); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, time.Since(c.start))
	}
	if n := len(c.keys[0].acks); n == 0 || n > 2000 {
		t.Fatalf("%d acknowledgements kept", n)
	}
	if got := c.required(0, -time.Nanosecond); got != 0 {
		t.Errorf("required before the first write = %d, want 0", got)
	}
	if got := c.required(0, acked[len(acked)-1]+time.Hour); got != 2000 {
		t.Errorf("required after the last write = %d, want 2000", got)
	}
}
