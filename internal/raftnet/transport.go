package raftnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// The Raft transport: every Raft group hosted on this node talks to its
// peers through one Net, over the node's gRPC port (peer.v1 Raft
// service) and pooled connections. A replica's raft ServerID and
// ServerAddress are both its node id; Config.Resolve turns a node id
// into a dialable address at call time, so a node that moves keeps its
// place in every group's configuration.

const (
	defaultRPCTimeout      = 5 * time.Second
	defaultSnapshotTimeout = 5 * time.Minute

	// pipelineMaxInFlight is the most appends a pipeline has sent and not
	// yet had answered (raft's DefaultMaxRPCsInFlight; more hurts commit
	// latency under load, hashicorp/raft#541).
	pipelineMaxInFlight = 2

	// snapshotChunkBytes is the data per InstallSnapshot stream message.
	snapshotChunkBytes = 1 << 20
)

var (
	// errTransportClosed: the group's transport (or the whole Net) is
	// closed. It wraps raft.ErrTransportShutdown.
	errTransportClosed = fmt.Errorf("raftnet: raft transport closed: %w", raft.ErrTransportShutdown)
	// ErrPeerBlocked: Config.Allow refused traffic to the peer.
	ErrPeerBlocked = errors.New("raftnet: traffic to peer blocked")
)

// Config configures a Net.
type Config struct {
	// LocalID is this node's id: the LocalAddr of every group transport.
	LocalID string
	// Resolve maps a node id to its gRPC address. It is called before every
	// RPC and must be cheap.
	Resolve func(nodeID string) (addr string, ok bool)
	// Allow injects faults: while it returns false for a node, every RPC and
	// pipeline send to that node fails at once. Nil allows everything.
	Allow func(nodeID string) bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// PeerToken, if set, is sent on every call to another node.
	PeerToken string
	// ErrorStatus maps an error a group's raft returned while serving a
	// peer's call to the gRPC status the peer gets (the node's one
	// mapping). Nil answers Unknown; status errors and a closed transport
	// are mapped before it.
	ErrorStatus func(error) error
	// PeerTLS, if set, secures the connections to other nodes.
	PeerTLS *tls.Config
	// RPCTimeout bounds appends, votes and TimeoutNow, and each pipelined
	// append (default 5s).
	RPCTimeout time.Duration
	// SnapshotTimeout bounds one InstallSnapshot stream (default 5m).
	SnapshotTimeout time.Duration
	// HeartbeatInterval is the least time between two Heartbeats calls to
	// one peer (heartbeat.go): every group's heartbeats to the peer wait
	// for the next call. Urgent heartbeats (a read waits) go at once. Zero
	// sends each call as soon as the one before it returns.
	HeartbeatInterval time.Duration
	// VoteAfter: until then this node denies every vote and pre-vote. A
	// node that restarts sets it one heartbeat timeout ahead: it may have
	// acknowledged a leader just before it stopped, and a vote now could
	// elect a new leader while that one still holds a read lease counting
	// on this node.
	VoteAfter time.Time
}

// Net is this node's end of the multiplexed Raft transport: it serves
// the Raft service for every group registered through Transport and sends
// each group's RPCs over connections pooled per (peer, class).
type Net struct {
	cfg   Config
	conns *peerConns
	// maxAppendBytes is the largest append sent as one message (tests
	// lower it).
	maxAppendBytes int

	// ctx parents every outgoing RPC; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.RWMutex // read-locked by every incoming RPC
	closed bool
	groups map[uint64]*Transport

	// heard maps a peer's node id to the monotonic time (nanoseconds since
	// start) this node last got a Raft request or answer from it.
	heard sync.Map
	start time.Time

	// hb coalesces the heartbeats of every group, per peer.
	hb heartbeats
}

// HeardAt returns when peer last talked to this node, or when this Net
// started if it has not since.
func (rn *Net) HeardAt(peer string) time.Time {
	v, ok := rn.heard.Load(peer)
	if !ok {
		return rn.start
	}
	return rn.start.Add(time.Duration(v.(*atomic.Int64).Load()))
}

// Started returns when this Net started: HeardAt's answer for a peer not
// heard from since.
func (rn *Net) Started() time.Time { return rn.start }

// quiet reports whether this node still denies votes after a restart
// (Config.VoteAfter).
func (rn *Net) quiet() bool {
	return !rn.cfg.VoteAfter.IsZero() && time.Now().Before(rn.cfg.VoteAfter)
}

// header is the RPC header of answers this node makes up itself.
func (rn *Net) header() *peerv1.RPCHeader {
	id := []byte(rn.cfg.LocalID)
	return headerToProto(raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: id, Addr: id})
}

// noteHeard records that peer just talked to this node.
func (rn *Net) noteHeard(peer string) {
	if peer == "" {
		return
	}
	now := int64(time.Since(rn.start))
	if v, ok := rn.heard.Load(peer); ok {
		v.(*atomic.Int64).Store(now)
		return
	}
	v := new(atomic.Int64)
	v.Store(now)
	rn.heard.Store(peer, v)
}

// HeardWithin reports whether peer talked to this node within window.
func (rn *Net) HeardWithin(peer string, window time.Duration) bool {
	v, ok := rn.heard.Load(peer)
	return ok && v.(*atomic.Int64).Load() >= int64(time.Since(rn.start)-window)
}

// Isolated reports whether this node has peers but heard from none of
// them within window: it is cut off (or everyone else is down).
func (rn *Net) Isolated(window time.Duration) bool {
	seen, recent := false, false
	cutoff := int64(time.Since(rn.start) - window)
	rn.heard.Range(func(_, v any) bool {
		seen = true
		if v.(*atomic.Int64).Load() >= cutoff {
			recent = true
			return false
		}
		return true
	})
	return seen && !recent
}

// New returns a Net for cfg, with no groups yet; Register serves it on a
// gRPC server and Transport adds a group. Close stops it.
func New(cfg Config) *Net {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RPCTimeout <= 0 {
		cfg.RPCTimeout = defaultRPCTimeout
	}
	if cfg.SnapshotTimeout <= 0 {
		cfg.SnapshotTimeout = defaultSnapshotTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	conns := newPeerConns(cfg.Resolve, cfg.Logger.With("component", "raft_transport"))
	if cfg.PeerToken != "" {
		conns.dial = append(conns.dial, grpc.WithPerRPCCredentials(peerCredentials{cfg.PeerToken}))
	}
	if cfg.PeerTLS != nil {
		// Replaces the plaintext credentials of peerDialOptions.
		conns.dial = append(conns.dial, grpc.WithTransportCredentials(credentials.NewTLS(cfg.PeerTLS)))
	}
	rn := &Net{
		cfg:            cfg,
		maxAppendBytes: MaxMsgBytes,
		conns:          conns,
		ctx:            ctx,
		cancel:         cancel,
		groups:         make(map[uint64]*Transport),
		start:          time.Now(),
	}
	rn.hb = heartbeats{rn: rn, interval: cfg.HeartbeatInterval}
	return rn
}

// Register registers the Raft service on s.
func (rn *Net) Register(s *grpc.Server) {
	peerv1.RegisterRaftServer(s, &raftService{rn: rn})
}

// Transport returns the raft.Transport of group on this node, creating it
// if the group has none. After the transport is closed (raft closes it on
// Shutdown), the next call creates a fresh one. After Net.Close it
// returns a closed transport.
func (rn *Net) Transport(group uint64) *Transport {
	rn.mu.Lock()
	if t, ok := rn.groups[group]; ok {
		rn.mu.Unlock()
		return t
	}
	t := newGroupTransport(rn, group)
	closed := rn.closed
	if !closed {
		rn.groups[group] = t
	}
	rn.mu.Unlock()
	if closed {
		t.Close()
	}
	return t
}

// Close closes every group transport and every connection. Incoming Raft
// RPCs then fail with NotFound. It is idempotent.
func (rn *Net) Close() error {
	rn.mu.Lock()
	if rn.closed {
		rn.mu.Unlock()
		return nil
	}
	rn.closed = true
	groups := rn.groups
	rn.groups = make(map[uint64]*Transport)
	rn.mu.Unlock()
	for _, t := range groups {
		t.Close()
	}
	rn.cancel()
	return rn.conns.close()
}

// lookup returns the open transport of group, or a NotFound status.
func (rn *Net) lookup(group uint64) (*Transport, error) {
	rn.mu.RLock()
	t, ok := rn.groups[group]
	rn.mu.RUnlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "raftnet: no replica of group %d on this node", group)
	}
	return t, nil
}

// release forgets t if it is still the transport of its group.
func (rn *Net) release(t *Transport) {
	rn.mu.Lock()
	if rn.groups[t.group] == t {
		delete(rn.groups, t.group)
	}
	rn.mu.Unlock()
}

// allowed reports whether traffic to peer may go out.
func (rn *Net) allowed(peer string) error {
	if rn.cfg.Allow != nil && !rn.cfg.Allow(peer) {
		return fmt.Errorf("%w: %s", ErrPeerBlocked, peer)
	}
	return nil
}

// errSnapshotHandled ends the snapshot pump once the handler has its answer.
