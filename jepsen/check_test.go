package jepsen

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Synthetic operations for the checker tests. Times are in milliseconds.

const synMs = int64(time.Millisecond)

func synPut(p int, key, value string, version uint64, start, end int64) Op {
	return Op{Process: p, Node: "n1", Workload: "register", F: FPut, Mode: ModeCacheOnly,
		Key: key, Value: value, Version: version, Start: start * synMs, End: end * synMs, Outcome: OK}
}

func synGet(p int, level, key, value string, version uint64, start, end int64) Op {
	return Op{Process: p, Node: "n1", Workload: "register", F: FGet, Level: level,
		Key: key, Value: value, Found: value != "", Version: version, Start: start * synMs, End: end * synMs, Outcome: OK}
}

func synCAS(p int, key, expect, value string, swapped bool, version uint64, start, end int64) Op {
	return Op{Process: p, Node: "n1", Workload: "register", F: FCAS, Key: key, Expect: expect, Value: value,
		Swapped: swapped, Version: version, Start: start * synMs, End: end * synMs, Outcome: OK}
}

// synBounded is a get at level bounded with bound d milliseconds.
func synBounded(p int, d int64, key, value string, version uint64, start, end int64) Op {
	op := synGet(p, LevelBounded, key, value, version, start, end)
	op.MaxStaleness = d * synMs
	return op
}

// synOutcome gives op another outcome; a write that is not OK returns
// nothing.
func synOutcome(op Op, o Outcome) Op {
	op.Outcome = o
	if o != OK && op.F != FGet {
		op.Version, op.Swapped = 0, false
	}
	return op
}

func synWorkload(op Op, workload string) Op {
	op.Workload = workload
	return op
}

func synFinal(op Op) Op {
	op.Final = true
	return op
}

func synAdd(p int, key, value string, version uint64, start, end int64) Op {
	op := synPut(p, key, value, version, start, end)
	op.Workload, op.F, op.Mode = "set", FAdd, ""
	return op
}

func synSetGet(p int, level, key, value string, version uint64, start, end int64) Op {
	return synWorkload(synGet(p, level, key, value, version, start, end), "set")
}

func synWrite(mode string, key, value string, version uint64, start, end int64) Op {
	op := synPut(0, key, value, version, start, end)
	op.Workload, op.Mode = "writemode", mode
	return op
}

// kinds lists the kinds of r's anomalies, sorted.
func kinds(r Result) []string {
	var out []string
	for _, a := range r.Anomalies {
		out = append(out, a.Kind)
	}
	sort.Strings(out)
	return out
}

// checkVerdict fails t unless r lists exactly the anomaly kinds want
// (sorted) and is valid just when want is empty.
func checkVerdict(t *testing.T, r Result, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := kinds(r); !slices.Equal(got, want) {
		t.Errorf("anomalies %v, want %v: %+v", got, want, r.Anomalies)
	}
	if r.Valid != (len(want) == 0) {
		t.Errorf("valid = %v with anomalies %v (note %q)", r.Valid, want, r.Note)
	}
	for _, a := range r.Anomalies {
		if a.Detail == "" {
			t.Errorf("anomaly %s has no detail", a.Kind)
		}
	}
	if r.Figures["anomalies_total"] != float64(len(r.Anomalies)) {
		t.Errorf("anomalies_total = %v, listed %d", r.Figures["anomalies_total"], len(r.Anomalies))
	}
}

func TestCheckLinearizable(t *testing.T) {
	const x = "x"
	lin := LevelLinearizable
	unknown := func(op Op) Op { return synOutcome(op, Unknown) }
	fail := func(op Op) Op { return synOutcome(op, Fail) }
	tests := []struct {
		name   string
		levels []string // linearizable if nil
		ops    []Op
		want   []string
	}{
		{"read after write", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), synGet(1, lin, x, "a", 1, 20, 30)}, nil},
		{"absent before the first write", nil, []Op{
			synGet(1, lin, x, "", 0, 0, 5), synPut(0, x, "a", 1, 10, 20)}, nil},
		{"absent after an acknowledged write", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), synGet(1, lin, x, "", 0, 20, 30)}, []string{"nonlinearizable"}},
		{"concurrent reads see the old or the new value", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), synPut(0, x, "b", 2, 20, 40),
			synGet(1, lin, x, "a", 1, 25, 35), synGet(2, lin, x, "b", 2, 30, 50)}, nil},
		{"stale read after a later acknowledged write", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), synPut(0, x, "b", 2, 20, 30),
			synGet(1, lin, x, "a", 1, 40, 50)}, []string{"nonlinearizable"}},
		{"reads go back in time during a write", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), synPut(0, x, "b", 2, 20, 60),
			synGet(1, lin, x, "b", 2, 30, 35), synGet(2, lin, x, "a", 1, 40, 45)}, []string{"nonlinearizable"}},
		{"an unknown put explains a read", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), unknown(synPut(0, x, "b", 0, 20, 30)),
			synGet(1, lin, x, "b", 2, 100, 110)}, nil},
		{"an unknown put read, then the value it overwrote", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), unknown(synPut(0, x, "b", 0, 20, 30)),
			synGet(1, lin, x, "b", 2, 100, 110), synGet(1, lin, x, "a", 1, 120, 130)}, []string{"nonlinearizable"}},
		{"a value read before its unknown put began", nil, []Op{
			synGet(1, lin, x, "b", 2, 0, 5), unknown(synPut(0, x, "b", 0, 10, 20))}, []string{"nonlinearizable"}},
		{"an unknown put read by a cas", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), unknown(synPut(0, x, "b", 0, 20, 30)),
			synCAS(1, x, "b", "c", true, 3, 100, 110), synGet(1, lin, x, "c", 3, 120, 130)}, nil},
		{"an unknown put that never took effect", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), unknown(synPut(0, x, "b", 0, 20, 30)),
			synGet(1, lin, x, "a", 1, 100, 110)}, nil},
		{"a failed put read", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), fail(synPut(0, x, "b", 0, 20, 30)),
			synGet(1, lin, x, "b", 2, 100, 110)}, []string{"nonlinearizable"}},
		{"cas from absent", nil, []Op{
			synCAS(0, x, "", "a", true, 1, 0, 10), synGet(1, lin, x, "a", 1, 20, 30)}, nil},
		{"cas swapped while the value differed", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), synCAS(0, x, "z", "c", true, 2, 20, 30)}, []string{"nonlinearizable"}},
		{"cas did not swap while the value matched", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), synCAS(0, x, "a", "c", false, 0, 20, 30)}, []string{"nonlinearizable"}},
		{"an unknown put explains a cas that did not swap", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), unknown(synPut(1, x, "b", 0, 12, 14)),
			synCAS(0, x, "a", "c", false, 0, 20, 30)}, nil},
		{"an unknown cas explains a read", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), unknown(synCAS(0, x, "a", "b", false, 0, 20, 30)),
			synGet(1, lin, x, "b", 2, 40, 50)}, nil},
		{"an unknown cas that could not have swapped", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), synPut(0, x, "z", 2, 12, 15),
			unknown(synCAS(0, x, "a", "b", false, 0, 20, 30)),
			synGet(1, lin, x, "b", 3, 40, 50)}, []string{"nonlinearizable"}},
		{"an add is a put", nil, []Op{
			synAdd(0, x, "a", 1, 0, 10), synSetGet(1, lin, x, "a", 1, 20, 30)}, nil},
		{"failed and unknown reads carry nothing", nil, []Op{
			synPut(0, x, "a", 1, 0, 10),
			synOutcome(synGet(1, lin, x, "q", 0, 20, 30), Fail),
			synOutcome(synGet(1, lin, x, "", 0, 40, 50), Unknown)}, nil},
		{"reads at other levels are not checked", nil, []Op{
			synPut(0, x, "a", 1, 0, 10), synPut(0, x, "b", 2, 20, 30),
			synGet(1, LevelEventual, x, "a", 1, 40, 50)}, nil},
		{"reads at the levels asked for are", []string{LevelEventual}, []Op{
			synPut(0, x, "a", 1, 0, 10), synPut(0, x, "b", 2, 20, 30),
			synGet(1, LevelEventual, x, "a", 1, 40, 50)}, []string{"nonlinearizable"}},
		{"one bad key among good ones", nil, []Op{
			synPut(0, "k1", "a", 1, 0, 10), synGet(1, lin, "k1", "a", 1, 20, 30),
			synPut(0, "k2", "b", 2, 0, 10), synGet(1, lin, "k2", "", 0, 40, 50),
			synPut(0, "k3", "c", 3, 0, 10), synGet(1, lin, "k3", "c", 3, 20, 30)}, []string{"nonlinearizable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			levels := tt.levels
			if levels == nil {
				levels = []string{LevelLinearizable}
			}
			res, info := CheckLinearizable(tt.ops, levels, 5*time.Second)
			checkVerdict(t, res, tt.want...)
			if !strings.HasPrefix(res.Checker, "linearizable(") {
				t.Errorf("checker %q", res.Checker)
			}
			// The visualization replays the partial linearizations
			// through the model; it panics if they do not step.
			var buf bytes.Buffer
			if err := porcupine.Visualize(RegisterModel, info, &buf); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCheckLinearizableDetail(t *testing.T) {
	ops := []Op{
		synPut(0, "k1", "a", 1, 0, 10), synGet(1, LevelLinearizable, "k1", "a", 1, 20, 30),
		synPut(0, "k2", "b", 2, 0, 10), synGet(1, LevelLinearizable, "k2", "", 0, 40, 50),
		synOutcome(synPut(2, "k2", "never-read", 0, 60, 70), Unknown),
		synPut(0, "k3", "c", 3, 0, 10), // no read: skipped
	}
	res, _ := CheckLinearizable(ops, []string{LevelLinearizable, LevelLease}, time.Second)
	if res.Checker != "linearizable(linearizable,lease)" {
		t.Errorf("checker %q", res.Checker)
	}
	if len(res.Anomalies) != 1 {
		t.Fatalf("anomalies %+v", res.Anomalies)
	}
	a := res.Anomalies[0]
	if a.Key != "k2" || a.At != 50*synMs || !strings.Contains(a.Detail, `get "k2" at linearizable → absent`) {
		t.Errorf("anomaly %+v", a)
	}
	want := map[string]float64{"keys": 2, "reads": 2, "writes": 2, "unknown_writes": 0, "unknown_writes_unobserved": 1}
	for k, v := range want {
		if res.Figures[k] != v {
			t.Errorf("figure %s = %v, want %v", k, res.Figures[k], v)
		}
	}
}

// TestCheckLinearizableTimeout gives porcupine a history it cannot
// decide in time: many concurrent writes and reads, then a read of a
// value nobody wrote, so the search must try every order first.
func TestCheckLinearizableTimeout(t *testing.T) {
	var ops []Op
	for i := range 24 {
		v := fmt.Sprintf("v%d", i)
		ops = append(ops, synPut(i, "x", v, uint64(i+1), 0, 1000), synGet(100+i, LevelLinearizable, "x", v, uint64(i+1), 0, 1000))
	}
	ops = append(ops, synGet(200, LevelLinearizable, "x", "nobody", 99, 2000, 2010))
	res, _ := CheckLinearizable(ops, []string{LevelLinearizable}, 50*time.Millisecond)
	if res.Valid {
		t.Fatal("a timed-out search is valid")
	}
	if !strings.Contains(res.Note, "timed out") || res.Figures["keys_undecided"] != 1 {
		t.Errorf("note %q, figures %v", res.Note, res.Figures)
	}
}

func TestCheckBounded(t *testing.T) {
	const x = "x"
	proof := func(op Op, staleness int64) Op {
		op.Meta = &ReadMeta{ServedBy: "n2", Role: "follower", Staleness: staleness * synMs}
		return op
	}
	tests := []struct {
		name string
		ops  []Op
		want []string
	}{
		{"a write within the bound may be missed", []Op{
			synPut(0, x, "a", 5, 0, 10), synBounded(1, 100, x, "", 0, 50, 60)}, nil},
		{"a write acknowledged 2d before must be seen", []Op{
			synPut(0, x, "a", 5, 0, 10), synBounded(1, 100, x, "", 0, 210, 220)}, []string{"bounded-stale-read"}},
		{"an older version after the bound", []Op{
			synPut(0, x, "a", 5, 0, 10), synPut(0, x, "b", 9, 20, 30),
			synBounded(1, 100, x, "a", 5, 300, 310)}, []string{"bounded-stale-read"}},
		{"the newest version", []Op{
			synPut(0, x, "a", 5, 0, 10), synPut(0, x, "b", 9, 20, 30),
			synBounded(1, 100, x, "b", 9, 300, 310)}, nil},
		{"a newer write inside the bound", []Op{
			synPut(0, x, "a", 5, 0, 10), synPut(0, x, "b", 9, 210, 290),
			synBounded(1, 100, x, "a", 5, 300, 310)}, nil},
		{"a cas that did not swap wrote nothing", []Op{
			synPut(0, x, "a", 5, 0, 10), synCAS(0, x, "z", "b", false, 0, 20, 30),
			synBounded(1, 100, x, "a", 5, 300, 310)}, nil},
		{"a cas that swapped did", []Op{
			synPut(0, x, "a", 5, 0, 10), synCAS(0, x, "a", "b", true, 7, 20, 30),
			synBounded(1, 100, x, "a", 5, 300, 310)}, []string{"bounded-stale-read"}},
		{"unknown writes prove nothing", []Op{
			synOutcome(synPut(0, x, "a", 5, 0, 10), Unknown), synBounded(1, 100, x, "", 0, 300, 310)}, nil},
		{"other levels are not checked", []Op{
			synPut(0, x, "a", 5, 0, 10), synGet(1, LevelEventual, x, "", 0, 300, 310)}, nil},
		{"a proof within the bound", []Op{
			proof(synBounded(1, 100, x, "", 0, 50, 60), 100)}, nil},
		{"a proof beyond the bound", []Op{
			proof(synBounded(1, 100, x, "", 0, 50, 60), 150)}, []string{"bounded-proof-exceeds-bound"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := CheckBounded(tt.ops)
			checkVerdict(t, res, tt.want...)
		})
	}
}

func TestCheckBoundedFigures(t *testing.T) {
	ops := []Op{
		synPut(0, "x", "a", 5, 0, 10), synPut(0, "x", "b", 9, 20, 30),
		synBounded(1, 1000, "x", "b", 9, 40, 50),   // up to date: lag 0
		synBounded(1, 1000, "x", "a", 5, 130, 140), // b acknowledged 100ms before
		synBounded(2, 1000, "x", "", 0, 510, 520),  // a acknowledged 500ms before
	}
	res := CheckBounded(ops)
	checkVerdict(t, res)
	want := map[string]float64{"reads": 3, "staleness_p50_ms": 100, "staleness_p99_ms": 500, "staleness_max_ms": 500}
	for k, v := range want {
		if res.Figures[k] != v {
			t.Errorf("figure %s = %v, want %v", k, res.Figures[k], v)
		}
	}
}

func TestCheckSession(t *testing.T) {
	const x = "x"
	ses := LevelSession
	tests := []struct {
		name string
		ops  []Op
		want []string
	}{
		{"reads its own write", []Op{
			synPut(1, x, "a", 5, 0, 10), synGet(1, ses, x, "a", 5, 20, 30)}, nil},
		{"misses its own write", []Op{
			synPut(1, x, "a", 5, 0, 10), synGet(1, ses, x, "", 0, 20, 30)}, []string{"session-read-your-writes"}},
		{"reads below its own write", []Op{
			synPut(1, x, "a", 5, 0, 10), synPut(1, x, "b", 8, 12, 14),
			synGet(1, ses, x, "a", 5, 20, 30)}, []string{"session-read-your-writes"}},
		{"a cas that swapped is a write", []Op{
			synCAS(1, x, "", "a", true, 7, 0, 10), synGet(1, ses, x, "", 0, 20, 30)}, []string{"session-read-your-writes"}},
		{"another process's write is not its own", []Op{
			synPut(2, x, "a", 5, 0, 10), synGet(1, ses, x, "", 0, 20, 30)}, nil},
		{"a write of unknown outcome is not required", []Op{
			synOutcome(synPut(1, x, "a", 5, 0, 10), Unknown), synGet(1, ses, x, "", 0, 20, 30)}, nil},
		{"reads go back", []Op{
			synGet(1, ses, x, "b", 9, 0, 10), synGet(1, ses, x, "a", 5, 20, 30)}, []string{"session-monotonic-reads"}},
		{"reads move forward", []Op{
			synGet(1, ses, x, "a", 5, 0, 10), synGet(1, ses, x, "b", 9, 20, 30)}, nil},
		{"a linearizable read raises the floor", []Op{
			synGet(1, LevelLinearizable, x, "b", 9, 0, 10), synGet(1, ses, x, "a", 5, 20, 30)}, []string{"session-monotonic-reads"}},
		{"a lease read raises the floor", []Op{
			synGet(1, LevelLease, x, "b", 9, 0, 10), synGet(1, ses, x, "", 0, 20, 30)}, []string{"session-monotonic-reads"}},
		{"an eventual read does not", []Op{
			synGet(1, LevelEventual, x, "b", 9, 0, 10), synGet(1, ses, x, "a", 5, 20, 30)}, nil},
		{"a bounded read does not", []Op{
			synBounded(1, 100, x, "b", 9, 0, 10), synGet(1, ses, x, "a", 5, 20, 30)}, nil},
		{"other processes' reads do not", []Op{
			synGet(2, ses, x, "b", 9, 0, 10), synGet(1, ses, x, "a", 5, 20, 30)}, nil},
		{"other keys do not", []Op{
			synPut(1, "y", "b", 9, 0, 10), synGet(1, ses, x, "a", 5, 20, 30)}, nil},
		{"program order is start order", []Op{
			synGet(1, ses, x, "", 0, 0, 10), synPut(1, x, "a", 5, 20, 30)}, nil},
		{"program order is start order, out of order in the history", []Op{
			synGet(1, ses, x, "", 0, 20, 30), synPut(1, x, "a", 5, 0, 10)}, []string{"session-read-your-writes"}},
		{"both at once", []Op{
			synGet(1, ses, x, "b", 9, 0, 10), synPut(1, x, "c", 12, 12, 14),
			synGet(1, ses, x, "a", 5, 20, 30)}, []string{"session-monotonic-reads", "session-read-your-writes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerdict(t, CheckSession(tt.ops), tt.want...)
		})
	}
}

func TestCheckSet(t *testing.T) {
	lin, ev := LevelLinearizable, LevelEventual
	final := func(op Op) Op { return synFinal(op) }
	tests := []struct {
		name string
		ops  []Op
		want []string
	}{
		{"added and found", []Op{
			synAdd(0, "e1", "v1", 3, 0, 10), synSetGet(1, ev, "e1", "v1", 3, 15, 20),
			final(synSetGet(2, lin, "e1", "v1", 3, 100, 110))}, nil},
		{"lost", []Op{
			synAdd(0, "e1", "v1", 3, 0, 10), final(synSetGet(2, lin, "e1", "", 0, 100, 110))}, []string{"lost-element"}},
		{"the last final read counts", []Op{
			synAdd(0, "e1", "v1", 3, 0, 10), final(synSetGet(2, lin, "e1", "v1", 3, 120, 130)),
			final(synSetGet(2, lin, "e1", "", 0, 100, 110))}, nil},
		{"a failed add found", []Op{
			synOutcome(synAdd(0, "e1", "v1", 3, 0, 10), Fail),
			final(synSetGet(2, lin, "e1", "v1", 3, 100, 110))}, []string{"unexpected-element"}},
		{"a failed add found before the end", []Op{
			synOutcome(synAdd(0, "e1", "v1", 3, 0, 10), Fail), synSetGet(1, ev, "e1", "v1", 3, 15, 20),
			final(synSetGet(2, lin, "e1", "", 0, 100, 110))}, []string{"unexpected-element"}},
		{"a failed add absent", []Op{
			synOutcome(synAdd(0, "e1", "v1", 3, 0, 10), Fail),
			final(synSetGet(2, lin, "e1", "", 0, 100, 110))}, nil},
		{"an element nobody added", []Op{
			synSetGet(1, ev, "e9", "v9", 3, 15, 20)}, []string{"unexpected-element"}},
		{"an element with a value nobody wrote", []Op{
			synAdd(0, "e1", "v1", 3, 0, 10), final(synSetGet(2, lin, "e1", "v2", 3, 100, 110))}, []string{"unexpected-element"}},
		{"a value nobody wrote before the end", []Op{
			synAdd(0, "e1", "v1", 3, 0, 10), synSetGet(1, ev, "e1", "v2", 3, 15, 20),
			final(synSetGet(2, lin, "e1", "v1", 3, 100, 110))}, []string{"unexpected-element"}},
		{"unknown adds either way", []Op{
			synOutcome(synAdd(0, "e1", "v1", 0, 0, 10), Unknown), final(synSetGet(2, lin, "e1", "v1", 3, 100, 110)),
			synOutcome(synAdd(0, "e2", "v2", 0, 0, 10), Unknown), final(synSetGet(2, lin, "e2", "", 0, 100, 110))}, nil},
		{"no final read", []Op{
			synAdd(0, "e1", "v1", 3, 0, 10), synSetGet(1, lin, "e1", "v1", 3, 15, 20)}, []string{"unchecked-element"}},
		{"a failed final read is no final read", []Op{
			synAdd(0, "e1", "v1", 3, 0, 10), synOutcome(final(synSetGet(2, lin, "e1", "", 0, 100, 110)), Fail)},
			[]string{"unchecked-element"}},
		{"a linearizable read misses an acknowledged add", []Op{
			synAdd(0, "e1", "v1", 3, 0, 10), synSetGet(1, lin, "e1", "", 0, 20, 30),
			final(synSetGet(2, lin, "e1", "v1", 3, 100, 110))}, []string{"stale-element-read"}},
		{"a lease read misses an acknowledged add", []Op{
			synAdd(0, "e1", "v1", 3, 0, 10), synSetGet(1, LevelLease, "e1", "", 0, 20, 30),
			final(synSetGet(2, lin, "e1", "v1", 3, 100, 110))}, []string{"stale-element-read"}},
		{"a concurrent linearizable read may miss it", []Op{
			synAdd(0, "e1", "v1", 3, 0, 10), synSetGet(1, lin, "e1", "", 0, 5, 15),
			final(synSetGet(2, lin, "e1", "v1", 3, 100, 110))}, nil},
		{"an eventual read may miss it", []Op{
			synAdd(0, "e1", "v1", 3, 0, 10), synSetGet(1, ev, "e1", "", 0, 20, 30),
			final(synSetGet(2, lin, "e1", "v1", 3, 100, 110))}, nil},
		{"a linearizable read misses an unknown add found before", []Op{
			synOutcome(synAdd(0, "e1", "v1", 0, 0, 10), Unknown), synSetGet(1, lin, "e1", "v1", 3, 20, 30),
			synSetGet(1, lin, "e1", "", 0, 40, 50),
			final(synSetGet(2, lin, "e1", "v1", 3, 100, 110))}, []string{"stale-element-read"}},
		{"other workloads are not checked", []Op{
			synPut(0, "e1", "v1", 3, 0, 10), synGet(1, lin, "e1", "", 0, 20, 30)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerdict(t, CheckSet(tt.ops), tt.want...)
		})
	}
}

func TestCheckSetFigures(t *testing.T) {
	replicated := func(op Op) Op {
		op.Durability = DurabilityReplicated
		return op
	}
	ops := []Op{
		replicated(synAdd(0, "e1", "v1", 3, 0, 10)), synSetGet(1, LevelEventual, "e1", "v1", 3, 20, 30),
		synSetGet(1, LevelEventual, "e1", "v1", 3, 40, 50),                                // not the first
		synAdd(0, "e2", "v2", 4, 0, 10), synSetGet(1, LevelEventual, "e2", "v2", 4, 5, 8), // clamped to 0
		replicated(synAdd(0, "e3", "v3", 5, 0, 10)), // never seen before the end
		synOutcome(synAdd(0, "e4", "v4", 0, 0, 10), Unknown),
		synOutcome(synAdd(0, "e5", "v5", 0, 0, 10), Fail),
	}
	for _, e := range []string{"e1", "e2", "e3", "e4", "e5"} {
		found := map[string]string{"e1": "v1", "e2": "v2", "e4": "v4"}[e]
		ops = append(ops, synFinal(synSetGet(2, LevelLinearizable, e, found, 0, 100, 110)))
	}
	res := CheckSet(ops)
	checkVerdict(t, res, "lost-element")
	want := map[string]float64{
		"adds_total": 5, "adds_ok": 3, "adds_lost": 1,
		"adds_ok_replicated": 2, "adds_lost_replicated": 1, "adds_ok_sync": 0, "adds_lost_sync": 0,
		"unknown_adds_present": 1, "unknown_adds_absent": 0,
		"visibility_p50_ms": 0, "visibility_max_ms": 20, "visibility_unseen": 1,
	}
	for k, v := range want {
		if res.Figures[k] != v {
			t.Errorf("figure %s = %v, want %v", k, res.Figures[k], v)
		}
	}
}

func TestCheckDatabase(t *testing.T) {
	wt, wb, wa := ModeWriteThrough, ModeWriteBack, ModeWriteAround
	tests := []struct {
		name  string
		ops   []Op
		audit []AuditRow
		rows  map[string]DBRow
		want  []string
	}{
		{"write-through", []Op{synWrite(wt, "k", "a", 3, 0, 10)},
			[]AuditRow{{Seq: 1, Key: "k", Version: 3}},
			map[string]DBRow{"k": {Value: "a", Version: 3}}, nil},
		{"write-back flushed", []Op{synWrite(wb, "k", "a", 3, 0, 10), synWrite(wb, "k", "b", 5, 20, 30)},
			[]AuditRow{{Seq: 1, Key: "k", Version: 5}},
			map[string]DBRow{"k": {Value: "b", Version: 5}}, nil},
		{"audit out of order", nil,
			[]AuditRow{{Seq: 1, Key: "k", Version: 5}, {Seq: 2, Key: "k", Version: 3}},
			nil, []string{"db-version-order"}},
		{"audit written twice", nil,
			[]AuditRow{{Seq: 1, Key: "k", Version: 5}, {Seq: 2, Key: "k", Version: 5}},
			nil, []string{"db-version-order"}},
		{"audit in order once sorted by sequence", nil,
			[]AuditRow{{Seq: 2, Key: "k", Version: 5}, {Seq: 1, Key: "k", Version: 3}, {Seq: 3, Key: "j", Version: 1}},
			nil, nil},
		{"write-through missing from the audit", []Op{synWrite(wt, "k", "a", 5, 0, 10)},
			[]AuditRow{{Seq: 1, Key: "k", Version: 3}},
			map[string]DBRow{"k": {Value: "a", Version: 5}}, []string{"db-missing-write"}},
		{"write-around missing from the audit", []Op{synWrite(wa, "k", "a", 5, 0, 10)},
			nil, map[string]DBRow{"k": {Value: "a", Version: 5}}, []string{"db-missing-write"}},
		{"a newer audit row covers a write", []Op{synWrite(wt, "k", "a", 5, 0, 10)},
			[]AuditRow{{Seq: 1, Key: "k", Version: 7}},
			map[string]DBRow{"k": {Value: "z", Version: 7}}, nil},
		{"final version older than an acknowledged write", []Op{synWrite(wb, "k", "a", 9, 0, 10)},
			[]AuditRow{{Seq: 1, Key: "k", Version: 7}},
			map[string]DBRow{"k": {Value: "old", Version: 7}}, []string{"db-final-version"}},
		{"final row missing", []Op{synWrite(wb, "k", "a", 9, 0, 10)},
			nil, nil, []string{"db-final-version"}},
		{"final row deleted", []Op{synWrite(wb, "k", "a", 9, 0, 10)},
			nil, map[string]DBRow{"k": {Version: 9, Deleted: true}}, []string{"db-final-version"}},
		{"final row with the wrong value", []Op{synWrite(wb, "k", "a", 9, 0, 10)},
			nil, map[string]DBRow{"k": {Value: "z", Version: 9}}, []string{"db-wrong-value"}},
		{"cache-only writes stay out of the database", []Op{synWrite(ModeCacheOnly, "k", "a", 9, 0, 10)},
			nil, nil, nil},
		{"unknown writes prove nothing", []Op{synOutcome(synWrite(wt, "k", "a", 9, 0, 10), Unknown)},
			nil, nil, nil},
		{"a cas that did not swap wrote nothing", []Op{
			synWorkload(synCAS(0, "k", "q", "a", false, 0, 0, 10), "writemode")},
			nil, nil, nil},
		{"other workloads are not checked", []Op{synWorkload(synWrite(wt, "k", "a", 9, 0, 10), "register")},
			nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerdict(t, CheckDatabase(tt.ops, tt.audit, tt.rows), tt.want...)
		})
	}
}

func TestCheckDatabaseFigures(t *testing.T) {
	ops := []Op{
		synWrite(ModeWriteThrough, "a", "1", 1, 0, 10), synWrite(ModeWriteThrough, "a", "2", 2, 20, 30),
		synWrite(ModeWriteBack, "b", "3", 3, 0, 10), synWrite(ModeWriteAround, "c", "4", 4, 0, 10),
		synWrite(ModeCacheOnly, "d", "5", 5, 0, 10),
	}
	audit := []AuditRow{{Seq: 1, Key: "a", Version: 1}, {Seq: 2, Key: "a", Version: 2}, {Seq: 3, Key: "b", Version: 3}, {Seq: 4, Key: "c", Version: 4}}
	rows := map[string]DBRow{"a": {Value: "2", Version: 2}, "b": {Value: "3", Version: 3}, "c": {Value: "4", Version: 4}}
	res := CheckDatabase(ops, audit, rows)
	checkVerdict(t, res)
	want := map[string]float64{"writes_through": 2, "writes_back": 1, "writes_around": 1, "audit_rows": 4, "keys": 4}
	for k, v := range want {
		if res.Figures[k] != v {
			t.Errorf("figure %s = %v, want %v", k, res.Figures[k], v)
		}
	}
}

func TestAnomalyListBounded(t *testing.T) {
	var l anomalyList
	for i := range 3 * maxAnomalies {
		l.add("stale", "k", int64(3*maxAnomalies-i), "read %d", i)
	}
	l.add("lost", "k", 1000, "lost")
	var r Result
	l.finish(&r)
	if r.Valid || len(r.Anomalies) != maxAnomalies || r.Figures["anomalies_total"] != 3*maxAnomalies+1 {
		t.Fatalf("valid %v, %d listed, figures %v", r.Valid, len(r.Anomalies), r.Figures)
	}
	if !slices.ContainsFunc(r.Anomalies, func(a Anomaly) bool { return a.Kind == "lost" }) {
		t.Error("the rare kind is not listed")
	}
	if r.Anomalies[0].At != 1 {
		t.Errorf("the earliest anomaly is not first: %+v", r.Anomalies[0])
	}
	if !strings.Contains(r.Note, "listing 50 of 151 anomalies") {
		t.Errorf("note %q", r.Note)
	}
}

// synRegister simulates a correct cluster: every operation takes effect
// atomically at a random moment between its start and end, writes of
// unknown outcome at such a moment or never, and versions grow with
// every write that takes effect. Its histories satisfy every checker.
type synRegister struct {
	processes, keys, opsPerProcess int
	// unknownPct is the share of writes of unknown outcome, in percent
	// (10 if zero).
	unknownPct int
}

func (s synRegister) history(rng *rand.Rand) []Op {
	type pending struct {
		op    Op
		at    int64
		apply bool
	}
	levels := []string{LevelLinearizable, LevelLease, LevelSession, LevelBounded}
	var ps []pending
	for p := range s.processes {
		t := rng.Int64N(5 * synMs)
		for range s.opsPerProcess {
			start := t + rng.Int64N(3*synMs)
			end := start + synMs + rng.Int64N(20*synMs)
			t = end
			op := Op{Process: p, Node: "n1", Workload: "register", Key: fmt.Sprintf("k%d", rng.IntN(s.keys)),
				Start: start, End: end, Outcome: OK}
			apply := true
			switch r := rng.IntN(100); {
			case r < 35:
				op.F = FPut
			case r < 50:
				op.F = FCAS
			default:
				op.F = FGet
				op.Level = levels[rng.IntN(len(levels))]
				if op.Level == LevelBounded {
					op.MaxStaleness = rng.Int64N(50 * synMs)
				}
			}
			if op.F != FGet {
				unknown := s.unknownPct
				if unknown == 0 {
					unknown = 10
				}
				switch r := rng.IntN(100); {
				case r < unknown:
					op.Outcome, apply = Unknown, rng.IntN(2) == 0
				case r < unknown+5:
					op.Outcome, apply = Fail, false
				}
			}
			ps = append(ps, pending{op: op, at: start + rng.Int64N(end-start+1), apply: apply})
		}
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].at < ps[j].at })
	type register struct {
		value   string
		version uint64
	}
	state := make(map[string]register)
	var index uint64
	var out []Op
	for n, p := range ps {
		op := p.op
		cur := state[op.Key]
		switch op.F {
		case FGet:
			op.Found, op.Value, op.Version = cur.value != "", cur.value, cur.version
		case FPut:
			op.Value = fmt.Sprintf("w%d", n)
			if p.apply {
				index++
				state[op.Key] = register{op.Value, index}
				op.Version = index
			}
		case FCAS:
			op.Value = fmt.Sprintf("w%d", n)
			op.Expect = cur.value
			if rng.IntN(3) == 0 {
				op.Expect = fmt.Sprintf("w%d", rng.IntN(n+1))
			}
			if p.apply && op.Expect == cur.value {
				index++
				state[op.Key] = register{op.Value, index}
				op.Swapped, op.Version = true, index
			}
		}
		if op.Outcome != OK && op.F != FGet {
			op.Swapped, op.Version = false, 0
		}
		out = append(out, op)
	}
	// The history is recorded as operations complete.
	sort.SliceStable(out, func(i, j int) bool { return out[i].End < out[j].End })
	return out
}

// TestCheckersAcceptCorrectHistories checks random histories of a correct
// register against every checker, then breaks one read in each and checks
// that linearizability catches it.
func TestCheckersAcceptCorrectHistories(t *testing.T) {
	all := []string{LevelLinearizable, LevelLease, LevelSession, LevelBounded}
	sim := synRegister{processes: 6, keys: 3, opsPerProcess: 20}
	broken := 0
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 1))
		ops := sim.history(rng)
		res, _ := CheckLinearizable(ops, all, 10*time.Second)
		for _, r := range []Result{res, CheckSession(ops), CheckBounded(ops)} {
			if !r.Valid {
				t.Fatalf("seed %d: %s rejects a correct history: %s %+v", seed, r.Checker, r.Note, r.Anomalies)
			}
		}
		// A read of a value that was overwritten before the read began,
		// by a write that began after it was acknowledged.
		i, w := synStaleRead(ops)
		if i < 0 {
			continue
		}
		ops[i].Found, ops[i].Value, ops[i].Version = true, w.Value, w.Version
		res, _ = CheckLinearizable(ops, all, 10*time.Second)
		if res.Valid || len(res.Anomalies) != 1 || res.Anomalies[0].Key != ops[i].Key {
			t.Fatalf("seed %d: a read of an overwritten value passes: %+v", seed, res)
		}
		broken++
	}
	if broken < 10 {
		t.Errorf("only %d histories broken", broken)
	}
}

// synStaleRead finds a get in ops and an acknowledged write of its key
// that another acknowledged write followed before the get began.
func synStaleRead(ops []Op) (int, Op) {
	for i, r := range ops {
		if r.F != FGet {
			continue
		}
		for _, w1 := range ops {
			if w1.Key != r.Key || !ackedWrite(&w1) || w1.Value == r.Value {
				continue
			}
			for _, w2 := range ops {
				if w2.Key == r.Key && ackedWrite(&w2) && w2.Start > w1.End && w2.End < r.Start {
					return i, w1
				}
			}
		}
	}
	return -1, Op{}
}

func BenchmarkCheckLinearizable(b *testing.B) {
	for _, bb := range []struct {
		name string
		sim  synRegister
	}{
		{"100k-ops-300-keys", synRegister{processes: 50, keys: 300, opsPerProcess: 2000}},
		{"100k-ops-50-keys-30pct-unknown", synRegister{processes: 50, keys: 50, opsPerProcess: 2000, unknownPct: 30}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			ops := bb.sim.history(rand.New(rand.NewPCG(1, 1)))
			levels := []string{LevelLinearizable, LevelLease}
			b.ReportAllocs()
			for b.Loop() {
				if res, _ := CheckLinearizable(ops, levels, time.Minute); !res.Valid {
					b.Fatalf("%+v", res)
				}
			}
		})
	}
}

func BenchmarkCheckBounded(b *testing.B) {
	sim := synRegister{processes: 50, keys: 300, opsPerProcess: 2000}
	ops := sim.history(rand.New(rand.NewPCG(1, 1)))
	b.ReportAllocs()
	for b.Loop() {
		if res := CheckBounded(ops); !res.Valid {
			b.Fatalf("%+v", res)
		}
	}
}

func TestCheckRealtime(t *testing.T) {
	ms := int64(time.Millisecond)
	put := Op{Process: 1, F: FPut, Key: "k", Value: "a", Version: 5, Start: 0, End: 10 * ms, Outcome: OK}
	for _, tc := range []struct {
		name  string
		read  Op
		stale bool
	}{
		{"after the write, sees it", Op{Process: 2, F: FGet, Level: LevelLease, Key: "k", Found: true, Value: "a", Version: 5, Start: 11 * ms, End: 12 * ms, Outcome: OK}, false},
		{"after the write, misses it", Op{Process: 2, F: FGet, Level: LevelLease, Key: "k", Start: 11 * ms, End: 12 * ms, Outcome: OK}, true},
		{"concurrent with the write", Op{Process: 2, F: FGet, Level: LevelLinearizable, Key: "k", Start: 9 * ms, End: 12 * ms, Outcome: OK}, false},
		{"eventual is not checked", Op{Process: 2, F: FGet, Level: LevelEventual, Key: "k", Start: 11 * ms, End: 12 * ms, Outcome: OK}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckRealtime([]Op{put, tc.read}, []string{LevelLinearizable, LevelLease})
			if r.Valid == tc.stale || (len(r.Anomalies) > 0) != tc.stale {
				t.Fatalf("valid %v, anomalies %+v; want stale=%v", r.Valid, r.Anomalies, tc.stale)
			}
			if tc.stale && r.Anomalies[0].Kind != "stale-read" {
				t.Fatalf("kind %q", r.Anomalies[0].Kind)
			}
		})
	}
}
