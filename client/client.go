package client

import (
	"context"
	"fmt"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Client talks to an elcache cluster through one node. It is safe for
// concurrent use.
type Client struct {
	cfg    Config
	conn   *grpc.ClientConn
	rpc    cachev1.CacheClient
	closed atomic.Bool
}

// New validates cfg and connects to cfg.Addr. If cfg.DialTimeout is
// positive it waits, within ctx, until the connection is ready.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	dopts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxRecvMsgSize)),
	}
	if cfg.KeepaliveTime > 0 {
		dopts = append(dopts, grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: cfg.KeepaliveTime}))
	}
	conn, err := grpc.NewClient(cfg.Addr, dopts...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if cfg.DialTimeout > 0 {
		if err := waitReady(ctx, conn, cfg.DialTimeout); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("%w: connecting to %s: %w", ErrUnavailable, cfg.Addr, err)
		}
	}
	return &Client{cfg: cfg, conn: conn, rpc: cachev1.NewCacheClient(conn)}, nil
}

// waitReady connects conn and waits up to d for it to become ready.
func waitReady(ctx context.Context, conn *grpc.ClientConn, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	conn.Connect()
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if !conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("%w (connection %s)", ctx.Err(), s)
		}
	}
}

// Close closes the connection. Requests in flight fail with ErrClosed, as
// do later ones. Close is idempotent.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("client: close: %w", err)
	}
	return nil
}

// fail maps an error from an RPC.
func (c *Client) fail(err error) error {
	if c.closed.Load() && status.Code(err) == codes.Canceled {
		return ErrClosed
	}
	return fromStatus(err)
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
	resp, err := c.rpc.Get(ctx, &cachev1.GetRequest{Key: key, Options: ro})
	if err != nil {
		return Entry{}, c.fail(err)
	}
	r := getResult(key, resp)
	if !r.Found {
		return r.Entry, ErrNotFound
	}
	return r.Entry, nil
}

// MultiGet reads keys, each at the requested level on its own partition
// (there is no cross-partition snapshot). It returns one Result per key, in
// order; a missing key is a Result with Found false, not an error.
func (c *Client) MultiGet(ctx context.Context, keys [][]byte, opts ...ReadOption) ([]Result, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	ro, err := buildReadOptions(&c.cfg, opts)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, nil
	}
	resp, err := c.rpc.MultiGet(ctx, &cachev1.MultiGetRequest{Keys: keys, Options: ro})
	if err != nil {
		return nil, c.fail(err)
	}
	if n := len(resp.GetResults()); n != len(keys) {
		return nil, fmt.Errorf("client: multi-get: %d results for %d keys", n, len(keys))
	}
	out := make([]Result, len(keys))
	for i, r := range resp.GetResults() {
		out[i] = getResult(keys[i], r)
	}
	return out, nil
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
	resp, err := c.rpc.Put(ctx, &cachev1.PutRequest{Key: key, Value: value, Options: wo})
	if err != nil {
		return WriteResult{}, c.fail(err)
	}
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
	resp, err := c.rpc.Delete(ctx, &cachev1.DeleteRequest{Key: key, Options: wo})
	if err != nil {
		return false, c.fail(err)
	}
	return resp.GetExisted(), nil
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
	resp, err := c.rpc.CompareAndSet(ctx, req)
	if err != nil {
		return false, 0, c.fail(err)
	}
	return resp.GetSwapped(), resp.GetVersion(), nil
}

// MultiPut writes entries and returns one WriteResult per entry, in order.
// Entries of one partition commit atomically together; entries of different
// partitions commit separately, so on error some may have been applied.
func (c *Client) MultiPut(ctx context.Context, entries []KeyValue, opts ...WriteOption) ([]WriteResult, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	wo, err := buildWriteOptions(&c.cfg, opts)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, nil
	}
	req := &cachev1.MultiPutRequest{Entries: make([]*cachev1.KeyValue, len(entries)), Options: wo}
	for i, e := range entries {
		kv := &cachev1.KeyValue{Key: e.Key, Value: e.Value}
		switch {
		case e.TTL < 0:
			return nil, fmt.Errorf("%w: entry %d: negative TTL %v", ErrInvalidArgument, i, e.TTL)
		case e.TTL > 0:
			kv.Ttl = durationpb.New(e.TTL)
		}
		req.Entries[i] = kv
	}
	resp, err := c.rpc.MultiPut(ctx, req)
	if err != nil {
		return nil, c.fail(err)
	}
	if n := len(resp.GetResults()); n != len(entries) {
		return nil, fmt.Errorf("client: multi-put: %d results for %d entries", n, len(entries))
	}
	out := make([]WriteResult, len(entries))
	for i, r := range resp.GetResults() {
		out[i] = WriteResult{Version: r.GetVersion(), Meta: writeMetaFromProto(r.GetMeta())}
	}
	return out, nil
}

// Stats reports the serving node's counters and partitions.
func (c *Client) Stats(ctx context.Context) (*cachev1.StatsResponse, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	resp, err := c.rpc.Stats(ctx, &cachev1.StatsRequest{})
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
	resp, err := healthpb.NewHealthClient(c.conn).Check(ctx,
		&healthpb.HealthCheckRequest{Service: cachev1.Cache_ServiceDesc.ServiceName})
	if err != nil {
		return false, c.fail(err)
	}
	return resp.Status == healthpb.HealthCheckResponse_SERVING, nil
}
