package client

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// topology is the client's partition map: immutable, replaced whole.
type topology struct {
	version uint64
	count   uint32
	// parts is indexed by partition: the leader's and replicas' node ids.
	parts []route
	// addrs maps node ids to gRPC addresses.
	addrs map[string]string
}

type route struct {
	leader   string
	replicas []string
}

// partition returns key's partition: xxhash64(key) mod count, the
// cluster's own function (package ring).
func (t *topology) partition(key []byte) uint32 {
	return uint32(xxhash.Sum64(key) % uint64(t.count))
}

func topologyFromProto(p *cachev1.Topology) *topology {
	t := &topology{version: p.GetMapVersion(), count: p.GetPartitionCount(), addrs: make(map[string]string)}
	for _, n := range p.GetNodes() {
		if n.GetAddress() != "" {
			t.addrs[n.GetId()] = n.GetAddress()
		}
	}
	t.parts = make([]route, t.count)
	for _, r := range p.GetPartitions() {
		if r.GetPartition() < t.count {
			t.parts[r.GetPartition()] = route{leader: r.GetLeader(), replicas: r.GetReplicas()}
		}
	}
	return t
}

// withLeader returns a copy of t in which partition pid is led by id (at
// addr, if given).
func (t *topology) withLeader(pid uint32, id, addr string) *topology {
	c := *t
	c.parts = slices.Clone(t.parts)
	c.parts[pid].leader = id
	if addr != "" && t.addrs[id] != addr {
		c.addrs = make(map[string]string, len(t.addrs)+1)
		for k, v := range t.addrs {
			c.addrs[k] = v
		}
		c.addrs[id] = addr
	}
	return &c
}

// nodeConn is the client's connection to one node.
type nodeConn struct {
	addr string
	cc   *grpc.ClientConn
	rpc  cachev1.CacheClient
	br   breaker
	// latency is an exponentially weighted mean of answered calls, in
	// nanoseconds (0 until the first).
	latency atomic.Int64

	pipeMu sync.Mutex
	pipe   *pipe // nil until the first pipelined call, or after one broke
}

// observe folds one call's latency into the mean.
func (n *nodeConn) observe(d time.Duration) {
	for {
		old := n.latency.Load()
		next := int64(d)
		if old != 0 {
			next = old - old/5 + int64(d)/5
		}
		if n.latency.CompareAndSwap(old, next) {
			return
		}
	}
}

// conns are the client's node connections, by address.
type conns struct {
	cfg    *Config
	mu     sync.Mutex
	byAddr map[string]*nodeConn
}

// get returns the connection to addr, dialing it if new. gRPC connects
// lazily, so this never blocks.
func (cs *conns) get(addr string) (*nodeConn, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if n, ok := cs.byAddr[addr]; ok {
		return n, nil
	}
	cc, err := grpc.NewClient(addr, dialOptions(cs.cfg)...)
	if err != nil {
		return nil, err
	}
	n := &nodeConn{addr: addr, cc: cc, rpc: cachev1.NewCacheClient(cc)}
	n.br.init(cs.cfg.BreakerFailures, cs.cfg.BreakerCooldown)
	cs.byAddr[addr] = n
	return n, nil
}

// all returns every connection.
func (cs *conns) all() []*nodeConn {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make([]*nodeConn, 0, len(cs.byAddr))
	for _, n := range cs.byAddr {
		out = append(out, n)
	}
	return out
}

func dialOptions(cfg *Config) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxRecvMsgSize)),
	}
	if cfg.Credentials != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(cfg.Credentials))
	}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(TokenCredentials(cfg.Token, cfg.TLS != nil || !cfg.AllowPlaintextToken)))
	}
	if cfg.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(cfg.Dialer))
	}
	if cfg.KeepaliveTime > 0 {
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: cfg.KeepaliveTime}))
	}
	return opts
}

// fetchTopology asks the seeds, in random order, for the partition map
// until one answers or ctx ends.
func (c *Client) fetchTopology(ctx context.Context) error {
	var last error
	for _, i := range rand.Perm(len(c.cfg.Seeds)) {
		n, err := c.conns.get(c.cfg.Seeds[i])
		if err != nil {
			last = err
			continue
		}
		t, err := n.rpc.Topology(ctx, &cachev1.TopologyRequest{}, grpc.WaitForReady(true))
		if err != nil {
			last = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		c.install(topologyFromProto(t))
		return nil
	}
	return last
}

// install makes t the partition map unless the client has a newer one.
func (c *Client) install(t *topology) {
	if t.count == 0 {
		return
	}
	for {
		old := c.topo.Load()
		if old != nil && old.version > t.version {
			return
		}
		if c.topo.CompareAndSwap(old, t) {
			return
		}
	}
}

// watch follows WatchTopology on some node, moving to another when the
// stream breaks, until the client closes.
func (c *Client) watch(ctx context.Context) {
	defer c.wg.Done()
	pause := c.cfg.RetryBase
	for ctx.Err() == nil {
		addrs := slices.Clone(c.cfg.Seeds)
		if t := c.topo.Load(); t != nil {
			for _, a := range t.addrs {
				addrs = append(addrs, a)
			}
		}
		n, err := c.conns.get(addrs[rand.IntN(len(addrs))])
		if err == nil {
			stream, err := n.rpc.WatchTopology(ctx, &cachev1.TopologyRequest{})
			for err == nil {
				var t *cachev1.Topology
				if t, err = stream.Recv(); err == nil {
					c.install(topologyFromProto(t))
					pause = c.cfg.RetryBase
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(rand.N(pause + 1)):
		}
		pause = min(2*pause, c.cfg.RetryMax)
	}
}

// learnLeader applies a leader hint from an answer.
func (c *Client) learnLeader(h *cachev1.LeaderHint) {
	if h == nil {
		return
	}
	t := c.topo.Load()
	if t == nil || h.GetPartition() >= t.count {
		return
	}
	if h.GetMapVersion() > t.version {
		c.refresh()
	}
	if h.GetNodeId() == "" || t.parts[h.GetPartition()].leader == h.GetNodeId() && (h.GetAddress() == "" || t.addrs[h.GetNodeId()] == h.GetAddress()) {
		return
	}
	c.topo.CompareAndSwap(t, t.withLeader(h.GetPartition(), h.GetNodeId(), h.GetAddress()))
}

// refresh fetches the partition map in the background, one fetch at a
// time.
func (c *Client) refresh() {
	if !c.refreshing.CompareAndSwap(false, true) {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		defer cancel()
		_ = c.fetchTopology(ctx) // the watch stream catches up otherwise
	}()
}
