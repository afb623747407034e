package jepsen

import "sort"

// element is one element of the set workload: the adds of its key and
// what the reads saw.
type element struct {
	adds []*Op
	// outcome is the best outcome among the adds: OK if one was
	// acknowledged, else Unknown if one may have taken effect, else Fail.
	outcome Outcome
	// acked is the first acknowledged add (outcome OK).
	acked *Op
	// final is the last OK final read.
	final *Op
	// firstSeen is the first OK non-final read that found it (earliest
	// End); since is when the element had to be visible to linearizable
	// reads: its acknowledgement, or the end of an earlier linearizable
	// or lease read that found it.
	firstSeen *Op
	since     int64
	sinceBy   *Op
	// unexpected: a read found the element though every add failed.
	unexpected bool
}

// visibleBy records that op (an acknowledged add, or a read that found
// the element) made it visible to linearizable reads from op.End.
func (e *element) visibleBy(op *Op) {
	if e.sinceBy == nil || op.End < e.since {
		e.since, e.sinceBy = op.End, op
	}
}

func (e *element) wrote(value string) bool {
	for _, a := range e.adds {
		if a.Value == value {
			return true
		}
	}
	return false
}

// CheckSet checks the set workload: every add writes an element key once
// and gets read it back. After healing, the final reads (Final) must find
// every acknowledged add and no failed one; adds of unknown outcome may
// go either way. No read may find an element every add of which failed,
// or a value no add of it wrote. Before that, a get at linearizable or lease that began
// after an element was acknowledged (or after another such read found
// it) must find it. Every element needs a final read. The figures give
// how long acknowledged adds took to become visible to the first
// non-final read that found them, at any level, and the acknowledged and
// lost adds by durability.
func CheckSet(ops []Op) Result {
	res := Result{Checker: "set", Figures: make(map[string]float64)}
	elements := make(map[string]*element)
	elem := func(k string) *element {
		e := elements[k]
		if e == nil {
			e = &element{outcome: Fail}
			elements[k] = e
		}
		return e
	}
	var gets []*Op
	for i := range ops {
		op := &ops[i]
		if op.Workload != "set" {
			continue
		}
		switch {
		case op.F == FAdd:
			res.Ops++
			e := elem(op.Key)
			e.adds = append(e.adds, op)
			switch op.Outcome {
			case OK:
				e.outcome = OK
				if e.acked == nil || op.End < e.acked.End {
					e.acked = op
				}
				e.visibleBy(op)
			case Unknown:
				if e.outcome == Fail {
					e.outcome = Unknown
				}
			}
		case op.F == FGet && op.Outcome == OK:
			res.Ops++
			gets = append(gets, op)
		}
	}

	var list anomalyList
	for _, op := range gets {
		e := elements[op.Key]
		if e == nil {
			if op.Found {
				list.add("unexpected-element", op.Key, op.Start,
					"%s found an element that no operation added", describeOp(*op))
			}
			continue
		}
		if op.Found && e.outcome == Fail && !e.unexpected {
			e.unexpected = true
			list.add("unexpected-element", op.Key, op.Start,
				"%s found the element, but every add of it failed: %s", describeOp(*op), describeOp(*e.adds[0]))
		}
		if op.Found && !e.wrote(op.Value) && !e.unexpected {
			e.unexpected = true
			list.add("unexpected-element", op.Key, op.Start,
				"%s returned a value that no add of the element wrote: %s", describeOp(*op), describeOp(*e.adds[0]))
		}
		if op.Final {
			if e.final == nil || op.End > e.final.End {
				e.final = op
			}
			continue
		}
		if !op.Found {
			continue
		}
		if e.firstSeen == nil || op.End < e.firstSeen.End {
			e.firstSeen = op
		}
		if op.Level == LevelLinearizable || op.Level == LevelLease {
			e.visibleBy(op)
		}
	}

	for _, op := range gets {
		e := elements[op.Key]
		if e == nil || op.Final || op.Found || (op.Level != LevelLinearizable && op.Level != LevelLease) {
			continue
		}
		if e.sinceBy != nil && op.Start > e.since {
			why := "acknowledged by"
			if e.sinceBy.F == FGet {
				why = "found by"
			}
			list.add("stale-element-read", op.Key, op.Start,
				"%s did not find the element, %s %s", describeOp(*op), why, describeOp(*e.sinceBy))
		}
	}

	keys := make([]string, 0, len(elements))
	for k := range elements {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var (
		acked, lost, unknownPresent, unknownAbsent, unseen int
		latencies                                          []int64
		ackedBy, lostBy                                    = map[string]int{}, map[string]int{}
	)
	for _, k := range keys {
		e := elements[k]
		if e.outcome == OK {
			acked++
			ackedBy[e.acked.Durability]++
			if e.firstSeen != nil {
				latencies = append(latencies, max(e.firstSeen.End-e.acked.End, 0))
			} else {
				unseen++
			}
		}
		f := e.final
		if f == nil {
			list.add("unchecked-element", k, e.adds[0].Start,
				"no final read of the element: %s", describeOp(*e.adds[0]))
			continue
		}
		if f.Found && !e.wrote(f.Value) {
			continue // an unexpected element, reported above
		}
		switch {
		case e.outcome == OK && !f.Found:
			lost++
			lostBy[e.acked.Durability]++
			list.add("lost-element", k, f.Start,
				"%s did not find the element, but this add of it was acknowledged: %s", describeOp(*f), describeOp(*e.acked))
		case e.outcome == Unknown && f.Found:
			unknownPresent++
		case e.outcome == Unknown:
			unknownAbsent++
		}
	}
	res.Figures["adds_total"] = float64(len(elements))
	res.Figures["adds_ok"] = float64(acked)
	res.Figures["adds_lost"] = float64(lost)
	for _, d := range []string{DurabilitySync, DurabilityReplicated} {
		res.Figures["adds_ok_"+d] = float64(ackedBy[d])
		res.Figures["adds_lost_"+d] = float64(lostBy[d])
	}
	res.Figures["unknown_adds_present"] = float64(unknownPresent)
	res.Figures["unknown_adds_absent"] = float64(unknownAbsent)
	res.Figures["visibility_unseen"] = float64(unseen)
	q := quantilesMs(latencies, 0.5, 0.95, 0.99, 1)
	res.Figures["visibility_p50_ms"] = q[0]
	res.Figures["visibility_p95_ms"] = q[1]
	res.Figures["visibility_p99_ms"] = q[2]
	res.Figures["visibility_max_ms"] = q[3]
	list.finish(&res)
	return res
}
