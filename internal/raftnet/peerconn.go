package raftnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// MaxMsgBytes bounds gRPC messages between nodes and from clients: a
// MultiPut of large values, or an append of many entries, must fit.
const MaxMsgBytes = 64 << 20

// Class is the kind of traffic a pooled peer connection carries. Each
// (peer, class) pair gets its own gRPC connection, and so its own TCP
// connection and HTTP/2 flow-control windows: a snapshot stream or a burst
// of forwarded requests never queues a heartbeat behind it.
type Class int

const (
	// ClassRaft carries appends, heartbeats, votes, TimeoutNow, the
	// append pipelines and the node's leadership rounds.
	ClassRaft Class = iota
	// ClassSnapshot carries InstallSnapshot streams only.
	ClassSnapshot
	// ClassForward carries client requests forwarded to another node.
	ClassForward
)

func (c Class) String() string {
	switch c {
	case ClassRaft:
		return "raft"
	case ClassSnapshot:
		return "snapshot"
	case ClassForward:
		return "forward"
	default:
		return fmt.Sprintf("class(%d)", int(c))
	}
}

// peerKeepalive is the client keepalive. Time must stay at or above the
// server's enforcement MinTime (the node's gRPC server), or the server
// closes the connection with ENHANCE_YOUR_CALM.
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
			grpc.MaxCallRecvMsgSize(MaxMsgBytes),
			grpc.MaxCallSendMsgSize(MaxMsgBytes),
		),
	}
}

var errConnsClosed = errors.New("raftnet: peer connections closed")

type connKey struct {
	node  string
	class Class
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
func (p *peerConns) get(nodeID string, class Class) (*grpc.ClientConn, error) {
	var addr string
	ok := false
	if p.resolve != nil {
		addr, ok = p.resolve(nodeID)
	}
	if !ok || addr == "" {
		return nil, fmt.Errorf("raftnet: no address for node %s", nodeID)
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
		return nil, fmt.Errorf("raftnet: dial %s (%s, %s): %w", nodeID, addr, class, err)
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
			errs = append(errs, fmt.Errorf("raftnet: close conn to %s (%s): %w", key.node, key.class, err))
		}
	}
	return errors.Join(errs...)
}

// peerCredentials sends the node's peer token on node-to-node calls.
type peerCredentials struct{ secret string }

func (p peerCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + p.secret}, nil
}

// RequireTransportSecurity is false: peers may talk in plaintext on a
// trusted network; with TLS the token is encrypted like everything else.
func (p peerCredentials) RequireTransportSecurity() bool { return false }

var _ credentials.PerRPCCredentials = peerCredentials{}

// Conn returns the pooled connection to nodeID for class.
func (rn *Net) Conn(nodeID string, class Class) (*grpc.ClientConn, error) {
	return rn.conns.get(nodeID, class)
}
