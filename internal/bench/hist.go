package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout, in the manner of HdrHistogram with 3 significant
// digits: values are nanoseconds; row 0 counts 0..2047ns exactly, and row
// k >= 1 splits [1024<<k, 2048<<k) into 1024 buckets of width 1<<k, so a
// bucket is never wider than 1/1024 of its values (0.1%). Rows are
// allocated when first used: a run whose latencies span a few powers of
// two holds a few rows.
const (
	histSubBits  = 11
	histSubCount = 1 << histSubBits // row 0 length
	histHalf     = histSubCount / 2 // length of the other rows
	// histMaxValue is the largest value recorded as itself; longer ones
	// count as histMaxValue (but Max reports them exactly).
	histMaxValue = int64(60 * time.Second)
)

// histRows is how many rows reach histMaxValue.
var histRows = bits.Len64(uint64(histMaxValue)) - histSubBits + 1

// histogram records latencies. It is not safe for concurrent use: each
// worker records into its own, and they are merged at the end.
type histogram struct {
	rows  [][]int64
	count int64
	sum   float64 // ns, for the mean
	max   int64
	min   int64
}

func newHistogram() *histogram {
	return &histogram{rows: make([][]int64, histRows)}
}

// index returns the row and bucket of v, 0 <= v <= histMaxValue.
func histIndex(v int64) (row, sub int) {
	if v < histSubCount {
		return 0, int(v)
	}
	row = bits.Len64(uint64(v)) - histSubBits
	return row, int(v>>row) - histHalf
}

// histValue returns the midpoint of the values the bucket counts.
func histValue(row, sub int) int64 {
	if row == 0 {
		return int64(sub)
	}
	lo := int64(sub+histHalf) << row
	return lo + (int64(1)<<row)/2
}

// Record counts one latency. Negative durations count as zero.
func (h *histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.count++
	h.sum += float64(v)
	row, sub := histIndex(min(v, histMaxValue))
	r := h.rows[row]
	if r == nil {
		n := histHalf
		if row == 0 {
			n = histSubCount
		}
		r = make([]int64, n)
		h.rows[row] = r
	}
	r[sub]++
}

// Merge adds o's counts to h.
func (h *histogram) Merge(o *histogram) {
	if o.count == 0 {
		return
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.count += o.count
	h.sum += o.sum
	for i, r := range o.rows {
		if r == nil {
			continue
		}
		if h.rows[i] == nil {
			h.rows[i] = make([]int64, len(r))
		}
		for j, c := range r {
			h.rows[i][j] += c
		}
	}
}

// Count returns how many values were recorded.
func (h *histogram) Count() int64 { return h.count }

// Max returns the largest value recorded, exactly.
func (h *histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the mean of the values recorded, exactly (up to float64
// rounding).
func (h *histogram) Mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.count)))
}

// Quantile returns the value at quantile q (0 <= q <= 1): the smallest
// recorded value that at least q of the values are at or below, to the
// histogram's precision, and never beyond the recorded min and max.
func (h *histogram) Quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.count)))
	rank = min(max(rank, 1), h.count)
	var seen int64
	for row, r := range h.rows {
		for sub, c := range r {
			if c == 0 {
				continue
			}
			seen += c
			if seen >= rank {
				v := min(max(histValue(row, sub), h.min), h.max)
				return time.Duration(v)
			}
		}
	}
	return time.Duration(h.max)
}
