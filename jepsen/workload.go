package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/elcache/elcache/client"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/ring"
)

// Timeouts of one operation. A write that times out is Unknown.
const (
	readTimeout  = 2 * time.Second
	writeTimeout = 3 * time.Second
)

// boundedStaleness is the bound the bounded workload reads with.
const boundedStaleness = time.Second

// The share, in percent, of the session and bounded workloads' operations
// that are writes; nearWrites replaces both when the reads go through a
// near cache (Profile.NearCache), so that a key is read several times
// between two writes and the near cache has something to serve.
const (
	sessionWrites = 50
	boundedWrites = 40
	nearWrites    = 10
)

// workloads drives the client processes of a run.
type workloads struct {
	rec     *Recorder
	cluster *Cluster
	parts   ring.Partitioner
	// pace is the mean pause between two operations of a process.
	pace time.Duration
	// genPeriod rotates the register and write-mode keys, so that no key
	// collects more operations than the linearizability search handles.
	genPeriod time.Duration
	start     time.Time

	seq atomic.Uint64
}

// gen is the current key generation.
func (w *workloads) gen() int64 { return int64(time.Since(w.start) / w.genPeriod) }

// registerKey is key i of the current generation.
func (w *workloads) registerKey(i int) string { return fmt.Sprintf("r%d.%d", w.gen(), i) }

// HotPartition is the partition of the register workload's first key now:
// the one whose leader the leader-targeted faults hit.
func (w *workloads) hotPartition() uint32 {
	return w.parts.Partition([]byte(w.registerKey(0)))
}

// process is one client: at most one operation outstanding.
type process struct {
	w    *workloads
	id   int
	node *Proc // the node it talks to, unless it picks one per operation
	rng  *rand.Rand
	// tokens are the session's newest tokens, by partition.
	tokens map[uint32]*cachev1.SessionToken
	// last value this process read or wrote, by key, for CAS.
	last map[string]string
	// followLeader sends each register operation to the node the process
	// last learned leads the key's partition (from the leader hints in
	// every answer), as a smart client does, instead of its own node.
	followLeader bool
	leaders      map[uint32]*Proc
	// refused: the last operation's node refused the connection (it is
	// down), so the next one waits refusedPause, as a client backs off.
	refused bool
	// near, if set, is the process's own Go client with a near cache:
	// its reads go through it (read), its writes still go to a node.
	near *client.Client
}

// refusedPause is the pause after an operation whose node refused the
// connection: without it a process whose node is down spins through
// failures that tell nothing.
const refusedPause = 50 * time.Millisecond

func (w *workloads) newProcess(id int, node *Proc, seed uint64) *process {
	return &process{w: w, id: id, node: node, rng: rand.New(rand.NewPCG(seed, uint64(id))),
		tokens: make(map[uint32]*cachev1.SessionToken), last: make(map[string]string), leaders: make(map[uint32]*Proc)}
}

// target is the node an operation on key goes to.
func (p *process) target(key string) *Proc {
	if p.followLeader {
		if n := p.leaders[p.w.parts.Partition([]byte(key))]; n != nil {
			return n
		}
	}
	return p.node
}

// learn records a leader hint.
func (p *process) learn(h *cachev1.LeaderHint) {
	if !p.followLeader || h == nil || h.Address == "" {
		return
	}
	for _, n := range p.w.cluster.Procs {
		if n.Addr == h.Address {
			p.leaders[h.Partition] = n
		}
	}
}

func (p *process) value() string { return fmt.Sprintf("%d.%d", p.id, p.w.seq.Add(1)) }

// pause waits a random time around the pace (refusedPause after a
// refused connection), or until ctx is done.
func (p *process) pause(ctx context.Context) bool {
	d := time.Duration(0)
	if p.w.pace > 0 {
		d = time.Duration(p.rng.Int64N(int64(2 * p.w.pace)))
	}
	if p.refused {
		d, p.refused = refusedPause, false
	}
	if d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	return ctx.Err() == nil
}

// failed records err as op's error and notes a refused connection.
func (p *process) failed(op *Op, err error) {
	op.Error = err.Error()
	p.refused = dialFailed(err)
}

// dialFailed tells whether err is gRPC's failure to connect at all.
func dialFailed(err error) bool {
	st := status.Convert(err)
	return st.Code() == codes.Unavailable && strings.Contains(st.Message(), "Error while dialing")
}

// anyNode is a random running node (or the process's own if none runs).
func (p *process) anyNode() *Proc {
	r := p.w.cluster.Running()
	if len(r) == 0 {
		return p.node
	}
	return r[p.rng.IntN(len(r))]
}

func level(l string) cachev1.Consistency {
	switch l {
	case LevelLinearizable:
		return cachev1.Consistency_CONSISTENCY_LINEARIZABLE
	case LevelLease:
		return cachev1.Consistency_CONSISTENCY_LEASE
	case LevelBounded:
		return cachev1.Consistency_CONSISTENCY_BOUNDED
	case LevelSession:
		return cachev1.Consistency_CONSISTENCY_SESSION
	}
	return cachev1.Consistency_CONSISTENCY_EVENTUAL
}

func mode(m string) cachev1.WriteMode {
	switch m {
	case ModeWriteThrough:
		return cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH
	case ModeWriteBack:
		return cachev1.WriteMode_WRITE_MODE_WRITE_BACK
	case ModeWriteAround:
		return cachev1.WriteMode_WRITE_MODE_WRITE_AROUND
	}
	return cachev1.WriteMode_WRITE_MODE_CACHE_ONLY
}

func durability(d string) cachev1.Durability {
	if d == DurabilityReplicated {
		return cachev1.Durability_DURABILITY_REPLICATED
	}
	return cachev1.Durability_DURABILITY_SYNC
}

// durability draws a write's durability: REPLICATED for pct percent of
// the writes, else SYNC.
func (p *process) durability(pct int) string {
	if p.rng.IntN(100) < pct {
		return DurabilityReplicated
	}
	return DurabilitySync
}

// writeOutcome classifies a failed write. Fail: codes that say the
// request was refused before it ran, an Unavailable that carries a leader
// hint (the node could not serve it and did not forward it: the client
// library retries these for the same reason), and a connection that could
// not be made. Everything else (timeouts, broken connections, Unavailable
// after a forward) may have taken effect: Unknown.
func writeOutcome(err error) Outcome {
	st := status.Convert(err)
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.ResourceExhausted, codes.AlreadyExists,
		codes.OutOfRange, codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented:
		return Fail
	case codes.Unavailable:
		if dialFailed(err) {
			return Fail
		}
		for _, d := range st.Details() {
			if _, ok := d.(*cachev1.LeaderHint); ok {
				return Fail
			}
		}
	}
	return Unknown
}

func (p *process) token(t *cachev1.SessionToken) {
	if t == nil {
		return
	}
	if cur := p.tokens[t.Partition]; cur == nil || t.Epoch != cur.Epoch || t.Index > cur.Index {
		p.tokens[t.Partition] = t
	}
}

// read reads key at level lvl through the process's near-cache client
// if it has one, else through node n.
func (p *process) read(ctx context.Context, n *Proc, workload, key, lvl string) Op {
	if p.near != nil {
		return p.nearGet(ctx, workload, key, lvl)
	}
	return p.get(ctx, n, workload, key, lvl)
}

// readOp is a get of key at level lvl by the process, through node, not
// yet made; a bounded read's bound is boundedStaleness.
func (p *process) readOp(node, workload, key, lvl string) Op {
	op := Op{Process: p.id, Node: node, Workload: workload, F: FGet, Level: lvl, Key: key}
	if lvl == LevelBounded {
		op.MaxStaleness = int64(boundedStaleness)
	}
	return op
}

// get reads key at level through node n.
func (p *process) get(ctx context.Context, n *Proc, workload, key, lvl string) Op {
	op := p.readOp(n.Name, workload, key, lvl)
	opts := &cachev1.ReadOptions{Consistency: level(lvl)}
	if op.MaxStaleness > 0 {
		opts.MaxStaleness = durationpb.New(time.Duration(op.MaxStaleness))
	}
	if lvl == LevelSession {
		for _, t := range p.tokens {
			opts.SessionTokens = append(opts.SessionTokens, t)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	op.Start = p.w.rec.Now()
	resp, err := n.Cache.Get(cctx, &cachev1.GetRequest{Key: []byte(key), Options: opts})
	op.End = p.w.rec.Now()
	if err != nil {
		op.Outcome = Fail
		p.failed(&op, err)
		return op
	}
	op.Outcome, op.Found = OK, resp.Found
	if resp.Found {
		op.Value, op.Version = string(resp.Entry.GetValue()), resp.Entry.GetVersion()
		p.last[key] = op.Value
	}
	if m := resp.Meta; m != nil {
		op.Meta = ReadMetaOf(m)
		p.token(m.SessionToken)
		p.learn(m.Leader)
	}
	return op
}

// put writes value to key in mode m at durability d through node n.
func (p *process) put(ctx context.Context, n *Proc, workload, key, value, m, d string) Op {
	op := Op{Process: p.id, Node: n.Name, Workload: workload, F: FPut, Mode: m, Durability: d, Key: key, Value: value}
	cctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	op.Start = p.w.rec.Now()
	resp, err := n.Cache.Put(cctx, &cachev1.PutRequest{Key: []byte(key), Value: []byte(value),
		Options: &cachev1.WriteOptions{Mode: mode(m), Durability: durability(d)}})
	op.End = p.w.rec.Now()
	if err != nil {
		op.Outcome = writeOutcome(err)
		p.failed(&op, err)
		return op
	}
	op.Outcome, op.Version = OK, resp.Version
	p.last[key] = value
	p.token(resp.Meta.GetSessionToken())
	p.learn(resp.Meta.GetLeader())
	return op
}

// cas swaps key from expect ("" = absent) to value, at durability d,
// through node n.
func (p *process) cas(ctx context.Context, n *Proc, workload, key, expect, value, m, d string) Op {
	op := Op{Process: p.id, Node: n.Name, Workload: workload, F: FCAS, Mode: m, Durability: d, Key: key, Value: value, Expect: expect}
	req := &cachev1.CompareAndSetRequest{Key: []byte(key), Value: []byte(value),
		Options: &cachev1.WriteOptions{Mode: mode(m), Durability: durability(d)}}
	if expect == "" {
		req.Expect = &cachev1.CompareAndSetRequest_ExpectAbsent{ExpectAbsent: true}
	} else {
		req.Expect = &cachev1.CompareAndSetRequest_ExpectedValue{ExpectedValue: []byte(expect)}
	}
	cctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	op.Start = p.w.rec.Now()
	resp, err := n.Cache.CompareAndSet(cctx, req)
	op.End = p.w.rec.Now()
	if err != nil {
		op.Outcome = writeOutcome(err)
		p.failed(&op, err)
		return op
	}
	op.Outcome, op.Swapped = OK, resp.Swapped
	if resp.Swapped {
		op.Version = resp.Version
		p.last[key] = value
	}
	p.token(resp.Meta.GetSessionToken())
	p.learn(resp.Meta.GetLeader())
	return op
}

// register: gets (linearizable or lease), puts and CASes on the current
// generation's keys, through the process's own node or, if it follows
// leaders, the key's leader as it last learned it. replicated percent of
// the writes are REPLICATED, the rest SYNC.
func (p *process) register(ctx context.Context, keys int, mix [4]int, replicated int) {
	total := mix[0] + mix[1] + mix[2] + mix[3]
	for p.pause(ctx) {
		key := p.w.registerKey(p.rng.IntN(keys))
		var op Op
		switch r := p.rng.IntN(total); {
		case r < mix[0]:
			op = p.get(ctx, p.target(key), "register", key, LevelLinearizable)
		case r < mix[0]+mix[1]:
			op = p.get(ctx, p.target(key), "register", key, LevelLease)
		case r < mix[0]+mix[1]+mix[2]:
			op = p.put(ctx, p.target(key), "register", key, p.value(), ModeCacheOnly, p.durability(replicated))
		default:
			op = p.cas(ctx, p.target(key), "register", key, p.last[key], p.value(), ModeCacheOnly, p.durability(replicated))
		}
		p.w.rec.Add(op)
	}
}

// set adds unique elements (one key each) and, between adds, reads its
// oldest element not yet seen back at EVENTUAL through a random node,
// until it shows: the checker's visibility latency, to within one
// operation. replicated percent of the adds are REPLICATED, the rest
// SYNC. With a near cache it also reads one of the last elements it saw
// again after each of those reads: the near cache serves these.
func (p *process) set(ctx context.Context, replicated int) {
	const reread = 16 // the elements seen that it reads again
	var unseen, seen []string
	for p.pause(ctx) {
		key := fmt.Sprintf("s.%d.%d", p.id, p.w.seq.Add(1))
		op := p.put(ctx, p.node, "set", key, key, ModeCacheOnly, p.durability(replicated))
		op.F = FAdd
		p.w.rec.Add(op)
		if op.Outcome == OK {
			unseen = append(unseen, key)
		}
		if len(unseen) == 0 || !p.pause(ctx) {
			continue
		}
		read := p.read(ctx, p.anyNode(), "set", unseen[0], LevelEventual)
		p.w.rec.Add(read)
		if read.Found {
			seen = append(seen, unseen[0])
			seen = seen[max(len(seen)-reread, 0):]
		}
		if read.Found || len(unseen) > 64 {
			unseen = unseen[1:]
		}
		if p.near == nil || len(seen) == 0 || !p.pause(ctx) {
			continue
		}
		p.w.rec.Add(p.nearGet(ctx, "set", seen[p.rng.IntN(len(seen))], LevelEventual))
	}
}

// session: puts (writes percent of the operations) and SESSION gets on
// shared keys, each through a random node, carrying the session's
// tokens.
func (p *process) session(ctx context.Context, keys, writes int) {
	for p.pause(ctx) {
		key := fmt.Sprintf("x.%d", p.rng.IntN(keys))
		n := p.anyNode()
		if p.rng.IntN(100) < writes {
			p.w.rec.Add(p.put(ctx, n, "session", key, p.value(), ModeCacheOnly, DurabilitySync))
		} else {
			p.w.rec.Add(p.read(ctx, n, "session", key, LevelSession))
		}
	}
}

// bounded: puts (writes percent of the operations) through the process's
// node, BOUNDED gets through any.
func (p *process) bounded(ctx context.Context, keys, writes int) {
	for p.pause(ctx) {
		key := boundedKey(p.rng.IntN(keys))
		if p.rng.IntN(100) < writes {
			p.w.rec.Add(p.put(ctx, p.node, "bounded", key, p.value(), ModeCacheOnly, DurabilitySync))
		} else {
			p.w.rec.Add(p.read(ctx, p.anyNode(), "bounded", key, LevelBounded))
		}
	}
}

// boundedKey is the bounded workload's key i.
func boundedKey(i int) string { return fmt.Sprintf("b.%d", i) }

// writeModeKey is key i of mode m in the current generation.
func (w *workloads) writeModeKey(m string, i int) string {
	prefix := map[string]string{ModeWriteThrough: "wt", ModeWriteBack: "wb", ModeWriteAround: "wa"}[m]
	return fmt.Sprintf("%s%d.%d", prefix, w.gen(), i)
}

// writeMode: puts in the key's write mode and linearizable gets (which
// refill misses from the database), through the process's node. The puts
// are SYNC (as WRITE_THROUGH and WRITE_AROUND writes always are).
func (p *process) writeMode(ctx context.Context, keys int, modes []string) {
	for p.pause(ctx) {
		m := modes[p.rng.IntN(len(modes))]
		key := p.w.writeModeKey(m, p.rng.IntN(keys))
		if p.rng.IntN(2) == 0 {
			p.w.rec.Add(p.put(ctx, p.node, "writemode", key, p.value(), m, DurabilitySync))
		} else {
			p.w.rec.Add(p.get(ctx, p.node, "writemode", key, LevelLinearizable))
		}
	}
}
