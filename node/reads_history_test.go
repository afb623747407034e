package node_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

const (
	levelLinearizable = cachev1.Consistency_CONSISTENCY_LINEARIZABLE
	levelLease        = cachev1.Consistency_CONSISTENCY_LEASE
	levelBounded      = cachev1.Consistency_CONSISTENCY_BOUNDED
	levelSession      = cachev1.Consistency_CONSISTENCY_SESSION
	levelEventual     = cachev1.Consistency_CONSISTENCY_EVENTUAL
)

// opKind is what an operation does.
type opKind uint8

const (
	opPut opKind = iota
	opGet
)

// outcome is what a client knows about an operation once it returned.
type outcome uint8

const (
	// outcomeOK: the put took effect, or the get returned a value.
	outcomeOK outcome = iota
	// outcomeFail: the operation had no effect. Only gets fail: a get that
	// errored is left out of every check.
	outcomeFail
	// outcomeUnknown: a put that errored may have taken effect, at any
	// time after its call.
	outcomeUnknown
)

// opRecord is one client operation.
type opRecord struct {
	client int
	kind   opKind
	key    string
	// value is the value written, or the value read ("" when the key was
	// not found). Every put writes a value no other put writes.
	value   string
	found   bool   // gets
	version uint64 // of the put, or of the entry read (0 when not found)
	level   cachev1.Consistency
	bound   time.Duration // BOUNDED gets: the max staleness asked for
	node    int           // index of the node the request was sent to
	// servedBy is the node name that answered (a read's replica, a put's
	// leader).
	servedBy string
	// meta is the proof a successful get came with, for reports.
	meta *cachev1.ReadMeta
	// call and ret are nanoseconds since the history began.
	call, ret int64
	outcome   outcome
	err       string
}

func (o opRecord) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "c%d ", o.client)
	if o.kind == opPut {
		fmt.Fprintf(&b, "put %s=%s", o.key, o.value)
	} else {
		fmt.Fprintf(&b, "get %s %s", o.key, levelName(o.level))
		if o.level == levelBounded {
			fmt.Fprintf(&b, "(%v)", o.bound)
		}
	}
	fmt.Fprintf(&b, " via n%d", o.node)
	switch {
	case o.outcome != outcomeOK:
		fmt.Fprintf(&b, " -> error %s", o.err)
	case o.kind == opPut:
		fmt.Fprintf(&b, " -> v%d by %s", o.version, o.servedBy)
	case o.found:
		fmt.Fprintf(&b, " -> %s@v%d by %s", o.value, o.version, o.servedBy)
	default:
		fmt.Fprintf(&b, " -> absent by %s", o.servedBy)
	}
	if m := o.meta; m != nil {
		fmt.Fprintf(&b, " (%s, applied %d, leader commit %d, staleness %v)", strings.TrimPrefix(m.Role.String(), "ROLE_"),
			m.AppliedIndex, m.LeaderCommitIndex, m.Staleness.AsDuration())
	}
	fmt.Fprintf(&b, " [%v, %v]", nanos(o.call), nanos(o.ret))
	return b.String()
}

func levelName(l cachev1.Consistency) string {
	return strings.TrimPrefix(l.String(), "CONSISTENCY_")
}

func nanos(ns int64) time.Duration { return time.Duration(ns).Round(time.Microsecond) }

// faultRecord is a fault the nemesis injected, from start to end.
type faultRecord struct {
	what       string
	start, end int64
}

// opHistory records the operations of concurrent clients, and the faults
// injected meanwhile, on one monotonic clock.
type opHistory struct {
	base time.Time

	mu     sync.Mutex
	ops    []opRecord
	faults []faultRecord
}

func newOpHistory() *opHistory { return &opHistory{base: time.Now()} }

// now returns the time since the history began; time.Since reads the
// monotonic clock.
func (h *opHistory) now() int64 { return int64(time.Since(h.base)) }

func (h *opHistory) add(o opRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, o)
}

// view calls fn with the operations recorded so far; fn must not keep
// the slice.
func (h *opHistory) view(fn func([]opRecord)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn(h.ops)
}

// snapshot returns a copy of the operations recorded so far.
func (h *opHistory) snapshot() []opRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// startFault records that a fault begins now and returns its index for
// endFault.
func (h *opHistory) startFault(what string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, faultRecord{what: what, start: h.now(), end: -1})
	return len(h.faults) - 1
}

func (h *opHistory) endFault(i int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults[i].end = h.now()
}

// faultsDuring names the faults in effect at some time between from and
// to, for reports.
func (h *opHistory) faultsDuring(from, to int64) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var in []string
	for _, f := range h.faults {
		if f.start <= to && (f.end < 0 || f.end >= from) {
			in = append(in, f.what)
		}
	}
	if len(in) == 0 {
		return "no fault"
	}
	return strings.Join(in, ", ")
}

// timeline describes the faults injected.
func (h *opHistory) timeline() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, f := range h.faults {
		fmt.Fprintf(&b, "\n  %s from %v to %v", f.what, nanos(f.start), nanos(f.end))
	}
	return b.String()
}

// summarize counts operations by kind, level and outcome, with the most
// frequent errors of each.
func summarize(ops []opRecord) string {
	type counts struct {
		ok, fail, unknown int
		errs              map[string]int
	}
	by := make(map[string]*counts)
	for _, o := range ops {
		name := "put"
		if o.kind == opGet {
			name = "get " + levelName(o.level)
		}
		c := by[name]
		if c == nil {
			c = &counts{errs: make(map[string]int)}
			by[name] = c
		}
		switch o.outcome {
		case outcomeOK:
			c.ok++
			continue
		case outcomeFail:
			c.fail++
		default:
			c.unknown++
		}
		// Numbers (partitions, indexes, addresses) would make every
		// message unique.
		msg := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return '#'
			}
			return r
		}, o.err)
		c.errs[msg[:min(len(msg), 100)]]++
	}
	names := make([]string, 0, len(by))
	for name := range by {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		c := by[name]
		fmt.Fprintf(&b, "\n  %-17s %6d ok %5d failed", name, c.ok, c.fail)
		if name == "put" {
			fmt.Fprintf(&b, " %5d unknown", c.unknown)
		}
		errs := make([]string, 0, len(c.errs))
		for e := range c.errs {
			errs = append(errs, e)
		}
		sort.Slice(errs, func(i, j int) bool { return c.errs[errs[i]] > c.errs[errs[j]] })
		for _, e := range errs[:min(len(errs), 3)] {
			fmt.Fprintf(&b, "\n      %5d x %s", c.errs[e], e)
		}
	}
	return b.String()
}
