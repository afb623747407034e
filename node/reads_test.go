package node_test

// Tests of the read levels' promises under faults. Concurrent clients
// record a history (every call and return on one monotonic clock) while a
// nemesis partitions, pauses and kills nodes; checkers then test the
// history against what each level promises:
//
//   - LINEARIZABLE and LEASE: the puts and these reads are linearizable
//     (porcupine, a register per key).
//   - BOUNDED: a read reflects every put acknowledged more than its bound
//     before it began.
//   - SESSION: a client reads its own writes and never reads backwards.
//   - EVENTUAL: once faults heal, every replica converges on the value a
//     linearizable read returns.
//
// The history and the checks know nothing of the cluster, so that a
// Jepsen-style suite can reuse them with another recorder.

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/ring"
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

// clientSpec is what one client of a workload does.
type clientSpec struct {
	// level of its gets; a client that only puts leaves it unspecified.
	level cachev1.Consistency
	bound time.Duration // BOUNDED: the max staleness
	// putShare is the share of its operations that are puts.
	putShare float64
	// nodes it sends requests to, one at random per operation.
	nodes []int
	keys  []string
}

// workload runs clients against a cluster and records what they see in a
// history. Each client has one request outstanding at a time and a
// deadline on each, so that a paused node does not stall it for long.
type workload struct {
	h *opHistory
	// conns by node index; a restarted node keeps its address.
	conns   []cachev1.CacheClient
	seed    uint64
	timeout time.Duration
	// checked counts, per key, the operations the linearizability checker
	// will see (puts and LINEARIZABLE and LEASE gets); clients leave a key
	// alone after limit, so that porcupine stays fast.
	checked map[string]*atomic.Int64
	limit   int64

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// newWorkload dials every node of c. The clients stop when the test ends
// if Stop was not called before.
func newWorkload(t *testing.T, c *nodetest.Cluster, h *opHistory, seed uint64, keys []string) *workload {
	t.Helper()
	w := &workload{h: h, seed: seed, timeout: time.Second, checked: make(map[string]*atomic.Int64),
		limit: 2000, stop: make(chan struct{})}
	for _, n := range c.Nodes {
		w.conns = append(w.conns, dialReads(t, n.Addr()))
	}
	for _, k := range keys {
		w.checked[k] = new(atomic.Int64)
	}
	t.Cleanup(w.Stop)
	return w
}

// dialReads dials addr with short reconnect backoff, so that a client
// reaches a restarted node soon after it is back.
func dialReads(t *testing.T, addr string) cachev1.CacheClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: time.Second, Backoff: backoff.Config{
			BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cachev1.NewCacheClient(conn)
}

// Start starts one client per spec; client ids are indexes into specs.
func (w *workload) Start(specs []clientSpec) {
	for id, s := range specs {
		w.wg.Add(1)
		go w.client(id, s)
	}
}

// Stop stops the clients and waits until their last requests returned.
func (w *workload) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
}

func (w *workload) client(id int, s clientSpec) {
	defer w.wg.Done()
	rng := rand.New(rand.NewPCG(w.seed, uint64(id)))
	tokens := make(map[uint32]*cachev1.SessionToken)
	checked := s.level == levelLinearizable || s.level == levelLease
	for seq := 1; ; seq++ {
		select {
		case <-w.stop:
			return
		default:
		}
		put := rng.Float64() < s.putShare
		node := s.nodes[rng.IntN(len(s.nodes))]
		key, ok := w.pick(rng, s.keys, put || checked)
		if !ok {
			// Every key has had its share: idle until stopped.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		var o opRecord
		if put {
			o = w.put(id, node, key, fmt.Sprintf("c%d-%d", id, seq), tokens)
		} else {
			o = w.get(id, node, key, s, tokens)
		}
		if put || (checked && o.outcome == outcomeOK) {
			w.checked[key].Add(1)
		}
		// A little think time leaves CPU to the nodes on small machines;
		// after an error, a back-off, as a real client would.
		pause := time.Duration(rng.IntN(3)) * time.Millisecond
		if o.outcome != outcomeOK {
			pause = 20 * time.Millisecond
		}
		time.Sleep(pause)
	}
}

// pick returns a random key, of those that have not had their share of
// checked operations if the operation will be checked.
func (w *workload) pick(rng *rand.Rand, keys []string, checked bool) (string, bool) {
	start := rng.IntN(len(keys))
	for i := range keys {
		k := keys[(start+i)%len(keys)]
		if !checked || w.checked[k].Load() < w.limit {
			return k, true
		}
	}
	return "", false
}

func (w *workload) put(id, node int, key, value string, tokens map[uint32]*cachev1.SessionToken) opRecord {
	o := opRecord{client: id, kind: opPut, key: key, value: value, node: node}
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	o.call = w.h.now()
	resp, err := w.conns[node].Put(ctx, &cachev1.PutRequest{Key: []byte(key), Value: []byte(value)})
	o.ret = w.h.now()
	cancel()
	if err != nil {
		o.outcome, o.err = outcomeUnknown, errString(err)
	} else {
		o.version, o.servedBy = resp.Version, resp.Meta.GetServedBy()
		keepToken(tokens, resp.Meta.GetSessionToken())
	}
	w.h.add(o)
	return o
}

func (w *workload) get(id, node int, key string, s clientSpec, tokens map[uint32]*cachev1.SessionToken) opRecord {
	o := opRecord{client: id, kind: opGet, key: key, level: s.level, bound: s.bound, node: node}
	opts := &cachev1.ReadOptions{Consistency: s.level}
	if s.level == levelBounded {
		opts.MaxStaleness = durationpb.New(s.bound)
	}
	if s.level == levelSession {
		for _, tok := range tokens {
			opts.SessionTokens = append(opts.SessionTokens, tok)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	o.call = w.h.now()
	resp, err := w.conns[node].Get(ctx, &cachev1.GetRequest{Key: []byte(key), Options: opts})
	o.ret = w.h.now()
	cancel()
	if err != nil {
		o.outcome, o.err = outcomeFail, errString(err)
	} else {
		o.found, o.servedBy, o.meta = resp.Found, resp.Meta.GetServedBy(), resp.Meta
		if resp.Found {
			o.value, o.version = string(resp.Entry.GetValue()), resp.Entry.GetVersion()
		}
		keepToken(tokens, resp.Meta.GetSessionToken())
	}
	w.h.add(o)
	return o
}

func errString(err error) string {
	s := status.Convert(err)
	return fmt.Sprintf("%s: %s", s.Code(), s.Message())
}

// keepToken keeps, per partition, the session token of the highest index;
// a token of another epoch (a recreated log) replaces the one kept.
func keepToken(tokens map[uint32]*cachev1.SessionToken, tok *cachev1.SessionToken) {
	if tok == nil || tokens == nil {
		return
	}
	cur := tokens[tok.Partition]
	if cur == nil || cur.Epoch != tok.Epoch || tok.Index > cur.Index {
		tokens[tok.Partition] = tok
	}
}

// converge waits, with every fault lifted and no client writing, until
// the EVENTUAL reads of each key on every node return the version a
// LINEARIZABLE read returns, and reports the keys that did not get there
// by the deadline. Its reads are recorded as client id.
func (w *workload) converge(id int, keys []string, deadline time.Time) []anomaly {
	var out []anomaly
	for _, k := range keys {
		for attempt := 0; ; attempt++ {
			lin := w.read(id, attempt%len(w.conns), k, levelLinearizable)
			var differ []string
			if lin.outcome != outcomeOK {
				differ = append(differ, fmt.Sprintf("linearizable read failed: %v", lin))
			} else {
				for i := range w.conns {
					ev := w.read(id, i, k, levelEventual)
					if ev.outcome != outcomeOK || ev.found != lin.found || ev.version != lin.version {
						differ = append(differ, ev.String())
					}
				}
			}
			if len(differ) == 0 {
				break
			}
			if time.Now().After(deadline) {
				out = append(out, anomaly{"convergence", lin, "replicas still differ: " + strings.Join(differ, "; ")})
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return out
}

// read is one recorded get.
func (w *workload) read(id, node int, key string, level cachev1.Consistency) opRecord {
	return w.get(id, node, key, clientSpec{level: level}, nil)
}

// nemesis injects faults into a cluster in a fixed cycle with seeded
// durations: it cuts off, then pauses, then kills and restarts the node
// that leads most of the test keys, and lets the cluster settle after
// each. It runs on the test goroutine.
type nemesis struct {
	t      *testing.T
	c      *nodetest.Cluster
	h      *opHistory
	conns  []cachev1.CacheClient
	rng    *rand.Rand
	keys   []string
	ring   ring.Partitioner
	paused int // the paused node, or -1
}

func newNemesis(t *testing.T, c *nodetest.Cluster, w *workload, keys []string) *nemesis {
	pr, err := ring.NewPartitioner(c.Configs[0].Partitions)
	if err != nil {
		t.Fatal(err)
	}
	n := &nemesis{t: t, c: c, h: w.h, conns: w.conns, rng: rand.New(rand.NewPCG(w.seed, 1<<32)),
		keys: keys, ring: pr, paused: -1}
	// A test that fails while a node is paused must still close it.
	t.Cleanup(func() {
		if n.paused >= 0 && c.Nodes[n.paused] != nil {
			c.Resume(n.paused)
		}
	})
	return n
}

// jitter returns a duration in [d, d+spread).
func (n *nemesis) jitter(d, spread time.Duration) time.Duration {
	return d + time.Duration(n.rng.Int64N(int64(spread)))
}

// run injects faults until d has passed, at least one full cycle.
func (n *nemesis) run(d time.Duration) {
	began := time.Now()
	for cycle := 0; cycle == 0 || time.Since(began) < d; cycle++ {
		n.settle()
		n.inject("partition", func(i int) { n.c.Partition(i) }, func(int) { n.c.Heal() }, n.jitter(1500*time.Millisecond, 300*time.Millisecond))
		n.settle()
		n.inject("pause", func(i int) { n.c.Pause(i); n.paused = i }, func(i int) { n.c.Resume(i); n.paused = -1 },
			n.jitter(1500*time.Millisecond, 500*time.Millisecond))
		n.settle()
		n.inject("kill", func(i int) { n.c.Kill(i) }, func(i int) { n.c.Restart(i) }, n.jitter(800*time.Millisecond, 400*time.Millisecond))
	}
	n.settle()
}

// inject applies a fault to the node leading most test keys for hold.
func (n *nemesis) inject(what string, apply, lift func(i int), hold time.Duration) {
	i := n.target()
	f := n.h.startFault(fmt.Sprintf("%s n%d", what, i))
	apply(i)
	time.Sleep(hold)
	lift(i)
	n.h.endFault(f)
}

// settle waits until the cluster has converged, then lets the clients run
// on a healthy cluster for a moment.
func (n *nemesis) settle() {
	n.c.WaitConverged(60 * time.Second)
	time.Sleep(n.jitter(300*time.Millisecond, 400*time.Millisecond))
}

// target returns the node that leads the most partitions of the test
// keys, as the first running node sees it.
func (n *nemesis) target() int {
	return leaderOfMost(n.t, n.c, n.conns, n.ring, n.keys)
}

// leaderOfMost returns the index of the node leading the most partitions
// of keys, the lowest index on a tie.
func leaderOfMost(t *testing.T, c *nodetest.Cluster, conns []cachev1.CacheClient, pr ring.Partitioner, keys []string) int {
	t.Helper()
	leaders := partitionLeaders(t, c, conns)
	count := make([]int, len(c.Nodes))
	for _, k := range keys {
		if i := leaders[pr.Partition([]byte(k))]; i >= 0 {
			count[i]++
		}
	}
	best := c.Running()[0]
	for i, k := range count {
		if k > count[best] {
			best = i
		}
	}
	return best
}

// partitionLeaders returns each partition's leader's node index (or -1)
// as the first running node sees it.
func partitionLeaders(t *testing.T, c *nodetest.Cluster, conns []cachev1.CacheClient) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo, err := conns[c.Running()[0]].Topology(ctx, &cachev1.TopologyRequest{})
	if err != nil {
		t.Fatalf("topology: %v", err)
	}
	out := make([]int, len(topo.Partitions))
	for i, p := range topo.Partitions {
		out[i] = c.Index(p.Leader)
	}
	return out
}

// testSeed returns ELCACHE_TEST_SEED, or a fresh seed.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("ELCACHE_TEST_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (set ELCACHE_TEST_SEED to replay the fault schedule and client choices)", seed)
	return seed
}

// TestReadLevelsUnderFaults runs clients at all five read levels against a
// three-node cluster while a nemesis partitions, pauses and kills the node
// leading most test keys, and checks every level's promise on the
// history. ELCACHE_TEST_HISTORY_SECONDS (default 12) sets how long the
// faults go on; the nemesis completes at least one cycle.
func TestReadLevelsUnderFaults(t *testing.T) {
	seconds := 12
	if v, err := strconv.Atoi(os.Getenv("ELCACHE_TEST_HISTORY_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	seed := testSeed(t)
	c := nodetest.StartCluster(t, 3)
	// One key per partition, so that every node leads some; more for long
	// histories, so that no key's history grows too long to check.
	var keys []string
	for i := 0; i <= seconds/15; i++ {
		keys = append(keys, keyPerPartition(t, c.Configs[0].Partitions, fmt.Sprintf("reads%d", i))...)
	}
	h := newOpHistory()
	w := newWorkload(t, c, h, seed, keys)
	all := []int{0, 1, 2}
	var specs []clientSpec
	for range 2 {
		specs = append(specs, clientSpec{putShare: 1, nodes: all, keys: keys})
	}
	for range 3 {
		specs = append(specs, clientSpec{level: levelSession, putShare: 0.3, nodes: all, keys: keys})
	}
	for _, level := range []cachev1.Consistency{levelLinearizable, levelLease, levelEventual} {
		for i := range 3 {
			specs = append(specs, clientSpec{level: level, nodes: []int{i}, keys: keys})
		}
	}
	// BOUNDED readers go to every node, so that each node serves every
	// bound.
	for _, bound := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second} {
		specs = append(specs, clientSpec{level: levelBounded, bound: bound, nodes: all, keys: keys})
	}
	w.Start(specs)
	newNemesis(t, c, w, keys).run(time.Duration(seconds) * time.Second)
	w.Stop()
	historyEnd := h.now()

	c.Heal()
	c.WaitConverged(60 * time.Second)
	convergence := w.converge(len(specs), keys, time.Now().Add(20*time.Second))
	ops := h.snapshot()
	lin := checkLinearizable(t, ops, 30*time.Second, levelLinearizable, levelLease)
	integrity := checkIntegrity(ops)
	stale := checkFreshness(ops, "linearizable freshness", boundOf(levelLinearizable, levelLease))
	bounded := checkFreshness(ops, "bounded staleness", boundOf(levelBounded))
	sessions := checkSessions(ops)
	t.Logf("history of %v, %d keys, %d clients:%s\nfaults:%s\nlinearizability: %s over %d operations in %v; anomalies: %d integrity, %d stale linearizable reads, %d bounded, %d session, %d convergence",
		nanos(historyEnd), len(keys), len(specs), summarize(ops), h.timeline(), lin.result, lin.ops, lin.took.Round(time.Millisecond),
		len(integrity), len(stale), len(bounded), len(sessions), len(convergence))
	if lin.result != porcupine.Ok {
		t.Errorf("LINEARIZABLE and LEASE reads: porcupine says %s; keys %v; visualization: %s", lin.result, lin.illegal, lin.visualization)
	}
	reportAnomalies(t, h, "integrity", integrity)
	reportAnomalies(t, h, "LINEARIZABLE and LEASE", stale)
	reportAnomalies(t, h, "BOUNDED", bounded)
	reportAnomalies(t, h, "SESSION", sessions)
	reportAnomalies(t, h, "EVENTUAL", convergence)
}

// TestBrokenLeaseIsCaught proves that the checkers can fail: with the
// lease check switched off, a paused leader keeps serving LEASE reads
// from its frozen state while the majority elects a new leader and
// acknowledges newer writes, and the linearizability checker must report
// it. The same scenario with the lease check on must pass.
func TestBrokenLeaseIsCaught(t *testing.T) {
	for _, tc := range []struct {
		name   string
		broken bool
	}{{"broken", true}, {"fixed", false}} {
		t.Run(tc.name, func(t *testing.T) { testPausedLeaseReads(t, tc.broken) })
	}
}

func testPausedLeaseReads(t *testing.T, broken bool) {
	seed := testSeed(t)
	c := nodetest.StartCluster(t, 3)
	for _, n := range c.Nodes {
		n.BreakLeaseForTest(broken)
	}
	h := newOpHistory()
	w := newWorkload(t, c, h, seed, nil)
	// The keys of the partitions that the victim leads.
	pr, err := ring.NewPartitioner(c.Configs[0].Partitions)
	if err != nil {
		t.Fatal(err)
	}
	all := keyPerPartition(t, pr.Count(), "lease")
	victim := leaderOfMost(t, c, w.conns, pr, all)
	leaders := partitionLeaders(t, c, w.conns)
	var keys []string
	for _, k := range all {
		if leaders[pr.Partition([]byte(k))] == victim && len(keys) < 4 {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		w.checked[k] = new(atomic.Int64)
	}
	var others []int
	for _, i := range c.Running() {
		if i != victim {
			others = append(others, i)
		}
	}
	t.Logf("victim n%d leads the partitions of %v", victim, keys)
	specs := []clientSpec{
		{putShare: 1, nodes: others, keys: keys},
		{putShare: 1, nodes: others, keys: keys},
		{level: levelLinearizable, nodes: others, keys: keys},
		{level: levelLease, nodes: others, keys: keys},
	}
	var victimReaders []int
	for range 3 {
		victimReaders = append(victimReaders, len(specs))
		specs = append(specs, clientSpec{level: levelLease, nodes: []int{victim}, keys: keys})
	}
	w.Start(specs)
	// Every key written and read through the victim before the pause.
	waitFor(t, 30*time.Second, "every key is written and read through the victim", func() bool {
		seen := make(map[string]int)
		h.view(func(ops []opRecord) {
			for _, o := range ops {
				if o.outcome != outcomeOK {
					continue
				}
				if o.kind == opPut && seen[o.key] == 0 {
					seen[o.key] = 1
				}
				if o.kind == opGet && o.node == victim && seen[o.key] == 1 {
					seen[o.key] = 2
				}
			}
		})
		for _, k := range keys {
			if seen[k] != 2 {
				return false
			}
		}
		return true
	})

	f := h.startFault(fmt.Sprintf("pause n%d", victim))
	paused := h.now()
	c.Pause(victim)
	resumed := false
	defer func() {
		if !resumed {
			c.Resume(victim)
		}
	}()
	// Hold the pause for at least 2s, and until the majority acknowledged
	// a write and reads on the victim that began after it have returned:
	// one that succeeded (a stale read, if the lease is broken) or five.
	minimum := time.Now().Add(2 * time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ack, after, okAfter := int64(-1), 0, 0
		h.view(func(ops []opRecord) {
			for _, o := range ops {
				if o.kind == opPut && o.outcome == outcomeOK && o.call > paused && (ack < 0 || o.ret < ack) {
					ack = o.ret
				}
			}
			for _, o := range ops {
				if ack >= 0 && o.kind == opGet && o.node == victim && o.call > ack {
					after++
					if o.outcome == outcomeOK {
						okAfter++
					}
				}
			}
		})
		if time.Now().After(minimum) && ack >= 0 && (okAfter > 0 || after >= 5) {
			t.Logf("paused n%d for %v: first write acknowledged by the majority %v into the pause; then %d LEASE reads on n%d returned, %d of them successfully",
				victim, nanos(h.now()-paused), nanos(ack-paused), after, victim, okAfter)
			break
		}
		if time.Now().After(deadline) {
			t.Logf("paused n%d for %v without the scenario completing: majority ack at %v (-1: none), %d reads after it on the victim",
				victim, nanos(h.now()-paused), nanos(ack), after)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Resume(victim)
	resumed = true
	h.endFault(f)
	c.WaitConverged(60 * time.Second)
	w.Stop()

	ops := h.snapshot()
	lin := checkLinearizable(t, ops, 30*time.Second, levelLinearizable, levelLease)
	stale := checkFreshness(ops, "linearizable freshness", boundOf(levelLinearizable, levelLease))
	t.Logf("lease check broken: %v; history:%s\nlinearizability: %s over %d operations in %v; %d stale reads; visualization: %s",
		broken, summarize(ops), lin.result, lin.ops, lin.took.Round(time.Millisecond), len(stale), lin.visualization)
	if !broken {
		if lin.result != porcupine.Ok {
			t.Errorf("with the lease check on, porcupine says %s; keys %v; visualization: %s", lin.result, lin.illegal, lin.visualization)
		}
		reportAnomalies(t, h, "LEASE on a paused leader", stale)
		return
	}
	if lin.result != porcupine.Illegal {
		t.Fatalf("the linearizability checker did not catch the broken lease: porcupine says %s, and %d reads are stale by the freshness check", lin.result, len(stale))
	}
	// The violation is expected: keep its visualization only if the test
	// fails for another reason.
	t.Cleanup(func() {
		if !t.Failed() {
			os.Remove(lin.visualization)
		}
	})
	for _, a := range stale[:min(len(stale), 3)] {
		t.Logf("caught as expected: %v", a)
	}
	var onVictim int
	for _, a := range stale {
		if slices.Contains(victimReaders, a.op.client) {
			onVictim++
		}
	}
	if onVictim == 0 {
		t.Errorf("porcupine reports keys %v, but no stale read was served through the paused n%d (%d stale reads elsewhere)", lin.illegal, victim, len(stale))
	}
}

// TestReadCheckers runs the checkers on small hand-written histories, so
// that each is seen to accept what its promise allows and to report what
// it forbids.
func TestReadCheckers(t *testing.T) {
	// put and get build operations; times are in nanoseconds.
	put := func(client int, value string, version uint64, call, ret int64) opRecord {
		return opRecord{client: client, kind: opPut, key: "k", value: value, version: version, call: call, ret: ret}
	}
	unknown := func(client int, value string, call, ret int64) opRecord {
		return opRecord{client: client, kind: opPut, key: "k", value: value, call: call, ret: ret, outcome: outcomeUnknown}
	}
	get := func(client int, level cachev1.Consistency, value string, version uint64, call, ret int64) opRecord {
		return opRecord{client: client, kind: opGet, key: "k", level: level, value: value, found: value != "",
			version: version, call: call, ret: ret}
	}
	bounded := func(bound time.Duration, value string, version uint64, call, ret int64) opRecord {
		o := get(9, levelBounded, value, version, call, ret)
		o.bound = bound
		return o
	}
	for _, tc := range []struct {
		name    string
		ops     []opRecord
		illegal bool
		want    map[string]int // anomalies per check
	}{
		{name: "fresh linearizable read", ops: []opRecord{
			put(0, "a", 5, 0, 10), get(1, levelLinearizable, "a", 5, 20, 30)}},
		{name: "concurrent read may see either", ops: []opRecord{
			put(0, "a", 5, 0, 10), put(0, "b", 6, 20, 40), get(1, levelLease, "a", 5, 25, 30), get(2, levelLease, "b", 6, 25, 30)}},
		{name: "stale linearizable read", illegal: true, want: map[string]int{"linearizable freshness": 1}, ops: []opRecord{
			put(0, "a", 5, 0, 10), put(0, "b", 6, 20, 30), get(1, levelLease, "a", 5, 40, 50)}},
		{name: "reads go back in real time", illegal: true, ops: []opRecord{
			put(0, "a", 5, 0, 10), put(0, "b", 6, 20, 100),
			get(1, levelLinearizable, "b", 6, 30, 40), get(2, levelLinearizable, "a", 5, 50, 60)}},
		{name: "unknown put observed later", ops: []opRecord{
			put(0, "a", 5, 0, 10), unknown(0, "b", 20, 30), get(1, levelLinearizable, "b", 6, 100, 110)}},
		{name: "unknown put never observed", ops: []opRecord{
			put(0, "a", 5, 0, 10), unknown(0, "b", 20, 30), get(1, levelLinearizable, "a", 5, 100, 110)}},
		{name: "bounded read within its bound", ops: []opRecord{
			put(0, "a", 5, 0, 10), put(0, "b", 6, 20, 30), bounded(100, "a", 5, 40, 50)}},
		{name: "bounded read past its bound", want: map[string]int{"bounded staleness": 1}, ops: []opRecord{
			put(0, "a", 5, 0, 10), put(0, "b", 6, 20, 30), bounded(5, "a", 5, 40, 50)}},
		{name: "bounded read misses a written key", want: map[string]int{"bounded staleness": 1}, ops: []opRecord{
			put(0, "a", 5, 0, 10), bounded(5, "", 0, 40, 50)}},
		{name: "session reads its writes", ops: []opRecord{
			put(1, "a", 5, 0, 10), get(1, levelSession, "a", 5, 20, 30), put(2, "b", 6, 40, 50), get(1, levelSession, "a", 5, 60, 70)}},
		{name: "session misses its write", want: map[string]int{"read-your-writes": 1}, ops: []opRecord{
			put(1, "a", 5, 0, 10), get(1, levelSession, "", 0, 20, 30)}},
		{name: "session reads backwards", want: map[string]int{"monotonic reads": 1}, ops: []opRecord{
			put(0, "a", 5, 0, 10), put(0, "b", 6, 20, 30), get(1, levelSession, "b", 6, 40, 50), get(1, levelSession, "a", 5, 60, 70)}},
		{name: "read version differs from the put's", want: map[string]int{"integrity": 1}, ops: []opRecord{
			put(0, "a", 5, 0, 10), get(1, levelEventual, "a", 9, 20, 30)}},
		{name: "read a value never written", want: map[string]int{"integrity": 1}, ops: []opRecord{
			put(0, "a", 5, 0, 10), get(1, levelEventual, "z", 9, 20, 30)}},
		{name: "versions go back", want: map[string]int{"integrity": 1}, ops: []opRecord{
			put(0, "a", 6, 0, 10), put(0, "b", 5, 20, 30)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hist := linearizabilityHistory(tc.ops, levelLinearizable, levelLease)
			res := porcupine.CheckOperationsTimeout(registerModel(), hist, 10*time.Second)
			if want := map[bool]porcupine.CheckResult{false: porcupine.Ok, true: porcupine.Illegal}[tc.illegal]; res != want {
				t.Errorf("porcupine: %s, want %s", res, want)
			}
			var all []anomaly
			all = append(all, checkIntegrity(tc.ops)...)
			all = append(all, checkFreshness(tc.ops, "linearizable freshness", boundOf(levelLinearizable, levelLease))...)
			all = append(all, checkFreshness(tc.ops, "bounded staleness", boundOf(levelBounded))...)
			all = append(all, checkSessions(tc.ops)...)
			got := make(map[string]int)
			for _, a := range all {
				got[a.check]++
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("anomalies %v, want %v: %v", got, tc.want, all)
			}
		})
	}
}
