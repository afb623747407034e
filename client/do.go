package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// request is one API call on its way: where it may go and whether it may
// be sent again.
type request struct {
	call *cachev1.Call
	// part is the partition it routes by; any is set when it has none
	// (it then goes to any node, which forwards).
	part uint32
	any  bool
	// leader: only the partition's leader serves it (writes, LINEARIZABLE
	// and LEASE reads); otherwise the nearest healthy replica does.
	leader bool
	// idempotent: sending it twice has the effect of sending it once (a
	// read, or a write with an idempotency key).
	idempotent bool
	// hedge: a slow answer may be raced by a second replica.
	hedge bool
}

// do sends r, retrying as its kind allows, and returns its result.
func (c *Client) do(ctx context.Context, r *request) (*cachev1.CallResult, error) {
	c.counters.requests.Add(1)
	var last error
	// failed counts this request's failures per node: a retry tries the
	// nodes that failed it least first, so it does not keep knocking on a
	// dead leader before the map catches up.
	failed := make(map[*nodeConn]int)
	for attempt := 0; attempt < c.cfg.MaxAttempts; attempt++ {
		if attempt > 0 && !followedHint(last) {
			if err := c.backoff(ctx, attempt); err != nil {
				return nil, fromStatus(last)
			}
		}
		if attempt > 0 {
			c.counters.retries.Add(1)
		}
		res, err := c.attempt(ctx, r, failed)
		if err == nil {
			return res, nil
		}
		last = err
		if !c.retryable(ctx, r, err) {
			break
		}
	}
	return nil, fromStatus(last)
}

// backoff sleeps before retry number n: exponential backoff with full
// jitter, bounded by ctx.
func (c *Client) backoff(ctx context.Context, n int) error {
	ceiling := c.cfg.RetryMax
	if shift := n - 1; shift < 30 {
		ceiling = min(ceiling, c.cfg.RetryBase<<shift)
	}
	t := time.NewTimer(rand.N(ceiling + 1))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hinted marks an error whose answer named the partition's leader: the
// retry goes there at once.
type hinted struct{ error }

func (h hinted) Unwrap() error { return h.error }

func followedHint(err error) bool {
	var h hinted
	return errors.As(err, &h)
}

// retryable reports whether r may be sent again after err.
func (c *Client) retryable(ctx context.Context, r *request, err error) bool {
	if ctx.Err() != nil || c.closed.Load() {
		return false
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unavailable:
		// A not-leader answer (it carries a LeaderHint) proves the request
		// was not executed; any other may hide a write that ran.
		return r.idempotent || hintOf(st) != nil
	case codes.ResourceExhausted, codes.Aborted:
		// A full write-back backlog, or a conflict: not executed.
		return true
	case codes.DeadlineExceeded, codes.Canceled:
		// The call's own time ran out (ctx has not): unknown outcome.
		return r.idempotent
	default:
		return false
	}
}

// hintOf returns the LeaderHint detail of a status, or nil.
func hintOf(st *status.Status) *cachev1.LeaderHint {
	for _, d := range st.Details() {
		if h, ok := d.(*cachev1.LeaderHint); ok {
			return h
		}
	}
	return nil
}

// attempt sends r once (to two replicas if it is hedged and slow).
func (c *Client) attempt(ctx context.Context, r *request, failed map[*nodeConn]int) (*cachev1.CallResult, error) {
	targets := c.targets(r)
	slices.SortStableFunc(targets, func(a, b *nodeConn) int { return failed[a] - failed[b] })
	var mu sync.Mutex
	send := func(ctx context.Context, n *nodeConn) (*cachev1.CallResult, error) {
		res, err := c.send(ctx, n, r)
		if err != nil && !followedHint(err) {
			mu.Lock()
			failed[n]++
			mu.Unlock()
		}
		return res, err
	}
	if !r.hedge || c.cfg.HedgeAfter < 0 || len(targets) < 2 {
		return send(ctx, targets[0])
	}
	if !c.cfg.Unary {
		return c.hedgePipelined(ctx, r, targets[:2], failed)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		res *cachev1.CallResult
		err error
	}
	answers := make(chan answer, 2)
	launch := func(n *nodeConn) {
		go func() {
			res, err := send(ctx, n)
			answers <- answer{res, err}
		}()
	}
	launch(targets[0])
	hedge := time.NewTimer(c.cfg.HedgeAfter)
	defer hedge.Stop()
	inFlight, hedged := 1, false
	var last error
	for inFlight > 0 {
		select {
		case a := <-answers:
			inFlight--
			if a.err == nil {
				return a.res, nil
			}
			last = a.err
			if !hedged && c.retryable(ctx, r, a.err) {
				// The first failed fast: the second replica now.
				hedged = true
				inFlight++
				launch(targets[1])
			}
		case <-hedge.C:
			if !hedged {
				c.counters.hedges.Add(1)
				// The slow node counts as at least this slow, so later
				// reads prefer another replica.
				targets[0].observe(c.cfg.HedgeAfter)
				hedged = true
				inFlight++
				launch(targets[1])
			}
		}
	}
	return nil, last
}

// hedgePipelined is a hedged read on the pipelined path: the call waits on
// its own result channel, with no goroutine of its own, and goes to the
// second target too if the first has not answered within HedgeAfter.
func (c *Client) hedgePipelined(ctx context.Context, r *request, targets []*nodeConn, failed map[*nodeConn]int) (*cachev1.CallResult, error) {
	type flight struct {
		n     *nodeConn
		pd    *pending
		start time.Time
	}
	var flights [2]*flight
	launch := func(i int) error {
		n, start := targets[i], time.Now()
		p, err := n.pipeline(c.ctx)
		var pd *pending
		if err == nil {
			pd, err = p.start(ctx, r.call)
		}
		if err != nil {
			_, err = c.record(ctx, n, start, nil, err)
			if !followedHint(err) {
				failed[n]++
			}
			return err
		}
		flights[i] = &flight{n, pd, start}
		return nil
	}
	// finish takes flight i's answer; it reports whether the read is done.
	var last error
	finish := func(i int, res *cachev1.CallResult, ok bool) (*cachev1.CallResult, bool) {
		f := flights[i]
		flights[i] = nil
		res, err := f.pd.result(res, ok)
		res, err = c.record(ctx, f.n, f.start, res, err)
		if err == nil {
			return res, true
		}
		if !followedHint(err) {
			failed[f.n]++
		}
		last = err
		return nil, false
	}
	abandon := func() {
		for _, f := range flights {
			if f != nil {
				f.pd.abandon()
			}
		}
	}
	if err := launch(0); err != nil {
		return nil, err
	}
	hedge := time.NewTimer(c.cfg.HedgeAfter)
	defer hedge.Stop()
	hedged := false
	for flights[0] != nil || flights[1] != nil {
		var ch0, ch1 chan *cachev1.CallResult
		if flights[0] != nil {
			ch0 = flights[0].pd.ch
		}
		if flights[1] != nil {
			ch1 = flights[1].pd.ch
		}
		select {
		case res, ok := <-ch0:
			if out, done := finish(0, res, ok); done {
				abandon()
				return out, nil
			}
			if !hedged && c.retryable(ctx, r, last) {
				// The first failed fast: the second replica now.
				hedged = true
				if err := launch(1); err != nil {
					last = err
				}
			}
		case res, ok := <-ch1:
			if out, done := finish(1, res, ok); done {
				abandon()
				return out, nil
			}
		case <-hedge.C:
			if !hedged && flights[0] != nil {
				hedged = true
				c.counters.hedges.Add(1)
				// The slow node counts as at least this slow, so later
				// reads prefer another replica.
				flights[0].n.observe(c.cfg.HedgeAfter)
				if err := launch(1); err != nil {
					last = err
				}
			}
		case <-ctx.Done():
			abandon()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	return nil, last
}

// send makes one call to node n and records how n did.
func (c *Client) send(ctx context.Context, n *nodeConn, r *request) (*cachev1.CallResult, error) {
	start := time.Now()
	var res *cachev1.CallResult
	var err error
	if c.cfg.Unary {
		res, err = unary(ctx, n.rpc, r.call)
	} else {
		var p *pipe
		if p, err = n.pipeline(c.ctx); err == nil {
			res, err = p.call(ctx, r.call)
		}
	}
	return c.record(ctx, n, start, res, err)
}

// record notes how node n did on a call that started at start and ended
// with res or err, and returns them (a not-leader error that names the
// leader as hinted).
func (c *Client) record(ctx context.Context, n *nodeConn, start time.Time, res *cachev1.CallResult, err error) (*cachev1.CallResult, error) {
	if err == nil {
		n.br.success()
		n.observe(time.Since(start))
		c.learn(res)
		return res, nil
	}
	st := status.Convert(err)
	if h := hintOf(st); h != nil {
		c.counters.hints.Add(1)
		c.learnLeader(h)
		n.br.success() // the node answered
		if h.GetNodeId() != "" {
			return nil, hinted{err}
		}
		return nil, err
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		if ctx.Err() == nil {
			n.br.failure()
		}
	default:
		n.br.success()
	}
	return nil, err
}

// exploreEvery: one replica read in this many goes to the second nearest
// replica.
const exploreEvery = 100

// targets returns the nodes to try for r, best first; never empty.
func (c *Client) targets(r *request) []*nodeConn {
	t := c.topo.Load()
	var ids []string
	if t != nil && !r.any && r.part < t.count {
		rt := t.parts[r.part]
		if r.leader && rt.leader != "" {
			ids = append(ids, rt.leader)
		}
		for _, id := range rt.replicas {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	var out []*nodeConn
	for _, id := range ids {
		if addr, ok := t.addrs[id]; ok {
			if n, err := c.conns.get(addr); err == nil {
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		// No map yet, or nothing known of the partition: any node
		// forwards.
		out = append(out, c.conns.all()...)
		rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	if !r.leader && len(out) > 1 {
		// The nearest replica first (unmeasured ones count as near, so
		// they get measured).
		slices.SortStableFunc(out, func(a, b *nodeConn) int {
			return int(a.latency.Load()/int64(time.Microsecond)) - int(b.latency.Load()/int64(time.Microsecond))
		})
		// Now and then the second nearest first, so that a replica that
		// was slow is measured again once it has recovered.
		if c.explore.Add(1)%exploreEvery == 0 {
			out[0], out[1] = out[1], out[0]
		}
	}
	// Nodes whose breaker is open go last; one of them is still tried
	// when every node is failing.
	var closed, open []*nodeConn
	for _, n := range out {
		if n.br.open() {
			open = append(open, n)
		} else {
			closed = append(closed, n)
		}
	}
	return append(closed, open...)
}

// learn takes the session token and leader hint of an answer.
func (c *Client) learn(res *cachev1.CallResult) {
	switch r := res.Response.(type) {
	case *cachev1.CallResult_Get:
		c.learnRead(r.Get.GetMeta())
	case *cachev1.CallResult_MultiGet:
		for _, g := range r.MultiGet.GetResults() {
			c.learnRead(g.GetMeta())
		}
	case *cachev1.CallResult_Put:
		c.learnWrite(r.Put.GetMeta())
	case *cachev1.CallResult_Delete:
		c.learnWrite(r.Delete.GetMeta())
	case *cachev1.CallResult_CompareAndSet:
		c.learnWrite(r.CompareAndSet.GetMeta())
	case *cachev1.CallResult_MultiPut:
		for _, p := range r.MultiPut.GetResults() {
			c.learnWrite(p.GetMeta())
		}
	}
}

func (c *Client) learnRead(m *cachev1.ReadMeta) {
	if m == nil {
		return
	}
	c.sessions.observe(m.GetSessionToken())
	c.learnLeader(m.GetLeader())
}

func (c *Client) learnWrite(m *cachev1.WriteMeta) {
	if m == nil {
		return
	}
	c.sessions.observe(m.GetSessionToken())
	c.learnLeader(m.GetLeader())
}

// unary makes call as its unary RPC.
func unary(ctx context.Context, rpc cachev1.CacheClient, call *cachev1.Call) (*cachev1.CallResult, error) {
	out, err := cachev1.RunCall(ctx, cachev1.ClientHandler(rpc), call)
	if errors.Is(err, cachev1.ErrEmptyCall) {
		return nil, fmt.Errorf("%w: empty call", ErrInvalidArgument)
	}
	return out, err
}

// breaker is a node's circuit breaker: after `failures` consecutive
// failures it opens for `cooldown`; after that calls go to the node again,
// and the first failure opens it again at once (half-open), the first
// success closes it.
type breaker struct {
	mu        sync.Mutex
	failures  int
	cooldown  time.Duration
	run       int
	openUntil time.Time
}

func (b *breaker) init(failures int, cooldown time.Duration) {
	b.failures, b.cooldown = failures, cooldown
}

func (b *breaker) success() {
	b.mu.Lock()
	b.run = 0
	b.mu.Unlock()
}

func (b *breaker) failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.run++
	if b.run >= b.failures {
		b.openUntil = time.Now().Add(b.cooldown)
	}
}

// open reports whether calls should avoid the node now.
func (b *breaker) open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.run >= b.failures && time.Now().Before(b.openUntil)
}

// Counters are what a Client has done since New.
type Counters struct {
	// Requests is the calls made (a MultiGet or MultiPut counts once per
	// partition it touches).
	Requests uint64
	// Retries is the attempts after a request's first.
	Retries uint64
	// Hedges is the reads also sent to a second replica.
	Hedges uint64
	// LeaderHints is the answers that named another leader.
	LeaderHints uint64
	// Near describes the near cache; zero without one.
	Near NearCounters
}

type counters struct {
	requests, retries, hedges, hints atomic.Uint64
}

// Counters returns the client's counters.
func (c *Client) Counters() Counters {
	out := Counters{Requests: c.counters.requests.Load(), Retries: c.counters.retries.Load(),
		Hedges: c.counters.hedges.Load(), LeaderHints: c.counters.hints.Load()}
	if c.near != nil {
		out.Near = c.near.counters()
	}
	return out
}
