package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform 1us-10ms", func() time.Duration { return time.Microsecond + time.Duration(r.Int64N(int64(10*time.Millisecond))) }},
		{"lognormal around 500us", func() time.Duration {
			return time.Duration(math.Exp(r.NormFloat64()*1.5) * float64(500*time.Microsecond))
		}},
		{"sub-microsecond", func() time.Duration { return time.Duration(r.Int64N(2000)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Two histograms merged, as workers' are.
			h1, h2 := newHistogram(), newHistogram()
			var vals []time.Duration
			var sum float64
			for i := range 20_000 {
				v := min(tc.gen(), time.Minute)
				vals = append(vals, v)
				sum += float64(v)
				if i%2 == 0 {
					h1.Record(v)
				} else {
					h2.Record(v)
				}
			}
			h1.Merge(h2)
			slices.Sort(vals)
			if h1.Count() != int64(len(vals)) {
				t.Fatalf("count %d, want %d", h1.Count(), len(vals))
			}
			for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := max(int(math.Ceil(q*float64(len(vals)))), 1)
				want := vals[rank-1]
				got := h1.Quantile(q)
				if math.Abs(float64(got-want)) > 0.01*float64(want)+1 {
					t.Errorf("q%v = %v, want %v within 1%%", q, got, want)
				}
			}
			if h1.Max() != vals[len(vals)-1] {
				t.Errorf("max %v, want %v", h1.Max(), vals[len(vals)-1])
			}
			if want := time.Duration(math.Round(sum / float64(len(vals)))); h1.Mean() != want {
				t.Errorf("mean %v, want %v", h1.Mean(), want)
			}
		})
	}
}

func TestHistogramEdges(t *testing.T) {
	h := newHistogram()
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Error("empty histogram is not all zero")
	}
	h.Record(-time.Second)
	h.Record(2 * time.Minute) // beyond the range: clamped in the buckets
	if h.Count() != 2 || h.Max() != 2*time.Minute {
		t.Errorf("count %d max %v, want 2 and 2m", h.Count(), h.Max())
	}
	if got := h.Quantile(1); got < 59*time.Second {
		t.Errorf("q1 = %v, want about the 60s cap", got)
	}
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("q0.5 = %v, want 0", got)
	}
}

func TestHistogramRecordAllocs(t *testing.T) {
	h := newHistogram()
	h.Record(time.Millisecond)
	if a := testing.AllocsPerRun(1000, func() { h.Record(time.Millisecond + 7*time.Microsecond) }); a != 0 {
		t.Errorf("%v allocations per Record, want 0", a)
	}
}
