package node_test

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/elcache/elcache/jepsen"
)

// anomaly is a broken promise, found by a check of this file or by a
// jepsen checker.
type anomaly struct {
	check string // the promise (a jepsen anomaly's kind)
	what  string // the operation and how it breaks the promise
	// from and to are when it happened, for the faults in effect then.
	from, to int64
}

// opAnomaly is an anomaly of one operation.
func opAnomaly(check string, o opRecord, why string) anomaly {
	return anomaly{check: check, what: fmt.Sprintf("%v: %s", o, why), from: o.call, to: o.ret}
}

func (a anomaly) String() string { return a.check + ": " + a.what }

// reportAnomalies fails t with the first few anomalies of a check, and
// the faults in effect when they happened.
func reportAnomalies(t *testing.T, h *opHistory, check string, as []anomaly) {
	t.Helper()
	if len(as) == 0 {
		return
	}
	const shown = 10
	var b strings.Builder
	for _, a := range as[:min(len(as), shown)] {
		fmt.Fprintf(&b, "\n  %v (during %s)", a, h.faultsDuring(a.from, a.to))
	}
	if len(as) > shown {
		fmt.Fprintf(&b, "\n  ... and %d more", len(as)-shown)
	}
	t.Errorf("%s: %d anomalies:%s", check, len(as), b.String())
}

// ackIndex answers, per key, which puts were acknowledged before a time.
type ackIndex map[string][]ackedPut

type ackedPut struct {
	put opRecord
	// newest is the put of the highest version among those acknowledged
	// no later than this one.
	newest opRecord
}

// newAckIndex indexes the puts of ops that were acknowledged OK.
func newAckIndex(ops []opRecord) ackIndex {
	idx := make(ackIndex)
	for _, o := range ops {
		if o.kind == opPut && o.outcome == outcomeOK {
			idx[o.key] = append(idx[o.key], ackedPut{put: o})
		}
	}
	for _, acks := range idx {
		sort.Slice(acks, func(i, j int) bool { return acks[i].put.ret < acks[j].put.ret })
		for i := range acks {
			acks[i].newest = acks[i].put
			if i > 0 && acks[i-1].newest.version > acks[i].put.version {
				acks[i].newest = acks[i-1].newest
			}
		}
	}
	return idx
}

// newestBefore returns the put of key with the highest version among
// those acknowledged strictly before ts.
func (idx ackIndex) newestBefore(key string, ts int64) (opRecord, bool) {
	acks := idx[key]
	n := sort.Search(len(acks), func(i int) bool { return acks[i].put.ret >= ts })
	if n == 0 {
		return opRecord{}, false
	}
	return acks[n-1].newest, true
}

// checkIntegrity checks what every level promises: a get returns a value
// that some put wrote, not before that put began, with the version the
// put was acknowledged with; and versions of a key grow in real time (a
// put acknowledged before another began has a lower version).
func checkIntegrity(ops []opRecord) []anomaly {
	puts := make(map[string]opRecord)
	for _, o := range ops {
		if o.kind == opPut {
			puts[o.value] = o
		}
	}
	var out []anomaly
	acks := newAckIndex(ops)
	for _, o := range ops {
		if o.outcome != outcomeOK {
			continue
		}
		if o.kind == opPut {
			if prev, ok := acks.newestBefore(o.key, o.call); ok && prev.version >= o.version {
				out = append(out, opAnomaly("integrity", o, fmt.Sprintf("version not above v%d of %v, acknowledged before this put began", prev.version, prev)))
			}
			continue
		}
		if !o.found {
			continue
		}
		p, ok := puts[o.value]
		switch {
		case !ok || p.key != o.key:
			out = append(out, opAnomaly("integrity", o, "read a value no put of this key wrote"))
		case p.call > o.ret:
			out = append(out, opAnomaly("integrity", o, fmt.Sprintf("read a value before its put %v began", p)))
		case p.outcome == outcomeOK && p.version != o.version:
			out = append(out, opAnomaly("integrity", o, fmt.Sprintf("read version v%d, but the put was acknowledged as v%d", o.version, p.version)))
		}
	}
	return out
}

// The other checks are the jepsen suite's, run on the history converted
// to its operations.

// linLevels are the levels whose reads must be linearizable.
var linLevels = []string{jepsen.LevelLinearizable, jepsen.LevelLease}

// jepsenOps converts ops for the jepsen checkers: a client is a process,
// node i is "n<i>", and a get carries its level, its BOUNDED bound and
// its proof.
func jepsenOps(ops []opRecord) []jepsen.Op {
	out := make([]jepsen.Op, len(ops))
	for i, o := range ops {
		op := jepsen.Op{Process: o.client, Node: fmt.Sprintf("n%d", o.node), Workload: "register", F: jepsen.FPut,
			Key: o.key, Value: o.value, Found: o.found, Version: o.version, Start: o.call, End: o.ret, Error: o.err,
			Meta: jepsen.ReadMetaOf(o.meta)}
		if o.kind == opGet {
			op.F, op.Level = jepsen.FGet, strings.ToLower(levelName(o.level))
			if o.level == levelBounded {
				op.MaxStaleness = int64(o.bound)
			}
		}
		switch o.outcome {
		case outcomeOK:
			op.Outcome = jepsen.OK
		case outcomeFail:
			op.Outcome = jepsen.Fail
		default:
			op.Outcome = jepsen.Unknown
		}
		out[i] = op
	}
	return out
}

// anomaliesOf lists the anomalies a jepsen checker found.
func anomaliesOf(r jepsen.Result) []anomaly {
	out := make([]anomaly, len(r.Anomalies))
	for i, a := range r.Anomalies {
		out[i] = anomaly{check: a.Kind, what: a.Detail, from: a.At, to: a.At}
	}
	return out
}

// anomalyCount is how many anomalies a jepsen checker found, listed or
// not.
func anomalyCount(r jepsen.Result) int { return int(r.Figures["anomalies_total"]) }

// reportResult fails t with the first few anomalies a jepsen checker
// found, and the faults in effect when they happened.
func reportResult(t *testing.T, h *opHistory, check string, r jepsen.Result) {
	t.Helper()
	if r.Note != "" {
		check += " (" + r.Note + ")"
	}
	reportAnomalies(t, h, check, anomaliesOf(r))
}

// illegalKeys names the keys whose history CheckLinearizable found has
// no linearization: it reports one "nonlinearizable" anomaly per key
// exactly when porcupine's verdict is Illegal.
func illegalKeys(r jepsen.Result) []string {
	var keys []string
	for _, a := range r.Anomalies {
		if a.Kind == "nonlinearizable" {
			keys = append(keys, a.Key)
		}
	}
	return keys
}

// linearizability is the verdict of checkLinearizable.
type linearizability struct {
	jepsen.Result
	// illegal names the keys whose history is not linearizable.
	illegal []string
	// visualization is porcupine's HTML view of the history when it is
	// not linearizable.
	visualization string
}

// verdict is porcupine's: Ok, Illegal, or Unknown when the search timed
// out.
func (l linearizability) verdict() string {
	switch {
	case l.Valid:
		return "Ok"
	case len(l.illegal) > 0:
		return "Illegal"
	}
	return "Unknown"
}

// took is how long the search took.
func (l linearizability) took() time.Duration {
	return time.Duration(l.Figures["search_ms"] * float64(time.Millisecond)).Round(time.Millisecond)
}

// checkLinearizable runs jepsen's CheckLinearizable on the puts and the
// LINEARIZABLE and LEASE gets of ops, with a register per key. A check
// that runs out of time is not Valid.
func checkLinearizable(t *testing.T, ops []jepsen.Op, timeout time.Duration) linearizability {
	t.Helper()
	res, info := jepsen.CheckLinearizable(ops, linLevels, timeout)
	out := linearizability{Result: res, illegal: illegalKeys(res)}
	if res.Valid {
		return out
	}
	f, err := os.CreateTemp("", "elcache-linearizability-*.html")
	if err != nil {
		t.Logf("cannot write the visualization: %v", err)
		return out
	}
	f.Close()
	if err := porcupine.VisualizePath(jepsen.RegisterModel, info, f.Name()); err != nil {
		t.Logf("cannot write the visualization: %v", err)
		return out
	}
	out.visualization = f.Name()
	return out
}
