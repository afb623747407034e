package client_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runLoad makes b.N calls of op, spread over callers goroutines that each
// take the next index i (0 to b.N-1) from a shared counter, so the calls
// are shared out by how fast each caller goes. It reports the throughput
// over the whole run (ops/s) and the median and 99th percentile latency of
// one call in microseconds (p50-us, p99-us). The first error from op fails
// the benchmark and stops every caller; ctx is cancelled then, so errors
// that follow from the cancellation are not reported.
//
// Setup done before runLoad is not timed: runLoad resets the timer.
func runLoad(b *testing.B, callers int, op func(ctx context.Context, i int) error) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Preallocated so that recording a latency neither allocates nor
	// takes a lock: each index is written by the one caller that took it.
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				err := op(ctx, int(i-1))
				lat[i-1] = time.Since(t0)
				if err != nil {
					if ctx.Err() == nil {
						b.Errorf("op %d: %v", i-1, err)
					}
					cancel()
					next.Store(int64(b.N)) // the others stop at their next call
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if b.Failed() {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(micros(percentile(lat, 50)), "p50-us")
	b.ReportMetric(micros(percentile(lat, 99)), "p99-us")
}

// percentile returns the p-th percentile of sorted by the nearest-rank
// method: the smallest value that at least p% of the values are at or
// below.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (len(sorted)*p + 99) / 100 // ceil(n*p/100), 1-based
	return sorted[max(rank, 1)-1]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
