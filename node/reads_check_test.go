package node_test

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// anomaly is an operation that breaks a promise.
type anomaly struct {
	check string // the promise
	op    opRecord
	why   string
}

func (a anomaly) String() string { return fmt.Sprintf("%s: %v: %s", a.check, a.op, a.why) }

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
		fmt.Fprintf(&b, "\n  %v (during %s)", a, h.faultsDuring(a.op.call, a.op.ret))
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
				out = append(out, anomaly{"integrity", o, fmt.Sprintf("version not above v%d of %v, acknowledged before this put began", prev.version, prev)})
			}
			continue
		}
		if !o.found {
			continue
		}
		p, ok := puts[o.value]
		switch {
		case !ok || p.key != o.key:
			out = append(out, anomaly{"integrity", o, "read a value no put of this key wrote"})
		case p.call > o.ret:
			out = append(out, anomaly{"integrity", o, fmt.Sprintf("read a value before its put %v began", p)})
		case p.outcome == outcomeOK && p.version != o.version:
			out = append(out, anomaly{"integrity", o, fmt.Sprintf("read version v%d, but the put was acknowledged as v%d", o.version, p.version)})
		}
	}
	return out
}

// checkFreshness checks that every successful get that bound selects
// reflects every put acknowledged more than its bound before the get
// began: it returns that put's version or a higher one. A bound of zero is
// a necessary condition of linearizability that names the stale read,
// where porcupine only says that a key's history is illegal.
func checkFreshness(ops []opRecord, check string, bound func(opRecord) (time.Duration, bool)) []anomaly {
	acks := newAckIndex(ops)
	var out []anomaly
	for _, o := range ops {
		if o.kind != opGet || o.outcome != outcomeOK {
			continue
		}
		b, ok := bound(o)
		if !ok {
			continue
		}
		floor, ok := acks.newestBefore(o.key, o.call-int64(b))
		if !ok || (o.found && o.version >= floor.version) {
			continue
		}
		out = append(out, anomaly{check, o, fmt.Sprintf("stale by %v: %v was acknowledged %v before the read began",
			nanos(o.ret-floor.ret), floor, nanos(o.call-floor.ret))})
	}
	return out
}

// boundOf selects the gets at levels for checkFreshness, with the bound
// each level promises: its max staleness for BOUNDED, zero for the
// linearizable levels.
func boundOf(levels ...cachev1.Consistency) func(opRecord) (time.Duration, bool) {
	return func(o opRecord) (time.Duration, bool) {
		if !slices.Contains(levels, o.level) {
			return 0, false
		}
		if o.level == levelBounded {
			return o.bound, true
		}
		return 0, true
	}
}

// checkSessions checks every client that reads at SESSION: it reads its
// own acknowledged writes, and its reads of a key never go back to a
// lower version. A client has one operation outstanding at a time, so its
// operations in call order are its program order.
func checkSessions(ops []opRecord) []anomaly {
	byClient := make(map[int][]opRecord)
	session := make(map[int]bool)
	for _, o := range ops {
		byClient[o.client] = append(byClient[o.client], o)
		session[o.client] = session[o.client] || (o.kind == opGet && o.level == levelSession)
	}
	var out []anomaly
	for c, cops := range byClient {
		if !session[c] {
			continue
		}
		sort.Slice(cops, func(i, j int) bool { return cops[i].call < cops[j].call })
		wrote := make(map[string]opRecord) // the highest version this client wrote
		read := make(map[string]opRecord)  // the highest version it read
		for _, o := range cops {
			if o.outcome != outcomeOK {
				continue
			}
			if o.kind == opPut {
				if o.version > wrote[o.key].version {
					wrote[o.key] = o
				}
				continue
			}
			if o.level != levelSession {
				continue
			}
			if w, ok := wrote[o.key]; ok && (!o.found || o.version < w.version) {
				out = append(out, anomaly{"read-your-writes", o, fmt.Sprintf("the session wrote v%d before: %v", w.version, w)})
			}
			if r, ok := read[o.key]; ok && r.found && (!o.found || o.version < r.version) {
				out = append(out, anomaly{"monotonic reads", o, fmt.Sprintf("the session read v%d before: %v", r.version, r)})
			}
			if r, ok := read[o.key]; !ok || o.version > r.version {
				read[o.key] = o
			}
		}
	}
	return out
}

// registerInput is one operation on a key's register for porcupine: a
// put of value, or a get (its output is the value read, "" when absent).
type registerInput struct {
	key   string
	put   bool
	value string
}

// registerModel is a register per key, initially absent.
func registerModel() porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byKey := make(map[string]int)
			var out [][]porcupine.Operation
			for _, op := range history {
				k := op.Input.(registerInput).key
				i, ok := byKey[k]
				if !ok {
					i = len(out)
					byKey[k] = i
					out = append(out, nil)
				}
				out[i] = append(out[i], op)
			}
			return out
		},
		Init: func() any { return "" },
		Step: func(state, input, output any) (bool, any) {
			in := input.(registerInput)
			if in.put {
				return true, in.value
			}
			return output.(string) == state.(string), state
		},
		DescribeOperation: func(input, output any) string {
			in := input.(registerInput)
			if in.put {
				return fmt.Sprintf("put(%s, %s)", in.key, in.value)
			}
			if output.(string) == "" {
				return fmt.Sprintf("get(%s) -> absent", in.key)
			}
			return fmt.Sprintf("get(%s) -> %s", in.key, output)
		},
		DescribeState: func(state any) string {
			if state.(string) == "" {
				return "absent"
			}
			return state.(string)
		},
		DescribeOperationMetadata: func(info any) string {
			if info == nil {
				return ""
			}
			return info.(string)
		},
	}
}

// linearizabilityHistory turns ops into a porcupine history: every
// acknowledged put, the successful gets at levels, and the puts of
// unknown outcome that one of those gets observed, open until after the
// end of the history (they may take effect any time after their call).
// An unknown put that no get observed is left out: it may as well not
// have happened, and a write never read changes nothing a linearization
// can see.
func linearizabilityHistory(ops []opRecord, levels ...cachev1.Consistency) []porcupine.Operation {
	observed := make(map[string]bool)
	var end int64
	maxClient := 0
	for _, o := range ops {
		end = max(end, o.call, o.ret)
		maxClient = max(maxClient, o.client)
		if o.kind == opGet && o.outcome == outcomeOK && o.found && slices.Contains(levels, o.level) {
			observed[o.value] = true
		}
	}
	end += int64(time.Second)
	var out []porcupine.Operation
	open := 0
	for _, o := range ops {
		switch {
		case o.kind == opPut && o.outcome == outcomeOK:
			out = append(out, porcupine.Operation{ClientId: o.client, Call: o.call, Return: o.ret,
				Input: registerInput{key: o.key, put: true, value: o.value}, Metadata: o.String()})
		case o.kind == opPut && o.outcome == outcomeUnknown && observed[o.value]:
			// Its own row: it overlaps its client's later operations.
			open++
			out = append(out, porcupine.Operation{ClientId: maxClient + open, Call: o.call, Return: end,
				Input: registerInput{key: o.key, put: true, value: o.value}, Metadata: o.String()})
		case o.kind == opGet && o.outcome == outcomeOK && slices.Contains(levels, o.level):
			out = append(out, porcupine.Operation{ClientId: o.client, Call: o.call, Return: o.ret,
				Input: registerInput{key: o.key}, Output: o.value, Metadata: o.String()})
		}
	}
	return out
}

// linearizability is the verdict of checkLinearizable.
type linearizability struct {
	result porcupine.CheckResult
	ops    int
	// illegal names the keys whose history is not linearizable.
	illegal []string
	// visualization is porcupine's HTML view of the history when it is
	// not Ok.
	visualization string
	took          time.Duration
}

// checkLinearizable checks that the puts of ops and the successful gets
// at levels are linearizable, with a register per key. A check that runs
// out of time is Unknown.
func checkLinearizable(t *testing.T, ops []opRecord, timeout time.Duration, levels ...cachev1.Consistency) linearizability {
	t.Helper()
	model := registerModel()
	hist := linearizabilityHistory(ops, levels...)
	began := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, hist, timeout)
	out := linearizability{result: res, ops: len(hist), took: time.Since(began)}
	if res == porcupine.Ok {
		return out
	}
	for _, part := range model.Partition(hist) {
		if porcupine.CheckOperationsTimeout(model, part, timeout) != porcupine.Ok {
			out.illegal = append(out.illegal, part[0].Input.(registerInput).key)
		}
	}
	f, err := os.CreateTemp("", "elcache-linearizability-*.html")
	if err != nil {
		t.Logf("cannot write the visualization: %v", err)
		return out
	}
	f.Close()
	if err := porcupine.VisualizePath(model, info, f.Name()); err != nil {
		t.Logf("cannot write the visualization: %v", err)
		return out
	}
	out.visualization = f.Name()
	return out
}
