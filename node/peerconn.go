package node

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// connClass is the kind of traffic a pooled peer connection carries. Each
// (peer, class) pair gets its own gRPC connection, and so its own TCP
// connection and HTTP/2 flow-control windows: a snapshot stream or a burst
// of forwarded requests never queues a heartbeat behind it.
type connClass int

const (
	// classRaft carries appends, heartbeats, votes, TimeoutNow and the
	// append pipelines.
	classRaft connClass = iota
	// classSnapshot carries InstallSnapshot streams only.
	classSnapshot
	// classForward carries client requests forwarded to another node.
	classForward
)

func (c connClass) String() string {
	switch c {
	case classRaft:
		return "raft"
	case classSnapshot:
		return "snapshot"
	case classForward:
		return "forward"
	default:
		return fmt.Sprintf("class(%d)", int(c))
	}
}

// peerKeepalive is the client keepalive. Time must stay at or above the
// server's enforcement MinTime (node.go), or the server closes the
// connection with ENHANCE_YOUR_CALM.
var peerKeepalive = keepalive.ClientParameters{
	Time:                10 * time.Second,
	Timeout:             5 * time.Second,
	PermitWithoutStream: true,
}

// peerDialOptions are the options of every node-to-node connection: the one
// place that will add TLS.
func peerDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(peerKeepalive),
		// gRPC's default reconnect backoff grows to 2 minutes, during which
		// every call fails at once: a peer that restarted would stay cut
		// off from Raft and forwarding long after it is back.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMsgBytes),
			grpc.MaxCallSendMsgSize(maxMsgBytes),
		),
	}
}

var errConnsClosed = errors.New("node: peer connections closed")

type connKey struct {
	node  string
	class connClass
}

type pooledConn struct {
	addr string
	cc   *grpc.ClientConn
}

// peerConns pools one client connection per (peer node, class). A
// connection is dialed lazily and redialed when the peer's address changes.
type peerConns struct {
	resolve func(nodeID string) (addr string, ok bool)
	log     *slog.Logger
	// dial are extra options of every connection (the peer token).
	dial []grpc.DialOption

	mu     sync.Mutex
	closed bool
	conns  map[connKey]pooledConn
}

func newPeerConns(resolve func(string) (string, bool), log *slog.Logger) *peerConns {
	return &peerConns{resolve: resolve, log: log, conns: make(map[connKey]pooledConn)}
}

// get returns the connection to nodeID for class. grpc.NewClient does not
// connect; the first RPC does, and a failed connection is retried by gRPC
// itself with backoff.
func (p *peerConns) get(nodeID string, class connClass) (*grpc.ClientConn, error) {
	var addr string
	ok := false
	if p.resolve != nil {
		addr, ok = p.resolve(nodeID)
	}
	if !ok || addr == "" {
		return nil, fmt.Errorf("node: no address for node %s", nodeID)
	}
	key := connKey{node: nodeID, class: class}

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errConnsClosed
	}
	old, had := p.conns[key]
	if had && old.addr == addr {
		p.mu.Unlock()
		return old.cc, nil
	}
	cc, err := grpc.NewClient(addr, append(peerDialOptions(), p.dial...)...)
	if err != nil {
		p.mu.Unlock()
		return nil, fmt.Errorf("node: dial %s (%s, %s): %w", nodeID, addr, class, err)
	}
	p.conns[key] = pooledConn{addr: addr, cc: cc}
	p.mu.Unlock()
	if had {
		// The peer moved: RPCs still on the old connection fail and their
		// callers retry on the new one.
		p.log.Info("peer address changed", "peer", nodeID, "class", class.String(), "old_addr", old.addr, "addr", addr)
		_ = old.cc.Close()
	}
	return cc, nil
}

// close closes every connection. It is idempotent.
func (p *peerConns) close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	var errs []error
	for key, c := range conns {
		if err := c.cc.Close(); err != nil {
			errs = append(errs, fmt.Errorf("node: close conn to %s (%s): %w", key.node, key.class, err))
		}
	}
	return errors.Join(errs...)
}
