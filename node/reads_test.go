package node_test

// Tests of the read levels' promises under faults. Concurrent clients
// record a history (every call and return on one monotonic clock) while a
// nemesis partitions, pauses and kills nodes; checkers then test the
// history against what each level promises. The checkers are the jepsen
// suite's, run on the history converted to its operations
// (reads_check_test.go):
//
//   - LINEARIZABLE and LEASE: the puts and these reads are linearizable
//     (jepsen.CheckLinearizable: porcupine, a register per key), and no
//     read misses a put acknowledged before it began
//     (jepsen.CheckRealtime, which names the stale read).
//   - BOUNDED: a read reflects every put acknowledged more than its bound
//     before it began, and its proof claims no more staleness than that
//     (jepsen.CheckBounded).
//   - SESSION: a client reads its own writes and never reads backwards
//     (jepsen.CheckSession).
//   - EVENTUAL: once faults heal, every replica converges on the value a
//     linearizable read returns (converge, here).
//
// Every level also keeps integrity (checkIntegrity, here: jepsen has no
// such checker): a read returns a value a put of its key wrote, with the
// put's version, and versions grow in real time.

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elcache/elcache/jepsen"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/ring"
)

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
	jops := jepsenOps(ops)
	lin := checkLinearizable(t, jops, 30*time.Second)
	integrity := checkIntegrity(ops)
	stale := jepsen.CheckRealtime(jops, linLevels)
	bounded := jepsen.CheckBounded(jops)
	sessions := jepsen.CheckSession(jops)
	t.Logf("history of %v, %d keys, %d clients:%s\nfaults:%s\nlinearizability: %s over %d operations in %v; anomalies: %d integrity, %d stale linearizable reads, %d bounded, %d session, %d convergence",
		nanos(historyEnd), len(keys), len(specs), summarize(ops), h.timeline(), lin.verdict(), lin.Ops, lin.took(),
		len(integrity), anomalyCount(stale), anomalyCount(bounded), anomalyCount(sessions), len(convergence))
	if !lin.Valid {
		t.Errorf("LINEARIZABLE and LEASE reads: porcupine says %s (%s); keys %v; visualization: %s", lin.verdict(), lin.Note, lin.illegal, lin.visualization)
	}
	reportAnomalies(t, h, "integrity", integrity)
	reportResult(t, h, "LINEARIZABLE and LEASE", stale)
	reportResult(t, h, "BOUNDED", bounded)
	reportResult(t, h, "SESSION", sessions)
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
	for _, h := range c.Hooks {
		h.BreakLease(broken)
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
	jops := jepsenOps(ops)
	lin := checkLinearizable(t, jops, 30*time.Second)
	stale := jepsen.CheckRealtime(jops, linLevels)
	t.Logf("lease check broken: %v; history:%s\nlinearizability: %s over %d operations in %v; %d stale reads; visualization: %s",
		broken, summarize(ops), lin.verdict(), lin.Ops, lin.took(), anomalyCount(stale), lin.visualization)
	if !broken {
		if !lin.Valid {
			t.Errorf("with the lease check on, porcupine says %s (%s); keys %v; visualization: %s", lin.verdict(), lin.Note, lin.illegal, lin.visualization)
		}
		reportResult(t, h, "LEASE on a paused leader", stale)
		return
	}
	if len(lin.illegal) == 0 {
		t.Fatalf("the linearizability checker did not catch the broken lease: porcupine says %s, and %d reads are stale by the freshness check", lin.verdict(), anomalyCount(stale))
	}
	// The violation is expected: keep its visualization only if the test
	// fails for another reason.
	t.Cleanup(func() {
		if !t.Failed() {
			os.Remove(lin.visualization)
		}
	})
	for _, a := range anomaliesOf(stale)[:min(len(stale.Anomalies), 3)] {
		t.Logf("caught as expected: %v", a)
	}
	// The stale reads served through the victim: whether a read is stale
	// depends only on it and the acknowledged puts, so check the victim's
	// readers' gets alone.
	var victimOps []jepsen.Op
	for _, op := range jops {
		if op.F != jepsen.FGet || slices.Contains(victimReaders, op.Process) {
			victimOps = append(victimOps, op)
		}
	}
	if onVictim := anomalyCount(jepsen.CheckRealtime(victimOps, linLevels)); onVictim == 0 {
		t.Errorf("porcupine reports keys %v, but no stale read was served through the paused n%d (%d stale reads elsewhere)", lin.illegal, victim, anomalyCount(stale))
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
		{name: "stale linearizable read", illegal: true, want: map[string]int{"stale-read": 1}, ops: []opRecord{
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
		{name: "bounded read past its bound", want: map[string]int{"bounded-stale-read": 1}, ops: []opRecord{
			put(0, "a", 5, 0, 10), put(0, "b", 6, 20, 30), bounded(5, "a", 5, 40, 50)}},
		{name: "bounded read misses a written key", want: map[string]int{"bounded-stale-read": 1}, ops: []opRecord{
			put(0, "a", 5, 0, 10), bounded(5, "", 0, 40, 50)}},
		{name: "session reads its writes", ops: []opRecord{
			put(1, "a", 5, 0, 10), get(1, levelSession, "a", 5, 20, 30), put(2, "b", 6, 40, 50), get(1, levelSession, "a", 5, 60, 70)}},
		{name: "session misses its write", want: map[string]int{"session-read-your-writes": 1}, ops: []opRecord{
			put(1, "a", 5, 0, 10), get(1, levelSession, "", 0, 20, 30)}},
		{name: "session reads backwards", want: map[string]int{"session-monotonic-reads": 1}, ops: []opRecord{
			put(0, "a", 5, 0, 10), put(0, "b", 6, 20, 30), get(1, levelSession, "b", 6, 40, 50), get(1, levelSession, "a", 5, 60, 70)}},
		{name: "read version differs from the put's", want: map[string]int{"integrity": 1}, ops: []opRecord{
			put(0, "a", 5, 0, 10), get(1, levelEventual, "a", 9, 20, 30)}},
		{name: "read a value never written", want: map[string]int{"integrity": 1}, ops: []opRecord{
			put(0, "a", 5, 0, 10), get(1, levelEventual, "z", 9, 20, 30)}},
		{name: "versions go back", want: map[string]int{"integrity": 1}, ops: []opRecord{
			put(0, "a", 6, 0, 10), put(0, "b", 5, 20, 30)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jops := jepsenOps(tc.ops)
			res, _ := jepsen.CheckLinearizable(jops, linLevels, 10*time.Second)
			lin := linearizability{Result: res, illegal: illegalKeys(res)}
			if want := map[bool]string{false: "Ok", true: "Illegal"}[tc.illegal]; lin.verdict() != want {
				t.Errorf("porcupine: %s, want %s", lin.verdict(), want)
			}
			var all []anomaly
			all = append(all, checkIntegrity(tc.ops)...)
			for _, r := range []jepsen.Result{jepsen.CheckRealtime(jops, linLevels), jepsen.CheckBounded(jops), jepsen.CheckSession(jops)} {
				all = append(all, anomaliesOf(r)...)
			}
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
