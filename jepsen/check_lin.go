package jepsen

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// registerInput is what a register operation asks for: a get of key, a
// put of value, or a cas of key from expect ("" = absent) to value.
type registerInput struct {
	key    string
	f      string
	value  string
	expect string
}

// registerOutput is what a register operation returned. Unknown writes
// have unknown set and nothing else.
type registerOutput struct {
	unknown bool
	found   bool
	value   string
	version uint64
	swapped bool
}

// RegisterModel is a register per key for porcupine, initially absent.
// Its state is the key's value ("" = absent). A get must return the
// state (or not find the key when it is absent); a put sets it; a cas
// that swapped needs the state to equal its expected value and sets it, a
// cas that did not swap needs the state to differ. A write of unknown
// outcome is always legal: a put sets the state, a cas sets it only if
// the state is the expected value. CheckLinearizable gives such writes a
// return time after every other operation, so the search may also place
// them last, which is the same as never for the operations checked (or,
// once an OK operation saw their value, that operation's return).
//
// Operations carry *Op metadata; partitions are keys.
var RegisterModel = porcupine.Model{
	Partition: partitionByKey,
	Init:      func() any { return "" },
	Step:      registerStep,
	Hash: func(state any) uint64 {
		// FNV-1a: equal states have equal hashes.
		h := uint64(14695981039346656037)
		s := state.(string)
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		return h
	},
	DescribeOperation: describeRegisterOp,
	DescribeState: func(state any) string {
		if state.(string) == "" {
			return "absent"
		}
		return state.(string)
	},
	DescribeOperationMetadata: func(info any) string {
		if op, ok := info.(*Op); ok {
			return describeOp(*op)
		}
		if info == nil {
			return ""
		}
		return fmt.Sprint(info)
	},
}

// partitionByKey splits a register history by key, keys in the order of
// their first operation.
func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	index := make(map[string]int)
	var out [][]porcupine.Operation
	for _, op := range history {
		k := op.Input.(registerInput).key
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], op)
	}
	return out
}

func registerStep(state, input, output any) (bool, any) {
	s := state.(string)
	in := input.(registerInput)
	out := output.(registerOutput)
	switch in.f {
	case FGet:
		if out.found {
			return out.value == s, s
		}
		return s == "", s
	case FCAS:
		switch {
		case out.unknown:
			if s == in.expect {
				return true, in.value
			}
			return true, s
		case out.swapped:
			return s == in.expect, in.value
		default:
			return s != in.expect, s
		}
	default: // FPut, FAdd
		return true, in.value
	}
}

func describeRegisterOp(input, output any) string {
	in := input.(registerInput)
	out := output.(registerOutput)
	switch in.f {
	case FGet:
		if !out.found {
			return fmt.Sprintf("get %s → absent", in.key)
		}
		return fmt.Sprintf("get %s → %s (v%d)", in.key, out.value, out.version)
	case FCAS:
		expect := in.expect
		if expect == "" {
			expect = "absent"
		}
		switch {
		case out.unknown:
			return fmt.Sprintf("cas %s %s→%s (outcome unknown)", in.key, expect, in.value)
		case out.swapped:
			return fmt.Sprintf("cas %s %s→%s swapped (v%d)", in.key, expect, in.value, out.version)
		default:
			return fmt.Sprintf("cas %s %s→%s not swapped", in.key, expect, in.value)
		}
	default:
		if out.unknown {
			return fmt.Sprintf("put %s=%s (outcome unknown)", in.key, in.value)
		}
		return fmt.Sprintf("put %s=%s (v%d)", in.key, in.value, out.version)
	}
}

// linHistory is the porcupine history CheckLinearizable checks, with
// counts for the figures.
type linHistory struct {
	ops            []porcupine.Operation
	keys           int
	reads          int
	writes         int
	unknownWrites  int
	unknownDropped int
}

// linKey is what linearizabilityHistory gathers about a key.
type linKey struct {
	reads, writes []*Op
	// observed: an OK get at the levels or an OK cas read the key.
	observed bool
	// refs are the values read or expected; unswapped: an OK cas did
	// not swap.
	refs      map[string]bool
	unswapped bool
	// seenBy is when a value was first known to be written: the
	// earliest return of an OK get that found it or an OK cas that
	// swapped from it. writers counts the writes of a value.
	seenBy  map[string]int64
	writers map[string]int
}

// seen records that value was written before t.
func (ko *linKey) seen(value string, t int64) {
	if old, ok := ko.seenBy[value]; !ok || t < old {
		ko.seenBy[value] = t
	}
}

// linearizabilityHistory turns ops into a register history: the OK gets
// at levels, the OK writes and the writes of unknown outcome, for every
// key with an OK get at levels or an OK cas (both observe the register).
//
// A write of unknown outcome may take effect any time after its start, or
// never, so it returns after every other operation, on a row of its own
// in the visualization (it overlaps its process's later operations).
// Values are unique, so when an OK get returned its value, or an OK cas
// that swapped expected it, it took effect before the first of those
// returned: that is its return instead, which narrows the search. One is
// left out when nothing checked could have observed it: no get returned
// its value, no cas expected it, and no OK cas on its key failed to swap.
// Leaving a write out is the choice "it never took effect", always
// allowed; when nothing observes it, any linearization that uses it
// still works without it (a cas of unknown outcome that it kept from
// swapping can be placed last instead), so the verdict is the same, and
// the search is smaller.
func linearizabilityHistory(ops []Op, levels []string) linHistory {
	byKey := make(map[string]*linKey)
	get := func(k string) *linKey {
		ko := byKey[k]
		if ko == nil {
			ko = &linKey{refs: make(map[string]bool), seenBy: make(map[string]int64), writers: make(map[string]int)}
			byKey[k] = ko
		}
		return ko
	}
	var horizon int64
	maxProcess := 0
	for i := range ops {
		op := &ops[i]
		switch op.F {
		case FGet:
			if op.Outcome != OK || !slices.Contains(levels, op.Level) {
				continue
			}
			ko := get(op.Key)
			ko.reads = append(ko.reads, op)
			ko.observed = true
			if op.Found {
				ko.refs[op.Value] = true
				ko.seen(op.Value, op.End)
			}
		case FPut, FAdd, FCAS:
			if op.Outcome != OK && op.Outcome != Unknown {
				continue
			}
			ko := get(op.Key)
			ko.writes = append(ko.writes, op)
			ko.writers[op.Value]++
			if op.F == FCAS {
				ko.refs[op.Expect] = true
				if op.Outcome == OK {
					ko.observed = true
					ko.unswapped = ko.unswapped || !op.Swapped
					if op.Swapped {
						ko.seen(op.Expect, op.End)
					}
				}
			}
		default:
			continue
		}
		horizon = max(horizon, op.Start, op.End)
		maxProcess = max(maxProcess, op.Process)
	}
	horizon++

	keys := make([]string, 0, len(byKey))
	for k, ko := range byKey {
		if ko.observed {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var h linHistory
	h.keys = len(keys)
	for _, k := range keys {
		ko := byKey[k]
		var kops []porcupine.Operation
		for _, op := range ko.reads {
			h.reads++
			kops = append(kops, porcupine.Operation{
				ClientId: op.Process,
				Input:    registerInput{key: k, f: FGet},
				Call:     op.Start,
				Output:   registerOutput{found: op.Found, value: op.Value, version: op.Version},
				Return:   op.End,
				Metadata: op,
			})
		}
		open := 0
		for _, op := range ko.writes {
			in := registerInput{key: k, f: op.F, value: op.Value, expect: op.Expect}
			if op.F == FAdd {
				in.f = FPut
			}
			if op.Outcome == OK {
				h.writes++
				kops = append(kops, porcupine.Operation{
					ClientId: op.Process,
					Input:    in,
					Call:     op.Start,
					Output:   registerOutput{swapped: op.Swapped, version: op.Version},
					Return:   op.End,
					Metadata: op,
				})
				continue
			}
			if !ko.refs[op.Value] && !ko.unswapped {
				h.unknownDropped++
				continue
			}
			h.writes++
			h.unknownWrites++
			open++
			ret := horizon
			if t, ok := ko.seenBy[op.Value]; ok && ko.writers[op.Value] == 1 {
				ret = max(t, op.Start)
			}
			kops = append(kops, porcupine.Operation{
				ClientId: maxProcess + open,
				Input:    in,
				Call:     op.Start,
				Output:   registerOutput{unknown: true},
				Return:   ret,
				Metadata: op,
			})
		}
		sort.SliceStable(kops, func(i, j int) bool { return kops[i].Call < kops[j].Call })
		h.ops = append(h.ops, kops...)
	}
	return h
}

// CheckLinearizable checks that the register operations of ops (get, put,
// cas, and the set workload's add as a put) are linearizable, with a
// register per key, counting the OK gets whose level is in levels and
// every write that was acknowledged or may have taken effect (outcome
// unknown). Keys that no OK get at levels and no OK cas observed are
// skipped. A search that outlasts timeout (0: no limit) makes the result
// invalid.
//
// The LinearizationInfo is porcupine's, for porcupine.Visualize with
// RegisterModel; its operations' metadata point into ops.
func CheckLinearizable(ops []Op, levels []string, timeout time.Duration) (Result, porcupine.LinearizationInfo) {
	res := Result{
		Checker: "linearizable(" + strings.Join(levels, ",") + ")",
		Figures: make(map[string]float64),
	}
	h := linearizabilityHistory(ops, levels)
	res.Ops = len(h.ops)
	res.Figures["keys"] = float64(h.keys)
	res.Figures["reads"] = float64(h.reads)
	res.Figures["writes"] = float64(h.writes)
	res.Figures["unknown_writes"] = float64(h.unknownWrites)
	res.Figures["unknown_writes_unobserved"] = float64(h.unknownDropped)

	began := time.Now()
	verdict, info := porcupine.CheckOperationsVerbose(RegisterModel, h.ops, timeout)
	took := time.Since(began)
	res.Figures["search_ms"] = float64(took) / 1e6
	// A partition that porcupine did not fully linearize is illegal,
	// unless the timeout cut its search short. The timer starts after
	// began, so it cannot have fired if the search took less.
	cut := verdict == porcupine.Unknown || (timeout > 0 && took >= timeout)

	var list anomalyList
	var undecided []string
	partials := info.PartialLinearizations()
	for i, part := range RegisterModel.Partition(h.ops) {
		var longest []int
		if i < len(partials) {
			for _, p := range partials[i] {
				if len(p) > len(longest) {
					longest = p
				}
			}
		}
		if len(longest) == len(part) {
			continue
		}
		key := part[0].Input.(registerInput).key
		if verdict == porcupine.Unknown {
			undecided = append(undecided, key)
			continue
		}
		in := make([]bool, len(part))
		for _, id := range longest {
			in[id] = true
		}
		// Name the earliest-returning operation outside the longest
		// prefix: the search could not place it after that prefix.
		stuck := -1
		reads := 0
		for id, op := range part {
			if op.Input.(registerInput).f == FGet {
				reads++
			}
			if !in[id] && (stuck < 0 || op.Return < part[stuck].Return) {
				stuck = id
			}
		}
		stuckOp := part[stuck].Metadata.(*Op)
		detail := fmt.Sprintf("key %q: its %d operations (reads %d, writes %d) have no linearization; "+
			"the longest linearizable prefix holds %d of them, and the earliest-returning operation "+
			"outside it is %s", key, len(part), reads, len(part)-reads, len(longest), describeOp(*stuckOp))
		if cut {
			detail += " (the search hit its timeout, so this key may be undecided rather than illegal)"
		}
		list.add("nonlinearizable", key, part[stuck].Return, "%s", detail)
	}
	res.Figures["keys_undecided"] = float64(len(undecided))
	list.finish(&res)
	res.Valid = res.Valid && verdict == porcupine.Ok
	switch {
	case verdict == porcupine.Unknown:
		note := fmt.Sprintf("the linearizability search timed out after %v with %d of %d keys undecided", timeout, len(undecided), h.keys)
		if len(undecided) > 0 {
			shown := quoteAll(undecided[:min(len(undecided), 10)])
			if len(undecided) > len(shown) {
				shown = append(shown, "…")
			}
			note += " (" + strings.Join(shown, ", ") + ")"
		}
		res.Note = joinNotes(note+"; a timeout counts as a failure", res.Note)
	case verdict == porcupine.Illegal && cut:
		res.Note = joinNotes(fmt.Sprintf("the linearizability search hit its timeout of %v", timeout), res.Note)
	}
	return res, info
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// The helpers below are shared by every checker.

// anomalyList gathers a checker's anomalies: it counts them all and keeps
// the earliest maxAnomalies of each kind.
type anomalyList struct {
	byKind map[string][]Anomaly
	counts map[string]int
	total  int
}

func (l *anomalyList) add(kind, key string, at int64, format string, args ...any) {
	if l.byKind == nil {
		l.byKind = make(map[string][]Anomaly)
		l.counts = make(map[string]int)
	}
	l.total++
	l.counts[kind]++
	as := append(l.byKind[kind], Anomaly{Kind: kind, Key: key, At: at, Detail: fmt.Sprintf(format, args...)})
	if len(as) >= 2*maxAnomalies {
		sortAnomalies(as)
		as = as[:maxAnomalies]
	}
	l.byKind[kind] = as
}

// finish sets r's anomalies, its validity and Figures["anomalies_total"].
// When there are more than maxAnomalies it lists the earliest of each
// kind in turn, so that every kind shows, and says so in the Note.
func (l *anomalyList) finish(r *Result) {
	if r.Figures == nil {
		r.Figures = make(map[string]float64)
	}
	r.Figures["anomalies_total"] = float64(l.total)
	r.Valid = l.total == 0
	if l.total == 0 {
		return
	}
	kinds := make([]string, 0, len(l.byKind))
	for k, as := range l.byKind {
		sortAnomalies(as)
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var out []Anomaly
	for i := 0; len(out) < maxAnomalies; i++ {
		took := false
		for _, k := range kinds {
			if as := l.byKind[k]; i < len(as) && len(out) < maxAnomalies {
				out = append(out, as[i])
				took = true
			}
		}
		if !took {
			break
		}
	}
	sortAnomalies(out)
	r.Anomalies = out
	if l.total > len(out) {
		counts := make([]string, len(kinds))
		for i, k := range kinds {
			counts[i] = fmt.Sprintf("%d %s", l.counts[k], k)
		}
		r.Note = joinNotes(r.Note, fmt.Sprintf("listing %d of %d anomalies (%s)", len(out), l.total, strings.Join(counts, ", ")))
	}
}

func sortAnomalies(as []Anomaly) {
	sort.SliceStable(as, func(i, j int) bool {
		if as[i].At != as[j].At {
			return as[i].At < as[j].At
		}
		return as[i].Key < as[j].Key
	})
}

func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// describeOp names an operation in anomaly details: who, what, what it
// returned, when.
func describeOp(op Op) string {
	var what string
	switch op.F {
	case FGet:
		got := "absent"
		if op.Found {
			got = fmt.Sprintf("%q (v%d)", op.Value, op.Version)
		}
		level := op.Level
		if op.Level == LevelBounded {
			level = fmt.Sprintf("bounded(%v)", time.Duration(op.MaxStaleness))
		}
		what = fmt.Sprintf("get %q at %s → %s", op.Key, level, got)
	case FCAS:
		expect := fmt.Sprintf("%q", op.Expect)
		if op.Expect == "" {
			expect = "absent"
		}
		what = fmt.Sprintf("cas %q %s→%q", op.Key, expect, op.Value)
		switch {
		case op.Outcome != OK:
		case op.Swapped:
			what += fmt.Sprintf(" swapped (v%d)", op.Version)
		default:
			what += " not swapped"
		}
	default:
		what = fmt.Sprintf("%s %q=%q", op.F, op.Key, op.Value)
		if op.Outcome == OK {
			what += fmt.Sprintf(" (v%d)", op.Version)
		}
	}
	if op.Mode != "" {
		what += " " + op.Mode
	}
	if op.Durability != "" {
		what += " " + op.Durability
	}
	switch op.Outcome {
	case Unknown:
		what += ", outcome unknown"
	case Fail:
		what += ", failed"
	}
	return fmt.Sprintf("process %d on %s: %s [%s, %s]", op.Process, op.Node, what, clock(op.Start), clock(op.End))
}

// clock formats a time on the run's clock.
func clock(ns int64) string { return fmt.Sprintf("%.6fs", float64(ns)/1e9) }

// quantilesMs returns the q-quantiles (nearest rank) of durations in
// nanoseconds, in milliseconds; zeros if there are none. It sorts ns.
func quantilesMs(ns []int64, qs ...float64) []float64 {
	slices.Sort(ns)
	out := make([]float64, len(qs))
	if len(ns) == 0 {
		return out
	}
	for i, q := range qs {
		rank := int(math.Ceil(q*float64(len(ns)))) - 1
		rank = min(max(rank, 0), len(ns)-1)
		out[i] = float64(ns[rank]) / 1e6
	}
	return out
}
