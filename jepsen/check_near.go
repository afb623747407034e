package jepsen

import (
	"slices"

	"github.com/elcache/elcache/client"
)

// nearServed reports whether a client's near cache answered op.
func nearServed(op *Op) bool {
	return op.Meta != nil && op.Meta.ServedBy == client.NearCacheServedBy
}

// CheckNearCache checks that a near-cache run (Profile.NearCache) tested
// the near cache at all: each of workloads, those whose processes read
// through one, must have reads it served ("near-cache-unused" if not),
// and it must serve no LINEARIZABLE or LEASE read ("near-cache-strong-read").
// Whether what it served kept the level's promise is for the bounded,
// session and set checkers to say, which treat its answers as any other.
//
// The figures count, for each workload, its OK reads ("<workload>_reads")
// and those the near cache served ("<workload>_near_hits"), the same over
// all of them ("near_hits", "near_hit_share"), and the clients' own
// counters at the end of the workload ("client_hits", "client_misses",
// "client_invalidations", "client_reconnects").
func CheckNearCache(ops []Op, workloads []string, counters client.NearCounters) Result {
	res := Result{Checker: "near-cache", Figures: make(map[string]float64)}
	reads, hits := make(map[string]int), make(map[string]int)
	var list anomalyList
	for i := range ops {
		op := &ops[i]
		if op.F != FGet || op.Outcome != OK || op.Final || !slices.Contains(workloads, op.Workload) {
			continue
		}
		res.Ops++
		reads[op.Workload]++
		if !nearServed(op) {
			continue
		}
		hits[op.Workload]++
		if op.Level == LevelLinearizable || op.Level == LevelLease {
			list.add("near-cache-strong-read", op.Key, op.Start,
				"%s was served by the near cache, which never serves %s reads", describeOp(*op), op.Level)
		}
	}
	total := 0
	for _, wl := range workloads {
		res.Figures[wl+"_reads"] = float64(reads[wl])
		res.Figures[wl+"_near_hits"] = float64(hits[wl])
		total += hits[wl]
		if hits[wl] == 0 {
			list.add("near-cache-unused", "", 0,
				"none of the %d reads of the %s workload was served by a near cache: the run did not test it", reads[wl], wl)
		}
	}
	res.Figures["near_hits"] = float64(total)
	if res.Ops > 0 {
		res.Figures["near_hit_share"] = float64(total) / float64(res.Ops)
	}
	res.Figures["client_hits"] = float64(counters.Hits)
	res.Figures["client_misses"] = float64(counters.Misses)
	res.Figures["client_invalidations"] = float64(counters.Invalidations)
	res.Figures["client_reconnects"] = float64(counters.Reconnects)
	list.finish(&res)
	return res
}
