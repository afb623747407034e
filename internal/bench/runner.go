package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultRunConfig returns the flags' defaults: YCSB workload A over
// 100,000 zipfian keys of 100 bytes, 50 clients in closed loop for 30s
// after a 5s warm-up, loading the keys first.
func DefaultRunConfig() RunConfig {
	return RunConfig{
		Workload:     "A",
		Distribution: DistZipfian,
		Keys:         100_000,
		ValueSize:    100,
		Clients:      50,
		Duration:     30 * time.Second,
		Warmup:       5 * time.Second,
		Load:         true,
		Seed:         1,
	}
}

// Validate reports every problem with c, joined, or nil.
func (c RunConfig) Validate() error {
	var errs []error
	if _, ok := readProportions[c.Workload]; !ok {
		errs = append(errs, fmt.Errorf("bench: unknown workload %q (want A, B, C or W)", c.Workload))
	}
	if c.Distribution != DistUniform && c.Distribution != DistZipfian {
		errs = append(errs, fmt.Errorf("bench: unknown distribution %q (want %s or %s)", c.Distribution, DistUniform, DistZipfian))
	}
	if c.Keys <= 0 {
		errs = append(errs, fmt.Errorf("bench: keys %d must be positive", c.Keys))
	}
	if c.ValueSize < 0 {
		errs = append(errs, fmt.Errorf("bench: value size %d is negative", c.ValueSize))
	}
	if c.Clients <= 0 {
		errs = append(errs, fmt.Errorf("bench: clients %d must be positive", c.Clients))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("bench: duration %v must be positive", c.Duration))
	}
	if c.Warmup < 0 {
		errs = append(errs, fmt.Errorf("bench: warm-up %v is negative", c.Warmup))
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		errs = append(errs, fmt.Errorf("bench: rate %v must be zero (closed loop) or a positive number", c.Rate))
	}
	if c.Check && c.ValueSize < checkHeader {
		errs = append(errs, fmt.Errorf("bench: the read check needs values of at least %d bytes, not %d", checkHeader, c.ValueSize))
	}
	return errors.Join(errs...)
}

// ProgressFunc is told how a run goes, about 4 times a second, from one
// goroutine. While loading, total is 0, done is the time spent loading
// and ops the keys written so far (of RunConfig.Keys). After that, total
// is Warmup+Duration, done the time since the warm-up began (done <
// Warmup means warming up), and ops the successful operations since then.
// The last call of the run has done == total.
type ProgressFunc func(done, total time.Duration, ops int64)

// progressEvery is how often Run calls its ProgressFunc.
const progressEvery = 250 * time.Millisecond

// drainTimeout bounds how long operations that started in the measured
// phase may go on after it ends; those still running are cancelled and
// count as errors.
const drainTimeout = 10 * time.Second

// worker is one client's state. Only its goroutine touches it until the
// run ends, except done, which the progress reporter reads.
type worker struct {
	gen    *opGen
	check  *checker // nil: reads are not checked
	hist   [numOpKinds]*histogram
	errs   [numOpKinds]int64
	second []int64 // successful measured ops per second
	// checks counts the outcomes of the reads checked.
	checks [numCheckOutcomes]int64
	done   atomic.Int64
	_      [64]byte // keeps done of neighbouring workers on other cache lines
}

// Run loads t if cfg.Load, warms it up for cfg.Warmup, then measures it
// for cfg.Duration with cfg.Clients workers, each issuing operations back
// to back (closed loop) or, if cfg.Rate > 0, at scheduled times (open
// loop: latency counts from the scheduled time, so a target that falls
// behind shows it as latency instead of slowing the load). Failed
// operations are counted per kind, not timed. With cfg.Check, every read
// is checked against the run's writes (check.go). progress may be nil.
//
// If ctx ends, Run returns what was measured so far and ctx's error.
func Run(ctx context.Context, t Target, cfg RunConfig, progress ProgressFunc) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if progress == nil {
		progress = func(time.Duration, time.Duration, int64) {}
	}
	wl, err := newWorkload(cfg)
	if err != nil {
		return Result{}, err
	}
	var ck *checker
	if cfg.Check {
		if ck, err = newChecker(t, cfg.Keys); err != nil {
			return Result{}, err
		}
	}
	if cfg.Load {
		if err := load(ctx, t, wl, cfg, ck, progress); err != nil {
			return Result{}, err
		}
	}

	seconds := int(math.Ceil(cfg.Duration.Seconds()))
	workers := make([]*worker, cfg.Clients)
	for i := range workers {
		w := &worker{gen: wl.gen(cfg.Seed, i), check: ck, second: make([]int64, seconds)}
		for k := range w.hist {
			w.hist[k] = newHistogram()
		}
		workers[i] = w
	}

	start := time.Now()
	measure := start.Add(cfg.Warmup)
	end := measure.Add(cfg.Duration)
	opCtx, cancel := context.WithDeadline(ctx, end.Add(drainTimeout))
	defer cancel()
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() {
			if cfg.Rate > 0 {
				w.openLoop(opCtx, t, i, cfg.Clients, cfg.Rate, start, measure, end)
			} else {
				w.closedLoop(opCtx, t, measure, end)
			}
		})
	}
	near := watchNear(t, cfg.Warmup)
	total := cfg.Warmup + cfg.Duration
	reportUntilDone(&wg, progressEvery, func() {
		var ops int64
		for _, w := range workers {
			ops += w.done.Load()
		}
		// done == total is kept for the last call, after the drain.
		progress(min(time.Since(start), total-time.Millisecond), total, ops)
	})
	var ops int64
	for _, w := range workers {
		ops += w.done.Load()
	}
	progress(total, total, ops)
	res := collect(cfg, t.Name(), workers)
	res.Near = near()
	res.HeapBytes = liveHeap()
	if ck != nil {
		res.Check = ck.stats(workers)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench: run stopped: %w", err)
	}
	return res, nil
}

// reportUntilDone calls report every period until wg is done.
func reportUntilDone(wg *sync.WaitGroup, period time.Duration, report func()) {
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			return
		case <-tick.C:
			report()
		}
	}
}

// do runs one operation on key idx, begun at began, and returns when it
// completed.
func (w *worker) do(ctx context.Context, t Target, kind opKind, idx int, began time.Time) (time.Time, error) {
	key := w.gen.w.keys.key(idx)
	var err error
	switch {
	case w.check == nil && kind == opRead:
		err = t.Get(ctx, key)
	case w.check == nil:
		err = t.Put(ctx, key, w.gen.nextValue())
	case kind == opRead:
		var out checkOutcome
		if out, err = w.check.get(ctx, t.(versionedTarget), key, idx, began); err == nil {
			w.checks[out]++
		}
	default:
		err = w.check.put(ctx, t.(versionedTarget), key, idx, w.gen.nextValue())
	}
	return time.Now(), err
}

// account records an operation scheduled (or started) at from that
// completed at done.
func (w *worker) account(kind opKind, from, done, measure time.Time, err error) {
	if err == nil {
		w.done.Add(1)
	}
	if from.Before(measure) {
		return // warming up
	}
	if err != nil {
		w.errs[kind]++
		return
	}
	w.hist[kind].Record(done.Sub(from))
	s := min(int(done.Sub(measure)/time.Second), len(w.second)-1)
	w.second[s]++
}

// closedLoop issues operations back to back until end.
func (w *worker) closedLoop(ctx context.Context, t Target, measure, end time.Time) {
	for ctx.Err() == nil {
		began := time.Now()
		if !began.Before(end) {
			return
		}
		kind, idx := w.gen.next()
		done, err := w.do(ctx, t, kind, idx, began)
		w.account(kind, began, done, measure, err)
	}
}

// openLoop issues the operations scheduled for worker id of n: slot s is
// due at start + s/rate seconds, and the worker takes slots id, id+n, id+2n,
// ... It waits for a slot that is not due yet; one that is overdue (the
// target is slower than the rate) goes at once, and its latency, counted
// from when it was due, includes the wait. Slots still unstarted at end
// are dropped.
func (w *worker) openLoop(ctx context.Context, t Target, id, n int, rate float64, start, measure, end time.Time) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for slot := int64(id); ctx.Err() == nil; slot += int64(n) {
		due := start.Add(time.Duration(float64(slot) * float64(time.Second) / rate))
		if !due.Before(end) {
			return
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		if !time.Now().Before(end) {
			return
		}
		kind, idx := w.gen.next()
		done, err := w.do(ctx, t, kind, idx, time.Now())
		w.account(kind, due, done, measure, err)
	}
}

// collect merges the workers' measurements into a Result.
func collect(cfg RunConfig, name string, workers []*worker) Result {
	res := Result{
		Target:       name,
		Workload:     cfg.Workload,
		Distribution: cfg.Distribution,
		Clients:      cfg.Clients,
		Rate:         cfg.Rate,
		Duration:     cfg.Duration.Seconds(),
		Ops:          make(map[string]OpStats),
		Timeline:     make([]float64, int(math.Ceil(cfg.Duration.Seconds()))),
	}
	all := newHistogram()
	var allErrs int64
	for k := range numOpKinds {
		h := newHistogram()
		var errs int64
		for _, w := range workers {
			h.Merge(w.hist[k])
			errs += w.errs[k]
		}
		all.Merge(h)
		allErrs += errs
		if h.Count() > 0 || errs > 0 {
			res.Ops[k.String()] = opStats(h, errs)
		}
	}
	res.Ops["all"] = opStats(all, allErrs)
	res.Throughput = float64(all.Count()) / cfg.Duration.Seconds()
	for _, w := range workers {
		for s, c := range w.second {
			res.Timeline[s] += float64(c)
		}
	}
	// A last, partial second is scaled to a rate.
	if frac := cfg.Duration.Seconds() - math.Floor(cfg.Duration.Seconds()); frac > 0 {
		res.Timeline[len(res.Timeline)-1] /= frac
	}
	return res
}

func opStats(h *histogram, errs int64) OpStats {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return OpStats{
		Count:  h.Count(),
		Errors: errs,
		P50:    us(h.Quantile(0.50)),
		P90:    us(h.Quantile(0.90)),
		P99:    us(h.Quantile(0.99)),
		P999:   us(h.Quantile(0.999)),
		Max:    us(h.Max()),
		Mean:   us(h.Mean()),
	}
}

// load writes every key once with cfg.Clients workers, each taking the
// next key from a shared counter, through ck if not nil. It fails if any
// write fails.
func load(ctx context.Context, t Target, wl *workload, cfg RunConfig, ck *checker, progress ProgressFunc) error {
	var next, done, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for i := range min(cfg.Clients, cfg.Keys) {
		g := wl.gen(cfg.Seed, i)
		wg.Go(func() {
			for ctx.Err() == nil {
				k := next.Add(1) - 1
				if k >= int64(cfg.Keys) {
					return
				}
				key := wl.keys.key(int(k))
				var err error
				if ck != nil {
					err = ck.put(ctx, t.(versionedTarget), key, int(k), g.nextValue())
				} else {
					err = t.Put(ctx, key, g.nextValue())
				}
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				done.Add(1)
			}
		})
	}
	reportUntilDone(&wg, progressEvery, func() { progress(time.Since(start), 0, done.Load()) })
	progress(time.Since(start), 0, done.Load())
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bench: load stopped: %w", err)
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("bench: load: %d of %d writes failed, the first with: %w", n, cfg.Keys, firstErr)
	}
	return nil
}
