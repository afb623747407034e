package bench

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// memTarget is a working in-memory Target: a map behind a mutex, with an
// optional service time per operation and optional failures.
type memTarget struct {
	delay   time.Duration // each operation takes this long
	failPut bool          // every Put fails

	gets, puts atomic.Int64

	mu   sync.Mutex
	data map[string][]byte
}

var _ Target = (*memTarget)(nil)

var errPut = errors.New("memtarget: put refused")

func newMemTarget() *memTarget { return &memTarget{data: make(map[string][]byte)} }

func (m *memTarget) Name() string { return "mem" }

func (m *memTarget) wait(ctx context.Context) error {
	if m.delay <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(m.delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (m *memTarget) Get(ctx context.Context, key string) error {
	m.gets.Add(1)
	if err := m.wait(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_ = m.data[key]
	return nil
}

func (m *memTarget) Put(ctx context.Context, key string, value []byte) error {
	m.puts.Add(1)
	if err := m.wait(ctx); err != nil {
		return err
	}
	if m.failPut {
		return errPut
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[key] = append([]byte(nil), value...)
	return nil
}

func (m *memTarget) Close() error { return nil }

func (m *memTarget) size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.data)
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func smallConfig() RunConfig {
	cfg := DefaultRunConfig()
	cfg.Keys = 500
	cfg.ValueSize = 16
	cfg.Clients = 4
	cfg.Warmup = 50 * time.Millisecond
	cfg.Duration = 300 * time.Millisecond
	return cfg
}

func TestRunClosedLoop(t *testing.T) {
	t.Parallel()
	m := newMemTarget()
	m.delay = 100 * time.Microsecond
	cfg := smallConfig()
	var calls int
	var loaded, lastOps int64
	var lastDone, lastTotal time.Duration
	res, err := Run(context.Background(), m, cfg, func(done, total time.Duration, ops int64) {
		calls++
		if total == 0 {
			loaded = ops
		}
		lastDone, lastTotal, lastOps = done, total, ops
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.size() != cfg.Keys || loaded != int64(cfg.Keys) {
		t.Errorf("load wrote %d keys (progress said %d), want %d", m.size(), loaded, cfg.Keys)
	}
	if calls == 0 || lastDone != lastTotal || lastTotal != cfg.Warmup+cfg.Duration {
		t.Errorf("progress: %d calls, last %v/%v; want a last call with done == total == %v", calls, lastDone, lastTotal, cfg.Warmup+cfg.Duration)
	}
	all, rd, up := res.Ops["all"], res.Ops["read"], res.Ops["update"]
	if all.Count == 0 || all.Count != rd.Count+up.Count {
		t.Fatalf("counts all %d, read %d, update %d", all.Count, rd.Count, up.Count)
	}
	// Workload A: half reads.
	if share := float64(rd.Count) / float64(all.Count); share < 0.45 || share > 0.55 {
		t.Errorf("read share %.3f, want about 0.5", share)
	}
	// Warm-up operations are done but not measured.
	if done := m.gets.Load() + m.puts.Load() - int64(cfg.Keys); done <= all.Count || lastOps < all.Count {
		t.Errorf("target saw %d operations, progress %d, measured %d: want more done than measured", done, lastOps, all.Count)
	}
	if want := float64(all.Count) / cfg.Duration.Seconds(); res.Throughput != want {
		t.Errorf("throughput %v, want %v", res.Throughput, want)
	}
	if all.Errors != 0 || all.P50 <= 0 || all.P99 < all.P50 || all.Max < all.P999 {
		t.Errorf("all = %+v, want no errors and ordered quantiles", all)
	}
	if len(res.Timeline) != 1 || res.Timeline[0] != float64(all.Count)/0.3 {
		t.Errorf("timeline %v, want one second at %v ops/s", res.Timeline, float64(all.Count)/0.3)
	}
	if res.Target != "mem" || res.Workload != "A" || res.Clients != 4 || res.Duration != 0.3 {
		t.Errorf("result header %+v", res)
	}
}

func TestRunOpenLoopCountsQueueing(t *testing.T) {
	t.Parallel()
	// 2000 ops/s on one client that takes 1ms (or more) per operation:
	// the client falls ever further behind, and latency counted from the
	// scheduled times shows the backlog.
	m := newMemTarget()
	m.delay = time.Millisecond
	cfg := smallConfig()
	cfg.Load = false
	cfg.Clients = 1
	cfg.Rate = 2000
	cfg.Warmup = 0
	res, err := Run(context.Background(), m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := res.Ops["all"]
	if all.Count == 0 || all.Count > 310 {
		t.Fatalf("%d operations, want some, at most 300ms at 1ms each", all.Count)
	}
	// After 300ms the backlog is at least 300 slots - 300 done = 300
	// scheduled 150ms ago or more; without the queueing p99 would be ~1ms.
	if all.P99 < 50_000 {
		t.Errorf("p99 %.0fus, want far above the 1ms service time", all.P99)
	}
	if res.Rate != 2000 {
		t.Errorf("rate %v, want 2000", res.Rate)
	}
}

func TestRunOpenLoopKeepsRate(t *testing.T) {
	t.Parallel()
	// A fast target keeps up: the operations done match the rate, and
	// latency stays small.
	m := newMemTarget()
	cfg := smallConfig()
	cfg.Load = false
	cfg.Rate = 1000
	cfg.Warmup = 0
	cfg.Duration = 500 * time.Millisecond
	res, err := Run(context.Background(), m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := res.Ops["all"]
	if all.Count < 450 || all.Count > 501 {
		t.Errorf("%d operations, want about 500 (1000/s for 0.5s)", all.Count)
	}
	if all.P50 > 20_000 {
		t.Errorf("p50 %.0fus, want small for a target that keeps up", all.P50)
	}
}

func TestRunCountsErrors(t *testing.T) {
	t.Parallel()
	m := newMemTarget()
	m.delay = 100 * time.Microsecond
	m.failPut = true
	cfg := smallConfig()
	cfg.Load = false
	res, err := Run(context.Background(), m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rd, up, all := res.Ops["read"], res.Ops["update"], res.Ops["all"]
	if up.Count != 0 || up.Errors == 0 {
		t.Errorf("update count %d errors %d, want 0 and some", up.Count, up.Errors)
	}
	if rd.Count == 0 || rd.Errors != 0 {
		t.Errorf("read count %d errors %d, want some and 0", rd.Count, rd.Errors)
	}
	if all.Count != rd.Count || all.Errors != up.Errors {
		t.Errorf("all %+v, want reads' count and updates' errors", all)
	}
	if res.Throughput != float64(rd.Count)/cfg.Duration.Seconds() {
		t.Errorf("throughput %v counts failed operations", res.Throughput)
	}
}

func TestRunLoadFails(t *testing.T) {
	m := newMemTarget()
	m.failPut = true
	_, err := Run(context.Background(), m, smallConfig(), nil)
	if !errors.Is(err, errPut) || !strings.Contains(err.Error(), "500 of 500") {
		t.Errorf("err = %v, want the load's failure", err)
	}
}

func TestRunStops(t *testing.T) {
	m := newMemTarget()
	m.delay = time.Millisecond
	cfg := smallConfig()
	cfg.Load = false
	cfg.Duration = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() {
		_, err := Run(ctx, m, cfg, nil)
		stopped <- err
	}()
	cancel()
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop when its context ended")
	}
}

func TestRunConfigValidate(t *testing.T) {
	if err := DefaultRunConfig().Validate(); err != nil {
		t.Errorf("DefaultRunConfig: %v", err)
	}
	bad := RunConfig{Workload: "Z", Distribution: "x", Keys: -1, ValueSize: -1, Clients: 0, Warmup: -1, Rate: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"workload", "distribution", "keys", "value size", "clients", "duration", "warm-up", "rate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}
