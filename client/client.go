package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Client talks to an elcache cluster. It learns the partition map from the
// seeds and keeps it current (WatchTopology), sends each request straight
// to a node that can serve it, and retries what a retry can fix. It is
// safe for concurrent use.
type Client struct {
	cfg      Config
	conns    conns
	topo     atomic.Pointer[topology]
	sessions sessions
	counters counters
	explore  atomic.Uint64 // replica reads, for exploreEvery
	// near is the near cache (Config.NearCache), nil without one.
	near *near

	ctx        context.Context // ends at Close
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	refreshing atomic.Bool
	closed     atomic.Bool
}

// New validates cfg and connects to the cluster through cfg.Seeds. If
// cfg.DialTimeout is positive it waits, within ctx, until a seed has given
// it the partition map.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Seeds = slices.Clone(cfg.Seeds)
	c := &Client{cfg: cfg}
	if cfg.NearCache != nil {
		nc, err := newNear(*cfg.NearCache)
		if err != nil {
			return nil, err
		}
		c.near = nc
	}
	c.conns = conns{cfg: &c.cfg, byAddr: make(map[string]*nodeConn)}
	for _, s := range cfg.Seeds {
		if _, err := c.conns.get(s); err != nil {
			c.shutdown()
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.DialTimeout > 0 {
		fctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
		err := c.fetchTopology(fctx)
		cancel()
		if err != nil {
			c.shutdown()
			return nil, fmt.Errorf("%w: no seed of %s gave the partition map within %v: %w",
				ErrUnavailable, strings.Join(cfg.Seeds, ", "), cfg.DialTimeout, fromStatus(err))
		}
	}
	c.wg.Add(1)
	go c.watch(c.ctx)
	if c.near != nil {
		c.wg.Add(1)
		go c.nearLoop(c.ctx)
	}
	return c, nil
}

// Close closes the connections. Requests in flight fail with ErrClosed, as
// do later ones. Close is idempotent.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	return c.shutdown()
}

func (c *Client) shutdown() error {
	if c.cancel != nil {
		c.cancel()
	}
	var errs []error
	for _, n := range c.conns.all() {
		n.pipeMu.Lock()
		if n.pipe != nil {
			n.pipe.close()
		}
		n.pipeMu.Unlock()
		if err := n.cc.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	c.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("client: close: %w", err)
	}
	return nil
}

// fail maps an error from an RPC.
func (c *Client) fail(err error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	var se *statusError
	if errors.As(err, &se) {
		return err
	}
	return fromStatus(err)
}

// seed returns a connection for calls that any node answers.
func (c *Client) seed() *nodeConn {
	n, _ := c.conns.get(c.cfg.Seeds[0]) // dialed in New
	return n
}

// route fills r's routing for key: its partition, or any node before the
// map is known.
func (c *Client) route(r *request, key []byte) {
	if t := c.topo.Load(); t != nil {
		r.part = t.partition(key)
	} else {
		r.any = true
	}
}

// readRequest builds the request of a read at ro's level.
func (c *Client) readRequest(call *cachev1.Call, ro *cachev1.ReadOptions, keys ...[]byte) *request {
	r := &request{call: call, idempotent: true}
	if len(keys) > 0 {
		c.route(r, keys[0])
	} else {
		r.any = true
	}
	switch ro.GetConsistency() {
	case cachev1.Consistency_CONSISTENCY_BOUNDED, cachev1.Consistency_CONSISTENCY_EVENTUAL:
		r.hedge = true
	case cachev1.Consistency_CONSISTENCY_SESSION:
		// Any replica that has caught up serves; the node waits or
		// forwards otherwise.
	default:
		r.leader = true
	}
	if ro.GetConsistency() == cachev1.Consistency_CONSISTENCY_SESSION && !r.any {
		if tok := c.sessions.token(r.part); tok != nil {
			ro.SessionTokens = append(ro.SessionTokens, tok)
		}
	}
	return r
}

// writeRequest builds the request of a write of key.
func (c *Client) writeRequest(call *cachev1.Call, wo *cachev1.WriteOptions, key []byte) *request {
	r := &request{call: call, leader: true, idempotent: wo.GetIdempotencyKey() != ""}
	c.route(r, key)
	return r
}

// Get reads key. A missing key returns ErrNotFound along with an Entry that
// carries only Key and Meta.
func (c *Client) Get(ctx context.Context, key []byte, opts ...ReadOption) (Entry, error) {
	if c.closed.Load() {
		return Entry{}, ErrClosed
	}
	ro, err := buildReadOptions(&c.cfg, opts)
	if err != nil {
		return Entry{}, err
	}
	if c.near != nil {
		// Before the request is built: a hit needs none of it.
		if hit, ok := c.nearGet(key, ro); ok {
			return hit, nil
		}
	}
	call := &cachev1.Call{Request: &cachev1.Call_Get{Get: &cachev1.GetRequest{Key: key, Options: ro}}}
	req := c.readRequest(call, ro, key)
	res, err := c.do(ctx, req)
	if err != nil {
		return Entry{}, c.fail(err)
	}
	if c.near != nil && !req.any {
		c.near.fill(req.part, key, res.GetGet())
	}
	r := getResult(key, res.GetGet())
	if !r.Found {
		return r.Entry, ErrNotFound
	}
	return r.Entry, nil
}

// nearGet serves key at ro's level from the near cache, if it may, and
// records the hit's session token as an answer of the cluster's would be.
func (c *Client) nearGet(key []byte, ro *cachev1.ReadOptions) (Entry, bool) {
	t := c.topo.Load()
	if t == nil {
		return Entry{}, false // as readRequest: no partition to follow yet
	}
	pid := t.partition(key)
	var own *cachev1.SessionToken
	if ro.GetConsistency() == cachev1.Consistency_CONSISTENCY_SESSION {
		own = c.sessions.token(pid)
	}
	hit, ok := c.near.lookup(pid, key, ro, own)
	if ok {
		s := hit.Meta.Session
		c.sessions.observe(&cachev1.SessionToken{Partition: s.Partition, Epoch: s.Epoch, Index: s.Index})
	}
	return hit, ok
}

// MultiGet reads keys, each at the requested level on its own partition
// (there is no cross-partition snapshot). It returns one Result per key, in
// order; a missing key is a Result with Found false, not an error. The keys
// are sent per partition, to each partition's own node, in parallel.
func (c *Client) MultiGet(ctx context.Context, keys [][]byte, opts ...ReadOption) ([]Result, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if _, err := buildReadOptions(&c.cfg, opts); err != nil {
		return nil, err
	}
	out := make([]Result, len(keys))
	err := c.perPartition(ctx, keys, func(ctx context.Context, idx []int) error {
		ro, _ := buildReadOptions(&c.cfg, opts) // checked above; one per request
		sub := make([][]byte, len(idx))
		for i, j := range idx {
			sub[i] = keys[j]
		}
		call := &cachev1.Call{Request: &cachev1.Call_MultiGet{MultiGet: &cachev1.MultiGetRequest{Keys: sub, Options: ro}}}
		res, err := c.do(ctx, c.readRequest(call, ro, sub...))
		if err != nil {
			return err
		}
		got := res.GetMultiGet().GetResults()
		if len(got) != len(sub) {
			return fmt.Errorf("client: multi-get: %d results for %d keys", len(got), len(sub))
		}
		for i, j := range idx {
			out[j] = getResult(keys[j], got[i])
		}
		return nil
	})
	if err != nil {
		return nil, c.fail(err)
	}
	return out, nil
}

// perPartition groups the indexes of keys by partition (one group before
// the partition map is known) and runs fn for every group in parallel. It
// returns the first error.
func (c *Client) perPartition(ctx context.Context, keys [][]byte, fn func(ctx context.Context, idx []int) error) error {
	if len(keys) == 0 {
		return nil
	}
	groups := make(map[uint32][]int)
	t := c.topo.Load()
	for i, k := range keys {
		var pid uint32
		if t != nil {
			pid = t.partition(k)
		}
		groups[pid] = append(groups[pid], i)
	}
	if len(groups) == 1 {
		for _, idx := range groups {
			return fn(ctx, idx)
		}
	}
	errs := make(chan error, len(groups))
	for _, idx := range groups {
		go func() { errs <- fn(ctx, idx) }()
	}
	var first error
	for range groups {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Put writes value under key.
func (c *Client) Put(ctx context.Context, key, value []byte, opts ...WriteOption) (WriteResult, error) {
	if c.closed.Load() {
		return WriteResult{}, ErrClosed
	}
	wo, err := buildWriteOptions(&c.cfg, opts)
	if err != nil {
		return WriteResult{}, err
	}
	c.forget(key)
	call := &cachev1.Call{Request: &cachev1.Call_Put{Put: &cachev1.PutRequest{Key: key, Value: value, Options: wo}}}
	res, err := c.do(ctx, c.writeRequest(call, wo, key))
	if err != nil {
		return WriteResult{}, c.fail(err)
	}
	resp := res.GetPut()
	return WriteResult{Version: resp.GetVersion(), Meta: writeMetaFromProto(resp.GetMeta())}, nil
}

// Delete removes key and reports whether it existed. Deleting a missing key
// is not an error.
func (c *Client) Delete(ctx context.Context, key []byte, opts ...WriteOption) (existed bool, err error) {
	if c.closed.Load() {
		return false, ErrClosed
	}
	wo, err := buildWriteOptions(&c.cfg, opts)
	if err != nil {
		return false, err
	}
	c.forget(key)
	call := &cachev1.Call{Request: &cachev1.Call_Delete{Delete: &cachev1.DeleteRequest{Key: key, Options: wo}}}
	res, err := c.do(ctx, c.writeRequest(call, wo, key))
	if err != nil {
		return false, c.fail(err)
	}
	return res.GetDelete().GetExisted(), nil
}

// CompareAndSet writes value under key if expect holds. It reports whether
// it swapped, and the key's version: the new one if it swapped, else the
// current one (0 if the key does not exist). An expectation that does not
// hold is not an error.
func (c *Client) CompareAndSet(ctx context.Context, key []byte, expect Expectation, value []byte, opts ...WriteOption) (swapped bool, version uint64, err error) {
	if c.closed.Load() {
		return false, 0, ErrClosed
	}
	req := &cachev1.CompareAndSetRequest{Key: key, Value: value}
	if err := expect.apply(req); err != nil {
		return false, 0, err
	}
	if req.Options, err = buildWriteOptions(&c.cfg, opts); err != nil {
		return false, 0, err
	}
	c.forget(key)
	call := &cachev1.Call{Request: &cachev1.Call_CompareAndSet{CompareAndSet: req}}
	res, err := c.do(ctx, c.writeRequest(call, req.Options, key))
	if err != nil {
		return false, 0, c.fail(err)
	}
	resp := res.GetCompareAndSet()
	return resp.GetSwapped(), resp.GetVersion(), nil
}

// MultiPut writes entries and returns one WriteResult per entry, in order.
// Entries of one partition commit atomically together; entries of different
// partitions commit separately (sent in parallel, each to its partition's
// leader), so on error some may have been applied: retry with the same
// idempotency key (WithIdempotencyKey) to apply the rest once.
func (c *Client) MultiPut(ctx context.Context, entries []KeyValue, opts ...WriteOption) ([]WriteResult, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	wo, err := buildWriteOptions(&c.cfg, opts)
	if err != nil {
		return nil, err
	}
	keys := make([][]byte, len(entries))
	kvs := make([]*cachev1.KeyValue, len(entries))
	for i, e := range entries {
		kv := &cachev1.KeyValue{Key: e.Key, Value: e.Value}
		switch {
		case e.TTL < 0:
			return nil, fmt.Errorf("%w: entry %d: negative TTL %v", ErrInvalidArgument, i, e.TTL)
		case e.TTL > 0:
			kv.Ttl = durationpb.New(e.TTL)
		}
		keys[i], kvs[i] = e.Key, kv
	}
	c.forget(keys...)
	out := make([]WriteResult, len(entries))
	err = c.perPartition(ctx, keys, func(ctx context.Context, idx []int) error {
		// Every group carries the request's idempotency key: the node
		// keys its dedup record per partition, as it does when it splits
		// a MultiPut itself.
		sub := &cachev1.MultiPutRequest{Entries: make([]*cachev1.KeyValue, len(idx)), Options: wo}
		for i, j := range idx {
			sub.Entries[i] = kvs[j]
		}
		call := &cachev1.Call{Request: &cachev1.Call_MultiPut{MultiPut: sub}}
		res, err := c.do(ctx, c.writeRequest(call, wo, keys[idx[0]]))
		if err != nil {
			return err
		}
		got := res.GetMultiPut().GetResults()
		if len(got) != len(idx) {
			return fmt.Errorf("client: multi-put: %d results for %d entries", len(got), len(idx))
		}
		for i, j := range idx {
			out[j] = WriteResult{Version: got[i].GetVersion(), Meta: writeMetaFromProto(got[i].GetMeta())}
		}
		return nil
	})
	if err != nil {
		return nil, c.fail(err)
	}
	return out, nil
}

// forget drops keys from the near cache, if there is one: the client is
// writing them. (The change stream drops them too; this spares the
// writer its own old value until then.)
func (c *Client) forget(keys ...[]byte) {
	if c.near == nil {
		return
	}
	for _, k := range keys {
		c.near.drop(k)
	}
}

// Stats reports the serving node's counters and partitions.
func (c *Client) Stats(ctx context.Context) (*cachev1.StatsResponse, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	resp, err := c.seed().rpc.Stats(ctx, &cachev1.StatsRequest{})
	if err != nil {
		return nil, c.fail(err)
	}
	return resp, nil
}

// Ready reports whether the node serves the Cache API: its gRPC health
// status for the cache.v1.Cache service is SERVING, which a node reports
// once every partition it hosts has a leader able to serve.
func (c *Client) Ready(ctx context.Context) (bool, error) {
	if c.closed.Load() {
		return false, ErrClosed
	}
	resp, err := healthpb.NewHealthClient(c.seed().cc).Check(ctx,
		&healthpb.HealthCheckRequest{Service: cachev1.Cache_ServiceDesc.ServiceName})
	if err != nil {
		return false, c.fail(err)
	}
	return resp.Status == healthpb.HealthCheckResponse_SERVING, nil
}
