package node_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/ring"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

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
				out = append(out, opAnomaly("convergence", lin, "replicas still differ: "+strings.Join(differ, "; ")))
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
