package jepsen

import "sort"

// CheckSession checks the session guarantees of every process that reads
// at level session (a process is a session). Walking its operations in
// the order it made them, every OK get at level session must return at
// least the highest version of the key that the process wrote before
// (read your writes: an OK put or add, or a cas that swapped) and at
// least the highest version it read before (monotonic reads). Reads at
// linearizable, lease and session raise that floor; eventual and bounded
// reads do not, since they may go back.
func CheckSession(ops []Op) Result {
	res := Result{Checker: "session", Figures: make(map[string]float64)}
	byProcess := make(map[int][]*Op)
	sessions := make(map[int]bool)
	for i := range ops {
		op := &ops[i]
		byProcess[op.Process] = append(byProcess[op.Process], op)
		if op.F == FGet && op.Outcome == OK && op.Level == LevelSession {
			sessions[op.Process] = true
		}
	}
	var list anomalyList
	reads := 0
	for p := range sessions {
		pops := byProcess[p]
		res.Ops += len(pops)
		sort.SliceStable(pops, func(i, j int) bool { return pops[i].Start < pops[j].Start })
		wrote := make(map[string]*Op) // the write of highest version
		read := make(map[string]*Op)  // the read of highest version
		for _, op := range pops {
			if ackedWrite(op) {
				if w := wrote[op.Key]; w == nil || op.Version > w.Version {
					wrote[op.Key] = op
				}
				continue
			}
			if op.F != FGet || op.Outcome != OK {
				continue
			}
			if op.Level == LevelSession {
				reads++
				if w := wrote[op.Key]; w != nil && op.Version < w.Version {
					list.add("session-read-your-writes", op.Key, op.Start,
						"%s is older than the process's own earlier write: %s",
						describeOp(*op), describeOp(*w))
				}
				if r := read[op.Key]; r != nil && op.Version < r.Version {
					list.add("session-monotonic-reads", op.Key, op.Start,
						"%s is older than what the process read before: %s",
						describeOp(*op), describeOp(*r))
				}
			}
			switch op.Level {
			case LevelLinearizable, LevelLease, LevelSession:
				if r := read[op.Key]; r == nil || op.Version > r.Version {
					read[op.Key] = op
				}
			}
		}
	}
	res.Figures["reads"] = float64(reads)
	res.Figures["sessions"] = float64(len(sessions))
	list.finish(&res)
	return res
}
