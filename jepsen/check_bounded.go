package jepsen

import (
	"sort"
	"time"
)

// ackedWrite reports whether op is a write that took effect and produced
// op.Version: an OK put or add, or an OK cas that swapped.
func ackedWrite(op *Op) bool {
	if op.Outcome != OK || op.Version == 0 {
		return false
	}
	switch op.F {
	case FPut, FAdd:
		return true
	case FCAS:
		return op.Swapped
	}
	return false
}

// keyWrites indexes a key's acknowledged writes by the time they were
// acknowledged and by version.
type keyWrites struct {
	// byEnd is sorted by End; newest[i] is the write of highest version
	// among byEnd[:i+1].
	byEnd  []*Op
	newest []*Op
	// byVersion is sorted by Version; firstEnd[i] is the earliest End
	// among byVersion[i:].
	byVersion []*Op
	firstEnd  []int64
}

func indexWrites(ops []Op) map[string]*keyWrites {
	idx := make(map[string]*keyWrites)
	for i := range ops {
		op := &ops[i]
		if !ackedWrite(op) {
			continue
		}
		kw := idx[op.Key]
		if kw == nil {
			kw = &keyWrites{}
			idx[op.Key] = kw
		}
		kw.byEnd = append(kw.byEnd, op)
	}
	for _, kw := range idx {
		sort.Slice(kw.byEnd, func(i, j int) bool { return kw.byEnd[i].End < kw.byEnd[j].End })
		kw.newest = make([]*Op, len(kw.byEnd))
		for i, op := range kw.byEnd {
			kw.newest[i] = op
			if i > 0 && kw.newest[i-1].Version > op.Version {
				kw.newest[i] = kw.newest[i-1]
			}
		}
		kw.byVersion = append([]*Op(nil), kw.byEnd...)
		sort.Slice(kw.byVersion, func(i, j int) bool { return kw.byVersion[i].Version < kw.byVersion[j].Version })
		kw.firstEnd = make([]int64, len(kw.byVersion))
		for i := len(kw.byVersion) - 1; i >= 0; i-- {
			kw.firstEnd[i] = kw.byVersion[i].End
			if i+1 < len(kw.byVersion) {
				kw.firstEnd[i] = min(kw.firstEnd[i], kw.firstEnd[i+1])
			}
		}
	}
	return idx
}

// newestBefore returns the write of highest version among those
// acknowledged strictly before t, or nil.
func (kw *keyWrites) newestBefore(t int64) *Op {
	if kw == nil {
		return nil
	}
	i := sort.Search(len(kw.byEnd), func(i int) bool { return kw.byEnd[i].End >= t })
	if i == 0 {
		return nil
	}
	return kw.newest[i-1]
}

// firstAckAbove returns the earliest time a write of version above v was
// acknowledged, and false if there is none.
func (kw *keyWrites) firstAckAbove(v uint64) (int64, bool) {
	if kw == nil {
		return 0, false
	}
	i := sort.Search(len(kw.byVersion), func(i int) bool { return kw.byVersion[i].Version > v })
	if i == len(kw.byVersion) {
		return 0, false
	}
	return kw.firstEnd[i], true
}

// CheckBounded checks every OK get at level bounded, with bound d, that
// started at s: it must reflect every write to its key acknowledged
// before s-d (its version is at least theirs), and the staleness its
// proof claims must be at most d. Its figures give the staleness
// observed: for each read, how long before it started the first write
// newer than what it returned was acknowledged (0 if none was).
func CheckBounded(ops []Op) Result {
	res := Result{Checker: "bounded-staleness", Figures: make(map[string]float64)}
	writes := indexWrites(ops)
	var list anomalyList
	var lags []int64
	for i := range ops {
		op := &ops[i]
		if op.F != FGet || op.Outcome != OK || op.Level != LevelBounded {
			continue
		}
		res.Ops++
		kw := writes[op.Key]
		bound := op.MaxStaleness
		if w := kw.newestBefore(op.Start - bound); w != nil && op.Version < w.Version {
			list.add("bounded-stale-read", op.Key, op.Start,
				"%s missed %s, acknowledged %v before the read began, more than its bound of %v",
				describeOp(*op), describeOp(*w), time.Duration(op.Start-w.End), time.Duration(bound))
		}
		if op.Meta != nil && op.Meta.Staleness > bound {
			list.add("bounded-proof-exceeds-bound", op.Key, op.Start,
				"%s: the server's proof claims staleness %v, more than the bound of %v (served by %s as %s)",
				describeOp(*op), time.Duration(op.Meta.Staleness), time.Duration(bound), op.Meta.ServedBy, op.Meta.Role)
		}
		var lag int64
		if t, ok := kw.firstAckAbove(op.Version); ok {
			lag = max(op.Start-t, 0)
		}
		lags = append(lags, lag)
	}
	res.Figures["reads"] = float64(res.Ops)
	q := quantilesMs(lags, 0.5, 0.99, 1)
	res.Figures["staleness_p50_ms"] = q[0]
	res.Figures["staleness_p99_ms"] = q[1]
	res.Figures["staleness_max_ms"] = q[2]
	list.finish(&res)
	return res
}
