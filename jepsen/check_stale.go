package jepsen

import (
	"slices"
	"strings"
	"time"
)

// CheckRealtime checks, in linear time, the part of linearizability that
// real-time order alone decides: an OK get at one of levels that started
// after a write to its key was acknowledged must return that write's
// version or a newer one (versions only grow). A read that does not is a
// "stale-read". It finds the classic anomalies (a deposed leader serving
// reads, a lease read without a valid lease, a refill storing an old row)
// even in histories the full search cannot finish; CheckLinearizable
// remains the complete check.
func CheckRealtime(ops []Op, levels []string) Result {
	res := Result{Checker: "realtime-reads(" + strings.Join(levels, ",") + ")", Figures: make(map[string]float64)}
	writes := indexWrites(ops)
	var list anomalyList
	for i := range ops {
		op := &ops[i]
		if op.F != FGet || op.Outcome != OK || !slices.Contains(levels, op.Level) {
			continue
		}
		res.Ops++
		if w := writes[op.Key].newestBefore(op.Start); w != nil && op.Version < w.Version {
			served := ""
			if op.Meta != nil {
				served = " (served by " + op.Meta.ServedBy + " as " + op.Meta.Role + ")"
			}
			list.add("stale-read", op.Key, op.Start, "%s%s missed %s, acknowledged %v before the read began",
				describeOp(*op), served, describeOp(*w), time.Duration(op.Start-w.End))
		}
	}
	res.Figures["reads"] = float64(res.Ops)
	list.finish(&res)
	return res
}
