package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elcache/elcache/storage/sqlstore"
	"github.com/sony/gobreaker/v2"
)

var (
	errTransient = errors.New("connection reset")
	errPermanent = errors.New("password authentication failed")
)

// transient is the test's transient function: errTransient passes on retry.
func transient(err error) bool { return errors.Is(err, errTransient) }

// memDB is a Database in memory: a row only moves to a higher version, as
// in the real table. fail, when set, gives each try's error (try counts
// from 0; nil lets the try reach the rows).
type memDB struct {
	mu     sync.Mutex
	rows   map[string]sqlstore.Row
	tries  int
	fail   func(try int) error
	closed bool
}

func newMemDB() *memDB { return &memDB{rows: make(map[string]sqlstore.Row)} }

// try counts a try and returns its error.
func (m *memDB) try() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tries
	m.tries++
	if m.fail == nil {
		return nil
	}
	return m.fail(t)
}

func (m *memDB) setFail(f func(try int) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = f
}

func (m *memDB) triesSoFar() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tries
}

func (m *memDB) Load(ctx context.Context, key []byte) (sqlstore.Row, bool, error) {
	if err := m.try(); err != nil {
		return sqlstore.Row{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rows[string(key)]
	return r, ok, nil
}

func (m *memDB) Write(ctx context.Context, rows []sqlstore.Row) (int, error) {
	if err := m.try(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range rows {
		if old, ok := m.rows[string(r.Key)]; !ok || old.Version < r.Version {
			m.rows[string(r.Key)] = r
			n++
		}
	}
	return n, nil
}

func (m *memDB) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// newClient returns a client of db with short retry waits, and c's other
// fields.
func newClient(t *testing.T, db Database, c Config) *Client {
	t.Helper()
	if c.RetryBase == 0 {
		c.RetryBase, c.RetryMax = time.Millisecond, 2*time.Millisecond
	}
	cl, err := New(db, c, transient)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func rows(keys ...string) []sqlstore.Row {
	var out []sqlstore.Row
	for i, k := range keys {
		out = append(out, sqlstore.Row{Key: []byte(k), Value: []byte("v"), Version: uint64(i + 1)})
	}
	return out
}

// waitState waits until the client's breaker is in state s.
func waitState(t *testing.T, cl *Client, s gobreaker.State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for cl.State() != s {
		if time.Now().After(deadline) {
			t.Fatalf("breaker %v after 5s, want %v", cl.State(), s)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRetries: transient errors are tried again up to Attempts tries in
// all, others end the call at once; every failure wraps ErrUnavailable,
// but rows the database refuses wrap ErrRefused; the counters count.
func TestRetries(t *testing.T) {
	refused := fmt.Errorf("%w: value too long", sqlstore.ErrInvalidRow)
	tests := []struct {
		name      string
		fail      func(try int) error
		tries     int
		want      error // nil: the write succeeds
		notWant   error
		inMessage string
	}{
		{"healthy", nil, 1, nil, nil, ""},
		{"transient once", func(try int) error {
			if try == 0 {
				return errTransient
			}
			return nil
		}, 2, nil, nil, ""},
		{"transient every try", func(int) error { return errTransient }, 3, ErrUnavailable, ErrRefused, "write: connection reset"},
		{"permanent", func(int) error { return errPermanent }, 1, ErrUnavailable, ErrRefused, "write: password authentication failed"},
		{"transient then permanent", func(try int) error {
			if try == 0 {
				return errTransient
			}
			return errPermanent
		}, 2, ErrUnavailable, ErrRefused, "password authentication failed"},
		{"refused row", func(int) error { return refused }, 1, ErrRefused, ErrUnavailable, "write: sqlstore: invalid row"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newMemDB()
			db.fail = tt.fail
			cl := newClient(t, db, Config{Attempts: 3, BreakerFailures: 100})
			err := cl.Write(context.Background(), rows("a", "b"))
			if db.tries != tt.tries {
				t.Errorf("%d tries, want %d", db.tries, tt.tries)
			}
			st := cl.Stats()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("write: %v", err)
				}
				if len(db.rows) != 2 || st != (Stats{Writes: 1, RowsWritten: 2}) {
					t.Fatalf("after the write: %d rows in the database, stats %+v", len(db.rows), st)
				}
				return
			}
			if !errors.Is(err, tt.want) || errors.Is(err, tt.notWant) || !strings.Contains(err.Error(), tt.inMessage) {
				t.Fatalf("write: %v; want an error wrapping %v (not %v) that says %q", err, tt.want, tt.notWant, tt.inMessage)
			}
			if st != (Stats{Writes: 1, WriteErrors: 1}) {
				t.Fatalf("stats %+v, want one failed write", st)
			}
		})
	}
}

// TestLoad: a load finds what was written and misses the rest, through
// the same retries.
func TestLoad(t *testing.T) {
	db := newMemDB()
	cl := newClient(t, db, Config{})
	ctx := context.Background()
	if err := cl.Write(ctx, rows("a")); err != nil {
		t.Fatal(err)
	}
	db.setFail(func(try int) error {
		if try == 1 {
			return errTransient
		}
		return nil
	})
	if r, ok, err := cl.Load(ctx, []byte("a")); err != nil || !ok || r.Version != 1 {
		t.Fatalf("load a = %+v, %v, %v; want version 1", r, ok, err)
	}
	if _, ok, err := cl.Load(ctx, []byte("b")); err != nil || ok {
		t.Fatalf("load b = %v, %v; want not found", ok, err)
	}
	db.setFail(func(int) error { return errPermanent })
	if _, _, err := cl.Load(ctx, []byte("a")); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "load: ") {
		t.Fatalf("load with the database down: %v, want ErrUnavailable from load", err)
	}
	if st := cl.Stats(); st != (Stats{Loads: 3, LoadErrors: 1, Writes: 1, RowsWritten: 1}) {
		t.Fatalf("stats %+v", st)
	}
}

// TestRetryWithinDeadline: a retry that would wait past the caller's
// deadline is not made, and a caller that gives up during a wait ends the
// call at once.
func TestRetryWithinDeadline(t *testing.T) {
	hour := Config{Attempts: 4, RetryBase: time.Hour, RetryMax: time.Hour, BreakerFailures: 100}
	t.Run("deadline", func(t *testing.T) {
		db := newMemDB()
		db.fail = func(int) error { return errTransient }
		cl := newClient(t, db, hour)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := cl.Write(ctx, rows("a"))
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "connection reset") {
			t.Fatalf("write: %v, want the last error as ErrUnavailable", err)
		}
		if d := time.Since(start); d > time.Minute {
			t.Fatalf("write took %v with a 100ms deadline", d)
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		db := newMemDB()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		db.fail = func(try int) error {
			if try == 0 {
				time.AfterFunc(20*time.Millisecond, cancel)
			}
			return errTransient
		}
		cl := newClient(t, db, hour)
		err := cl.Write(ctx, rows("a"))
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "context canceled (last error: connection reset)") {
			t.Fatalf("write: %v, want ErrUnavailable with the cancellation and the last error", err)
		}
		if db.triesSoFar() != 1 {
			t.Fatalf("%d tries, want 1", db.triesSoFar())
		}
	})
}

// TestRetryCap: the longest wait doubles from RetryBase with each retry up
// to RetryMax, and stays there however many attempts are allowed.
func TestRetryCap(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		attempt    int
		base, most time.Duration
		want       time.Duration
	}{
		{1, 20 * ms, time.Second, 20 * ms},
		{2, 20 * ms, time.Second, 40 * ms},
		{3, 20 * ms, time.Second, 80 * ms},
		{6, 20 * ms, time.Second, 640 * ms},
		{7, 20 * ms, time.Second, time.Second},
		{1000, 20 * ms, time.Second, time.Second},
		{1, 2 * time.Second, time.Second, time.Second},
	}
	for _, tt := range tests {
		if got := retryCap(tt.attempt, tt.base, tt.most); got != tt.want {
			t.Errorf("retryCap(%d, %v, %v) = %v, want %v", tt.attempt, tt.base, tt.most, got, tt.want)
		}
	}
}

// TestBreaker: BreakerFailures failed tries in a row open the breaker
// (retries count); while open, calls fail at once without reaching the
// database; after the cool-down 3 successful probes close it, and a failed
// probe opens it again.
func TestBreaker(t *testing.T) {
	db := newMemDB()
	db.fail = func(int) error { return errTransient }
	cl := newClient(t, db, Config{Attempts: 2, BreakerFailures: 4, BreakerCooldown: 300 * time.Millisecond})
	ctx := context.Background()
	for range 2 {
		if err := cl.Write(ctx, rows("a")); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("write with the database down: %v", err)
		}
	}
	if s := cl.State(); s != gobreaker.StateOpen || db.triesSoFar() != 4 {
		t.Fatalf("after 2 calls of 2 failed tries: breaker %v, %d tries; want open after 4", s, db.triesSoFar())
	}
	err := cl.Write(ctx, rows("a"))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "write: circuit breaker open") {
		t.Fatalf("write with the breaker open: %v", err)
	}
	if db.triesSoFar() != 4 || cl.Stats().Rejected != 1 {
		t.Fatalf("with the breaker open: %d tries (want 4), %d rejected (want 1)", db.triesSoFar(), cl.Stats().Rejected)
	}

	// A failed probe opens it again: its retry finds it open.
	waitState(t, cl, gobreaker.StateHalfOpen)
	if err := cl.Write(ctx, rows("a")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("probe with the database down: %v", err)
	}
	if s := cl.State(); s != gobreaker.StateOpen || db.triesSoFar() != 5 {
		t.Fatalf("after a failed probe: breaker %v, %d tries; want open after 5", s, db.triesSoFar())
	}

	// Three good probes close it.
	db.setFail(nil)
	waitState(t, cl, gobreaker.StateHalfOpen)
	for i := range 3 {
		if err := cl.Write(ctx, rows("a")); err != nil {
			t.Fatalf("probe %d with the database back: %v", i, err)
		}
	}
	if s := cl.State(); s != gobreaker.StateClosed {
		t.Fatalf("after 3 good probes: breaker %v, want closed", s)
	}
}

// TestBreakerCounts: refused rows and cancelled tries do not open the
// breaker, tries that ran out of time do.
func TestBreakerCounts(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		opens bool
	}{
		{"refused row", fmt.Errorf("%w: check failed", sqlstore.ErrInvalidRow), false},
		{"cancelled", context.Canceled, false},
		{"deadline", context.DeadlineExceeded, true},
		{"permanent", errPermanent, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newMemDB()
			db.fail = func(int) error { return tt.err }
			cl := newClient(t, db, Config{Attempts: 1, BreakerFailures: 3, BreakerCooldown: time.Hour})
			for range 5 {
				cl.Write(context.Background(), rows("a"))
			}
			if open := cl.State() == gobreaker.StateOpen; open != tt.opens {
				t.Fatalf("after 5 tries failing with %v: breaker %v, want open %v", tt.err, cl.State(), tt.opens)
			}
		})
	}
}

// TestClose: closing the client closes the database.
func TestClose(t *testing.T) {
	db := newMemDB()
	if err := newClient(t, db, Config{}).Close(); err != nil || !db.closed {
		t.Fatalf("close: %v, database closed %v", err, db.closed)
	}
}
