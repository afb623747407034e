package node

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/elcache/elcache/internal/request"
	"github.com/elcache/elcache/internal/resp"
	"github.com/elcache/elcache/internal/respserver"
	"github.com/elcache/elcache/node/version"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// The Redis-protocol listener (internal/respserver): it calls this node's
// Cache handlers in-process, so a Redis command is routed, checked and
// answered exactly as the gRPC request it becomes.

// startRESP serves RESP on Config.RESP.Addr, when it is set.
func (n *Node) startRESP() error {
	c := n.cfg.RESP
	if c.Addr == "" {
		return nil
	}
	level := c.Consistency
	if level == 0 {
		level = n.cfg.DefaultConsistency
	}
	cfg := respserver.Config{
		Cache:        &cacheServer{n: n},
		Partition:    n.ring.Partition,
		Guard:        n.guard,
		Level:        level,
		MaxStaleness: c.MaxStaleness,
		Mode:         c.WriteMode,
		Timeout:      c.Timeout,
		MaxConns:     c.MaxConns,
		NodeName:     n.cfg.NodeName,
		Version:      version.String,
		Logger:       n.log,
		Observer:     n.metrics.RESP(),
		// A value a little over the limit gets a clean error from the
		// node; far beyond it, the listener stops reading and closes.
		Limits: resp.Limits{MaxBulk: 2 * max(n.cfg.Limits.MaxValueBytes, n.cfg.Limits.MaxKeyBytes, 1<<20)},
	}
	if n.cfg.TLS.Enabled() {
		tlsCfg, _, err := n.cfg.TLS.Configs()
		if err != nil {
			return err
		}
		cfg.TLS = tlsCfg
	}
	srv, err := respserver.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("node: listen %s (RESP): %w", c.Addr, err)
	}
	n.resp, n.respAddr = srv, ln.Addr().String()
	n.respDone = make(chan struct{})
	go func() {
		defer close(n.respDone)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, respserver.ErrClosed) {
			n.log.Error("resp serve stopped", "err", err)
		}
	}()
	n.log.Info("resp listening", "resp_addr", n.respAddr)
	return nil
}

// RESPAddr is the address the Redis-protocol listener serves on, or ""
// when Config.RESP.Addr is not set.
func (n *Node) RESPAddr() string { return n.respAddr }

// stopRESP closes the RESP listener and its connections.
func (n *Node) stopRESP() {
	if n.resp == nil {
		return
	}
	n.resp.Close()
	<-n.respDone
}

var _ respserver.LocalGetter = (*cacheServer)(nil)

// LocalGet is the Redis listener's fast path for GET at EVENTUAL: what Get
// does when this node's replica serves the read (the same checks, proof,
// counters and answer), without Get's messages, its routing loop or its
// closures. It declines (ok false) whenever Get would do more than read
// the local replica: another level, a bad key, a replica that may not
// serve (none here, displaced, or a leader-only partition), a read delay
// set by a test, or a miss the database may fill.
func (s *cacheServer) LocalGet(key []byte, level cachev1.Consistency) (value []byte, found bool, meta *cachev1.ReadMeta, ok bool) {
	n := s.n
	if level != cachev1.Consistency_CONSISTENCY_EVENTUAL || n.check.Key("key", key) != nil || n.faults.readDelay.Load() > 0 {
		return nil, false, nil, false
	}
	p, f := n.routeFacts(n.ring.Partition(key), needsLeader(level))
	if planRoute(f) != routeLocal {
		return nil, false, nil, false
	}
	proof, err := p.readReady(context.Background(), request.Read{Level: level})
	if err != nil || proof.recheck != nil {
		return nil, false, nil, false
	}
	e, found, meta, err := n.lookup(p, key, proof, n.backend != nil)
	if err != nil {
		return nil, false, nil, false
	}
	return e.Value, found, meta, true
}
