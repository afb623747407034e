package node

import (
	"errors"
	"fmt"
	"net"

	"github.com/elcache/elcache/internal/resp"
	"github.com/elcache/elcache/internal/respserver"
	"github.com/elcache/elcache/node/version"
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
