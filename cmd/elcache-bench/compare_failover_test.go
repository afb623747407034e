//go:build benchcompare

package main

// The failover measurement of TestCompare: how long writes to a partition
// stop when its leader is SIGKILLed, whether callers see errors, and
// whether acknowledged writes survive.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elcache/elcache/client"
	"github.com/elcache/elcache/internal/bench"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/ring"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const (
	// failoverPartition is the partition the writers write to and whose
	// leader is killed.
	failoverPartition = 0
	// failoverWarmup is the writes before the first kill.
	failoverWarmup = 2 * time.Second
	// failoverAfter is how long the writes go on after each kill before
	// the killed node is restarted.
	failoverAfter = 5 * time.Second
	// failoverRecoverMax bounds the wait for the first write after a kill.
	failoverRecoverMax = 60 * time.Second
	// failoverWriteTimeout bounds each write.
	failoverWriteTimeout = 10 * time.Second
	// failoverSeqDigits is the width of the sequence number that starts
	// each value.
	failoverSeqDigits = 20
)

// failoverKill is what one SIGKILL of the partition's leader cost.
type failoverKill struct {
	Node string `json:"node"` // the leader killed
	// WriteGapMs is the longest time between two acknowledged writes
	// (of any writer) from the kill until the node is restarted.
	WriteGapMs float64 `json:"write_gap_ms"`
	// FirstWriteMs is the time from the kill to the first write
	// another node acknowledged; -1 if none came.
	FirstWriteMs float64 `json:"kill_to_first_write_ms"`
	// AckedBefore is the writes acknowledged before the kill, since the
	// load started.
	AckedBefore int64 `json:"acked_before"`
	// StaleKeys is the keys that a LINEARIZABLE read after the kill found
	// below their last acknowledged value (or missing); ReadErrors the
	// reads that failed.
	StaleKeys  int `json:"stale_keys"`
	ReadErrors int `json:"read_errors"`
}

// failoverResult is the failover measurement, for results.json.
type failoverResult struct {
	Writers      int            `json:"writers"`
	Partition    int            `json:"partition"`
	RaftTimeouts string         `json:"raft_timeouts"` // the server's defaults
	Kills        []failoverKill `json:"kills"`
	// WorstGapMs is the longest time between two acknowledged writes over
	// the whole load, and WorstGapDuring the phase it ended in.
	WorstGapMs     float64 `json:"worst_write_gap_ms"`
	WorstGapDuring string  `json:"worst_write_gap_during"`
	Writes         int64   `json:"writes"`
	// Errors is the errors the client returned to the writers, by gRPC
	// code.
	Errors map[string]int64 `json:"errors"`
	// FinalStaleKeys and FinalReadErrors are the last check, after the
	// writers stopped.
	FinalStaleKeys  int `json:"final_stale_keys"`
	FinalReadErrors int `json:"final_read_errors"`
}

// measureFailover runs runFailover in a subtest, on a cluster of its own
// that stops when the subtest ends.
func measureFailover(t *testing.T, logDir string, kills int) compareExtra {
	return measureExtra(t, "failover", "failover", func(t *testing.T) failoverResult {
		return runFailover(t, logDir, kills)
	})
}

// ack is one acknowledged write: when the writer got it, and the node
// that committed it.
type ack struct {
	at time.Time
	by string
}

// failoverLoad is -clients writers, each writing its own key of one
// partition with values that carry an increasing sequence number.
type failoverLoad struct {
	cl        *client.Client
	keys      [][]byte
	valueSize int

	stop chan struct{}
	wg   sync.WaitGroup
	last []atomic.Uint64 // per writer, the last acknowledged sequence number

	mu     sync.Mutex
	acks   []ack
	errors map[string]int64 // by gRPC code
	sample map[string]string
}

// runFailover starts a 3-node cluster with the server's default Raft
// timeouts, writes to one partition through the Go client from -clients
// writers, and kills that partition's leader kills times with SIGKILL,
// restarting each killed node (same flags and data) and waiting until it
// serves and has caught up before killing the next leader.
func runFailover(t *testing.T, logDir string, kills int) failoverResult {
	t.Helper()
	ctx := t.Context()
	c := startElcacheCluster(t, logDir, "failover")
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	tgt, err := bench.NewElcacheTarget(cctx, c.addrs(), "linearizable", "cache_only", "", false, nil)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()

	res := failoverResult{
		Writers:      *compareClients,
		Partition:    failoverPartition,
		RaftTimeouts: serverRaftTimeouts(c.bin),
	}
	load := &failoverLoad{
		cl:        tgt.(*bench.ElcacheTarget).Client(),
		keys:      partitionKeys(t, c.partitions, failoverPartition, *compareClients),
		valueSize: *compareValueSize,
		stop:      make(chan struct{}),
		last:      make([]atomic.Uint64, *compareClients),
		errors:    map[string]int64{},
		sample:    map[string]string{},
	}
	load.start(ctx)
	stopped := false
	defer func() {
		if !stopped {
			load.halt()
		}
	}()

	// phases marks what was going on from when: the worst gap is
	// reported with the phase it ended in.
	type phase struct {
		from time.Time
		what string
	}
	phases := []phase{{time.Now(), "warm-up"}}
	wait(ctx, failoverWarmup)
	type window struct{ kill, end time.Time }
	var windows []window
	for k := range kills {
		leader := partitionLeader(t, c, failoverPartition)
		killedAt := time.Now()
		if err := leader.proc.Kill(); err != nil {
			t.Fatalf("kill %s: %v", leader.name, err)
		}
		<-leader.exited
		phases = append(phases, phase{killedAt, fmt.Sprintf("kill %d, of %s", k+1, leader.name)})
		kr := failoverKill{Node: leader.name, FirstWriteMs: -1, AckedBefore: load.ackedBefore(killedAt)}
		wait(ctx, failoverAfter)
		if !load.recoveredAfter(ctx, killedAt, leader.name, failoverRecoverMax-failoverAfter) {
			t.Errorf("kill %d (%s): no write acknowledged within %v", k+1, leader.name, failoverRecoverMax)
		}
		kr.StaleKeys, kr.ReadErrors = load.check(ctx)
		res.Kills = append(res.Kills, kr)
		windows = append(windows, window{kill: killedAt, end: time.Now()})
		if k == kills-1 {
			break
		}
		phases = append(phases, phase{time.Now(), "restart of " + leader.name})
		c.restart(t, leader, fmt.Sprintf("failover-%s-restart%d", leader.name, k+1))
		waitCaughtUp(t, c, leader, failoverPartition)
	}
	load.halt()
	stopped = true
	res.FinalStaleKeys, res.FinalReadErrors = load.check(ctx)

	acks := load.sorted()
	res.Writes = int64(len(acks))
	res.Errors = maps.Clone(load.errors)
	for i := 1; i < len(acks); i++ {
		gap := acks[i].at.Sub(acks[i-1].at)
		if ms := millis(gap); ms > res.WorstGapMs {
			res.WorstGapMs = ms
			for _, p := range phases {
				if !p.from.After(acks[i].at) {
					res.WorstGapDuring = p.what
				}
			}
		}
		for k, w := range windows {
			if acks[i].at.After(w.kill) && !acks[i].at.After(w.end) {
				res.Kills[k].WriteGapMs = max(res.Kills[k].WriteGapMs, millis(gap))
			}
		}
	}
	for k, w := range windows {
		// The first write the leader killed cannot have committed: a
		// reply it sent before the kill may still arrive after it.
		i, _ := slices.BinarySearchFunc(acks, w.kill, func(a ack, at time.Time) int { return a.at.Compare(at) })
		for ; i < len(acks); i++ {
			if acks[i].by != res.Kills[k].Node {
				res.Kills[k].FirstWriteMs = millis(acks[i].at.Sub(w.kill))
				break
			}
		}
	}
	for code, msg := range load.sample {
		t.Logf("failover: writers got %d %s errors, e.g. %s", load.errors[code], code, msg)
	}
	for k, kr := range res.Kills {
		if kr.StaleKeys > 0 {
			t.Errorf("failover: after kill %d, %d keys read below their last acknowledged value", k+1, kr.StaleKeys)
		}
	}
	if res.FinalStaleKeys > 0 {
		t.Errorf("failover: at the end, %d keys read below their last acknowledged value", res.FinalStaleKeys)
	}
	return res
}

// summary returns the lines of r for the log and results.md.
func (r failoverResult) summary() []string {
	var gaps, firsts []string
	var acked int64
	stale, readErrs := r.FinalStaleKeys, r.FinalReadErrors
	for _, k := range r.Kills {
		gaps = append(gaps, fmt.Sprintf("%s (%s)", fmtMillis(k.WriteGapMs), k.Node))
		first := "none"
		if k.FirstWriteMs >= 0 {
			first = fmtMillis(k.FirstWriteMs)
		}
		firsts = append(firsts, first)
		acked = k.AckedBefore
		stale += k.StaleKeys
		readErrs += k.ReadErrors
	}
	var errs []string
	var nerrs int64
	for _, code := range slices.Sorted(maps.Keys(r.Errors)) {
		errs = append(errs, fmt.Sprintf("%d %s", r.Errors[code], code))
		nerrs += r.Errors[code]
	}
	errText := "none"
	if nerrs > 0 {
		errText = fmt.Sprintf("%d (%s)", nerrs, strings.Join(errs, ", "))
	}
	return []string{
		fmt.Sprintf("failover: partition %d's leader SIGKILLed %d times under %d writers (default Raft timeouts: %s): write gap per kill %s, worst over the whole load %s (during %s; goal <= 1s); kill to first write %s",
			r.Partition, len(r.Kills), r.Writers, r.RaftTimeouts, strings.Join(gaps, ", "),
			fmtMillis(r.WorstGapMs), r.WorstGapDuring, strings.Join(firsts, ", ")),
		fmt.Sprintf("failover: errors returned to callers %s (goal none); %s writes acknowledged, %s before the last kill; LINEARIZABLE reads of every key after each kill and at the end: %d below the last acknowledged value, %d failed",
			errText, bench.FormatOps(float64(r.Writes)), bench.FormatOps(float64(acked)), stale, readErrs),
	}
}

// start starts the writers.
func (l *failoverLoad) start(ctx context.Context) {
	for w := range l.keys {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.write(ctx, w)
		}()
	}
}

// halt stops the writers and waits for them.
func (l *failoverLoad) halt() {
	close(l.stop)
	l.wg.Wait()
}

// write is writer w: it writes sequence numbers 1, 2, ... to its key
// until the load stops, recording each acknowledgement and error.
func (l *failoverLoad) write(ctx context.Context, w int) {
	for seq := uint64(1); ; seq++ {
		select {
		case <-l.stop:
			return
		default:
		}
		wctx, cancel := context.WithTimeout(ctx, failoverWriteTimeout)
		res, err := l.cl.Put(wctx, l.keys[w], failoverValue(seq, l.valueSize))
		cancel()
		now := time.Now()
		l.mu.Lock()
		if err != nil {
			code := status.Code(err).String()
			l.errors[code]++
			if _, ok := l.sample[code]; !ok {
				l.sample[code] = err.Error()
			}
		} else {
			l.acks = append(l.acks, ack{at: now, by: res.Meta.ServedBy})
		}
		l.mu.Unlock()
		if err == nil {
			l.last[w].Store(seq)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// ackedBefore counts the writes acknowledged before at.
func (l *failoverLoad) ackedBefore(at time.Time) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, a := range l.acks {
		if a.at.Before(at) {
			n++
		}
	}
	return n
}

// recoveredAfter waits, up to limit, until a node other than killed has
// acknowledged a write after at.
func (l *failoverLoad) recoveredAfter(ctx context.Context, at time.Time, killed string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		l.mu.Lock()
		for i := len(l.acks) - 1; i >= 0 && l.acks[i].at.After(at); i-- {
			if l.acks[i].by != killed {
				l.mu.Unlock()
				return true
			}
		}
		l.mu.Unlock()
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		wait(ctx, 100*time.Millisecond)
	}
}

// check reads every writer's key at LINEARIZABLE and counts those below
// the last sequence number acknowledged before the read (stale: an
// acknowledged write was lost) and the reads that failed.
func (l *failoverLoad) check(ctx context.Context) (stale, failed int) {
	for w, key := range l.keys {
		want := l.last[w].Load()
		rctx, cancel := context.WithTimeout(ctx, failoverWriteTimeout)
		e, err := l.cl.Get(rctx, key, client.WithConsistency(cachev1.Consistency_CONSISTENCY_LINEARIZABLE))
		cancel()
		switch {
		case err == nil:
			if got, ok := failoverSeq(e.Value); !ok || got < want {
				stale++
			}
		case errors.Is(err, client.ErrNotFound):
			if want > 0 {
				stale++
			}
		default:
			failed++
		}
	}
	return stale, failed
}

// sorted returns the acknowledgements in time order.
func (l *failoverLoad) sorted() []ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.acks)
	slices.SortFunc(out, func(a, b ack) int { return a.at.Compare(b.at) })
	return out
}

// failoverValue is sequence number seq, zero-padded, then filler up to
// size bytes.
func failoverValue(seq uint64, size int) []byte {
	v := bytes.Repeat([]byte{'.'}, max(size, failoverSeqDigits))
	copy(v, fmt.Sprintf("%0*d", failoverSeqDigits, seq))
	return v
}

// failoverSeq parses the sequence number of a failoverValue.
func failoverSeq(v []byte) (uint64, bool) {
	if len(v) < failoverSeqDigits {
		return 0, false
	}
	n, err := strconv.ParseUint(string(v[:failoverSeqDigits]), 10, 64)
	return n, err == nil
}

// partitionKeys returns n distinct keys of partition part of a cluster
// with partitions partitions.
func partitionKeys(t *testing.T, partitions, part, n int) [][]byte {
	t.Helper()
	p, err := ring.NewPartitioner(uint32(partitions))
	if err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for i := 0; len(keys) < n; i++ {
		k := []byte(fmt.Sprintf("failover-%d", i))
		if p.Partition(k) == uint32(part) {
			keys = append(keys, k)
		}
	}
	return keys
}

// partitionLeader waits until every live node of c agrees on part's
// leader and that node says it leads, and returns it.
func partitionLeader(t *testing.T, c *elcacheCluster, part int) *elcacheNode {
	t.Helper()
	var leader *elcacheNode
	waitFor(t, fmt.Sprintf("a leader of partition %d", part), nil, 30*time.Second, func(ctx context.Context) error {
		leader = nil
		ids := map[string]bool{}
		for _, nd := range c.nodes {
			if exitedYet(nd) {
				continue
			}
			ps, id, err := partitionStats(ctx, nd, part)
			if err != nil {
				return err
			}
			ids[ps.Leader] = true
			if ps.Role == cachev1.Role_ROLE_LEADER && ps.Leader == id {
				leader = nd
			}
		}
		if leader == nil || len(ids) != 1 {
			return fmt.Errorf("leaders seen: %v", slices.Collect(maps.Keys(ids)))
		}
		return nil
	})
	return leader
}

// waitCaughtUp waits until nd has applied part's log up to the commit
// index its leader had when the wait began.
func waitCaughtUp(t *testing.T, c *elcacheCluster, nd *elcacheNode, part int) {
	t.Helper()
	leader := partitionLeader(t, c, part)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	ps, _, err := partitionStats(ctx, leader, part)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	target := ps.CommitIndex
	waitFor(t, nd.name+" catching up", nd.exited, 60*time.Second, func(ctx context.Context) error {
		ps, _, err := partitionStats(ctx, nd, part)
		if err != nil {
			return err
		}
		if ps.AppliedIndex < target {
			return fmt.Errorf("applied %d of %d", ps.AppliedIndex, target)
		}
		return nil
	})
}

// partitionStats returns nd's view of partition part, and nd's node id.
func partitionStats(ctx context.Context, nd *elcacheNode, part int) (*cachev1.PartitionStats, string, error) {
	st, err := nodeStats(ctx, nd.addr)
	if err != nil {
		return nil, "", err
	}
	for _, ps := range st.Partitions {
		if ps.Partition == uint32(part) {
			return ps, st.NodeId, nil
		}
	}
	return nil, "", fmt.Errorf("%s hosts no partition %d", nd.name, part)
}

// nodeStats asks the node at addr for its Stats.
func nodeStats(ctx context.Context, addr string) (*cachev1.StatsResponse, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return cachev1.NewCacheClient(conn).Stats(ctx, &cachev1.StatsRequest{})
}

func exitedYet(nd *elcacheNode) bool {
	select {
	case <-nd.exited:
		return true
	default:
		return false
	}
}

// serverRaftTimeouts reads the default Raft heartbeat and election
// timeouts from the server's usage text.
func serverRaftTimeouts(bin string) string {
	out, _ := exec.Command(bin, "--help").CombinedOutput() // -help exits non-zero
	var parts []string
	for _, name := range []string{"heartbeat", "election"} {
		re := regexp.MustCompile(`-raft-` + name + `-timeout string\s+[^\n]*\(default "([^"]+)"\)`)
		v := "unknown"
		if m := re.FindSubmatch(out); m != nil {
			v = string(m[1])
		}
		parts = append(parts, name+" "+v)
	}
	return strings.Join(parts, ", ")
}

// wait waits d, or until ctx ends.
func wait(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtMillis formats ms milliseconds, e.g. "850ms", "3.92s".
func fmtMillis(ms float64) string { return bench.FormatMicros(ms * 1000) }
