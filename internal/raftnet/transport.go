package raftnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"google.golang.org/grpc/credentials"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

//lint:file-ignore SA1019 the transport carries raft's RPC structs field by field, deprecated fields included (older raft versions read them).

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

// Conn returns the pooled connection to nodeID for class.
func (rn *Net) Conn(nodeID string, class Class) (*grpc.ClientConn, error) {
	return rn.conns.get(nodeID, class)
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

// Stats counts one group transport's traffic.
type Stats struct {
	// Sent: unary heartbeats, other unary appends, pipelined appends,
	// votes and pre-votes, snapshots and TimeoutNows.
	Heartbeats, Appends, Pipelined, Votes, PreVotes, Snapshots, TimeoutNows uint64
	// Splits counts the extra messages of appends too large for one.
	Splits uint64
	// HeartbeatsFast counts received heartbeats handed to raft's heartbeat
	// handler, bypassing the consumer channel.
	HeartbeatsFast uint64
	// Folded counts pipelined appends sent in a Heartbeats call instead
	// (appendPipeline.fold); they are also in Pipelined.
	Folded uint64
}

// Transport is one Raft group's raft.Transport on this node.
type Transport struct {
	rn        *Net
	group     uint64
	consumeCh chan raft.RPC

	// ctx parents this group's outgoing RPCs and ends the wait of incoming
	// ones; Close cancels it.
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once

	hbMu        sync.Mutex
	heartbeatFn func(raft.RPC)

	mu        sync.Mutex
	closed    bool
	pipelines map[*appendPipeline]struct{}
	sendTerm  uint64               // the highest term this node sent appends or votes in
	match     map[string]peerMatch // acks in sendTerm

	commitMu       sync.Mutex
	leaderCommit   uint64
	leaderCommitAt time.Time
	freshCommit    uint64    // from appends sent under a leader lease
	freshAt        time.Time // when the latest such append was sent, as seen here

	// leaseFn reports whether this node, as leader, holds a read lease
	// (see partition.leaseValid); appends sent under one say so.
	leaseFn atomic.Pointer[func() bool]
	// transferAt is when this node last sent TimeoutNow (a leadership
	// transfer) in the group; see partition.leaseValid.
	transferMu sync.Mutex
	transferAt time.Time

	stats struct {
		heartbeats, appends, pipelined, splits, votes, preVotes, snapshots, timeoutNows atomic.Uint64
		heartbeatsFast, folded                                                          atomic.Uint64
	}
}

// peerMatch is what the leader knows of one follower in sendTerm.
type peerMatch struct {
	index  uint64
	sentAt time.Time
}

var (
	_ raft.Transport   = (*Transport)(nil)
	_ raft.WithPreVote = (*Transport)(nil)
	_ raft.WithClose   = (*Transport)(nil)
)

func newGroupTransport(rn *Net, group uint64) *Transport {
	ctx, cancel := context.WithCancel(rn.ctx)
	return &Transport{
		rn:        rn,
		group:     group,
		consumeCh: make(chan raft.RPC),
		ctx:       ctx,
		cancel:    cancel,
		pipelines: make(map[*appendPipeline]struct{}),
		match:     make(map[string]peerMatch),
	}
}

// Close releases the group from the Net, ends its pipelines and
// outgoing RPCs, and fails incoming RPCs still waiting for raft. It is
// idempotent; raft calls it at the end of Shutdown.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.rn.release(t)
		t.cancel()
		t.mu.Lock()
		t.closed = true
		pipelines := t.pipelines
		t.pipelines = nil
		t.mu.Unlock()
		for p := range pipelines {
			p.Close()
		}
	})
	return nil
}

// Consumer implements raft.Transport.
func (t *Transport) Consumer() <-chan raft.RPC { return t.consumeCh }

// LocalAddr implements raft.Transport: this node's id.
func (t *Transport) LocalAddr() raft.ServerAddress {
	return raft.ServerAddress(t.rn.cfg.LocalID)
}

// EncodePeer implements raft.Transport. Addresses are node ids and need no
// encoding.
func (t *Transport) EncodePeer(_ raft.ServerID, addr raft.ServerAddress) []byte {
	return []byte(addr)
}

// DecodePeer implements raft.Transport.
func (t *Transport) DecodePeer(buf []byte) raft.ServerAddress {
	return raft.ServerAddress(buf)
}

// SetHeartbeatHandler implements raft.Transport.
func (t *Transport) SetHeartbeatHandler(cb func(raft.RPC)) {
	t.hbMu.Lock()
	t.heartbeatFn = cb
	t.hbMu.Unlock()
}

// Match reports, for a peer this node leads, the highest log index the
// peer is known to hold identical to this node's log (raft's matchIndex:
// the last entry of the latest successful non-heartbeat append) and the
// monotonic send time of the latest append of any kind, heartbeats
// included, that the peer accepted. Both belong to the latest term this
// node sent appends or votes in: the first send in a newer term (an
// election, a new leadership) resets every peer to zero.
func (t *Transport) Match(nodeID string) (index uint64, ackSentAt time.Time) {
	t.mu.Lock()
	m := t.match[nodeID]
	t.mu.Unlock()
	return m.index, m.sentAt
}

// SetLeaseCheck installs the function that tells whether this node holds
// a read lease; until it is set, no append claims one.
func (t *Transport) SetLeaseCheck(fn func() bool) {
	t.leaseFn.Store(&fn)
}

// leaseHeld reports whether this node holds a read lease now.
func (t *Transport) leaseHeld() bool {
	fn := t.leaseFn.Load()
	return fn != nil && (*fn)()
}

// TransferAt reports when this node last sent TimeoutNow in the group (a
// leadership transfer it started), or zero.
func (t *Transport) TransferAt() time.Time {
	t.transferMu.Lock()
	defer t.transferMu.Unlock()
	return t.transferAt
}

// FreshCommit reports, on a follower, the highest commit index carried by
// an accepted append that its leader sent while holding a read lease, and
// when the leader checked that lease, on this node's monotonic clock: the
// append's arrival less its age (appendAge). No other leader existed then,
// so every write acknowledged before then is at or below index.
func (t *Transport) FreshCommit() (index uint64, at time.Time) {
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	return t.freshCommit, t.freshAt
}

// wireAppend converts an append (or a part of one) handed over by raft at
// handed for the wire. lease says whether this node held a read lease
// when raft handed it over: its commit index was current then.
func (t *Transport) wireAppend(part *raft.AppendEntriesRequest, handed time.Time, lease bool) *peerv1.AppendEntriesRequest {
	out := appendRequestToProto(t.group, part)
	if lease && !isHeartbeat(part) {
		out.LeaderLease = true
		out.QueuedNanos = int64(time.Since(handed))
		out.LeaseCheckedUnixNanos = handed.UnixNano()
	}
	return out
}

// LeaderCommit reports, on a follower, the highest LeaderCommitIndex
// carried by an append this node accepted (heartbeats carry none), and
// when the latest accepted append arrived. Commit indexes never go back,
// so index was committed by that time.
func (t *Transport) LeaderCommit() (index uint64, at time.Time) {
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	return t.leaderCommit, t.leaderCommitAt
}

// Stats returns the transport's traffic counters.
func (t *Transport) Stats() Stats {
	return Stats{
		Heartbeats:     t.stats.heartbeats.Load(),
		Appends:        t.stats.appends.Load(),
		Pipelined:      t.stats.pipelined.Load(),
		Splits:         t.stats.splits.Load(),
		Votes:          t.stats.votes.Load(),
		PreVotes:       t.stats.preVotes.Load(),
		Snapshots:      t.stats.snapshots.Load(),
		TimeoutNows:    t.stats.timeoutNows.Load(),
		HeartbeatsFast: t.stats.heartbeatsFast.Load(),
		Folded:         t.stats.folded.Load(),
	}
}

// isHeartbeat is net_transport.go's test: raft's heartbeat goroutine sends
// a term and a leader and nothing else.
func isHeartbeat(req *raft.AppendEntriesRequest) bool {
	leader := req.Addr
	if len(leader) == 0 {
		leader = req.Leader
	}
	return req.Term != 0 && len(leader) > 0 &&
		req.PrevLogEntry == 0 && req.PrevLogTerm == 0 &&
		len(req.Entries) == 0 && req.LeaderCommitIndex == 0
}

// noteTerm forgets every peer's match when this node sends in a newer term.
func (t *Transport) noteTerm(term uint64) {
	t.mu.Lock()
	t.noteTermLocked(term)
	t.mu.Unlock()
}

func (t *Transport) noteTermLocked(term uint64) {
	if term > t.sendTerm {
		t.sendTerm = term
		clear(t.match)
	}
}

// recordAck updates the peer's match after an append it answered.
func (t *Transport) recordAck(peer string, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse, sent time.Time) {
	if !resp.Success {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.noteTermLocked(req.Term)
	if req.Term < t.sendTerm {
		return
	}
	m := t.match[peer]
	if !isHeartbeat(req) {
		idx := req.PrevLogEntry
		if n := len(req.Entries); n > 0 {
			idx = req.Entries[n-1].Index
		}
		m.index = max(m.index, idx)
	}
	if sent.After(m.sentAt) {
		m.sentAt = sent
	}
	t.match[peer] = m
}

// ---- client side ----

// call runs one unary RPC to target with a deadline, after the closed and
// Allow checks.
func (t *Transport) call(target raft.ServerAddress, class Class, timeout time.Duration, what string,
	fn func(ctx context.Context, c peerv1.RaftClient) error) error {
	peer := string(target)
	if t.ctx.Err() != nil {
		return errTransportClosed
	}
	if err := t.rn.allowed(peer); err != nil {
		return err
	}
	cc, err := t.rn.Conn(peer, class)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	if err := fn(ctx, peerv1.NewRaftClient(cc)); err != nil {
		if t.ctx.Err() != nil {
			return errTransportClosed
		}
		return fmt.Errorf("raftnet: raft %s to %s (group %d): %w", what, peer, t.group, err)
	}
	t.rn.noteHeard(peer)
	return nil
}

// AppendEntries implements raft.Transport.
func (t *Transport) AppendEntries(_ raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if isHeartbeat(args) {
		return t.call(target, ClassRaft, t.rn.cfg.RPCTimeout, "heartbeat", func(ctx context.Context, _ peerv1.RaftClient) error {
			t.stats.heartbeats.Add(1)
			t.noteTerm(args.Term)
			sent := time.Now()
			out, err := t.rn.heartbeat(ctx, string(target), appendRequestToProto(t.group, args))
			if err != nil {
				return err
			}
			appendResponseFromProto(out, resp)
			t.recordAck(string(target), args, resp, sent)
			return nil
		})
	}
	return t.call(target, ClassRaft, t.rn.cfg.RPCTimeout, "AppendEntries", func(ctx context.Context, c peerv1.RaftClient) error {
		t.stats.appends.Add(1)
		t.noteTerm(args.Term)
		handed, lease := time.Now(), t.leaseHeld()
		// The parts go one after another; the answer is the first failed
		// part's or the last part's.
		for _, part := range t.splitAppend(args) {
			sent := time.Now()
			// Wait for a connection (up to the deadline) rather than fail
			// at once: raft backs off exponentially per failed append, up
			// to 41 s, so a follower that was down for a while would wait
			// that long to catch up after it is back. Failing only at the
			// deadline keeps the failure count, and the backoff, small.
			out, err := c.AppendEntries(ctx, t.wireAppend(part, handed, lease), grpc.WaitForReady(true))
			if err != nil {
				return err
			}
			appendResponseFromProto(out, resp)
			t.recordAck(string(target), part, resp, sent)
			if !resp.Success {
				return nil
			}
		}
		return nil
	})
}

// splitAppend cuts an append that might not fit in one gRPC message into
// consecutive appends, each continuing from the previous one's last entry.
// A follower that applies the parts in order ends exactly where the whole
// would have left it. An entry too large on its own still goes alone, and
// fails in gRPC.
func (t *Transport) splitAppend(args *raft.AppendEntriesRequest) []*raft.AppendEntriesRequest {
	limit := t.rn.maxAppendBytes
	base := 4<<10 + len(args.ID) + len(args.Addr) + len(args.Leader)
	size := base
	for _, e := range args.Entries {
		size += entryBytesBound(e)
	}
	if len(args.Entries) <= 1 || size <= limit {
		return []*raft.AppendEntriesRequest{args}
	}
	var parts []*raft.AppendEntriesRequest
	cut := func(from, to int) {
		part := *args
		part.Entries = args.Entries[from:to]
		if from > 0 {
			prev := args.Entries[from-1]
			part.PrevLogEntry, part.PrevLogTerm = prev.Index, prev.Term
		}
		parts = append(parts, &part)
	}
	from, size := 0, base
	for i, e := range args.Entries {
		n := entryBytesBound(e)
		if i > from && size+n > limit {
			cut(from, i)
			from, size = i, base
		}
		size += n
	}
	cut(from, len(args.Entries))
	t.stats.splits.Add(uint64(len(parts) - 1))
	return parts
}

// entryBytesBound bounds the encoded size of one entry: its bytes plus
// tags, lengths and varints.
func entryBytesBound(e *raft.Log) int {
	return len(e.Data) + len(e.Extensions) + 64
}

// RequestVote implements raft.Transport.
func (t *Transport) RequestVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.call(target, ClassRaft, t.rn.cfg.RPCTimeout, "RequestVote", func(ctx context.Context, c peerv1.RaftClient) error {
		t.stats.votes.Add(1)
		t.noteTerm(args.Term)
		out, err := c.RequestVote(ctx, &peerv1.RequestVoteRequest{
			Group:              t.group,
			Header:             headerToProto(args.RPCHeader),
			Term:               args.Term,
			Candidate:          args.Candidate,
			LastLogIndex:       args.LastLogIndex,
			LastLogTerm:        args.LastLogTerm,
			LeadershipTransfer: args.LeadershipTransfer,
		})
		if err != nil {
			return err
		}
		*resp = raft.RequestVoteResponse{
			RPCHeader: headerFromProto(out.GetHeader()),
			Term:      out.GetTerm(),
			Peers:     out.GetPeers(),
			Granted:   out.GetGranted(),
		}
		return nil
	})
}

// RequestPreVote implements raft.WithPreVote.
func (t *Transport) RequestPreVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.call(target, ClassRaft, t.rn.cfg.RPCTimeout, "RequestPreVote", func(ctx context.Context, c peerv1.RaftClient) error {
		t.stats.preVotes.Add(1)
		out, err := c.RequestPreVote(ctx, &peerv1.RequestPreVoteRequest{
			Group:        t.group,
			Header:       headerToProto(args.RPCHeader),
			Term:         args.Term,
			LastLogIndex: args.LastLogIndex,
			LastLogTerm:  args.LastLogTerm,
		})
		if err != nil {
			return err
		}
		*resp = raft.RequestPreVoteResponse{
			RPCHeader: headerFromProto(out.GetHeader()),
			Term:      out.GetTerm(),
			Granted:   out.GetGranted(),
		}
		return nil
	})
}

// TimeoutNow implements raft.Transport.
func (t *Transport) TimeoutNow(_ raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.call(target, ClassRaft, t.rn.cfg.RPCTimeout, "TimeoutNow", func(ctx context.Context, c peerv1.RaftClient) error {
		t.stats.timeoutNows.Add(1)
		t.transferMu.Lock()
		t.transferAt = time.Now()
		t.transferMu.Unlock()
		out, err := c.TimeoutNow(ctx, &peerv1.TimeoutNowRequest{Group: t.group, Header: headerToProto(args.RPCHeader)})
		if err != nil {
			return err
		}
		*resp = raft.TimeoutNowResponse{RPCHeader: headerFromProto(out.GetHeader())}
		return nil
	})
}

// InstallSnapshot implements raft.Transport: it streams the header, then
// data in chunks, on the peer's snapshot connection.
func (t *Transport) InstallSnapshot(_ raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	peer := string(target)
	return t.call(target, ClassSnapshot, t.rn.cfg.SnapshotTimeout, "InstallSnapshot", func(ctx context.Context, c peerv1.RaftClient) error {
		t.stats.snapshots.Add(1)
		stream, err := c.InstallSnapshot(ctx)
		if err != nil {
			return err
		}
		err = stream.Send(&peerv1.InstallSnapshotChunk{Request: snapshotRequestToProto(t.group, args)})
		for err == nil {
			if err = t.rn.allowed(peer); err != nil {
				return err
			}
			buf := make([]byte, snapshotChunkBytes) // gRPC may hold a sent message: never reuse
			n, rerr := io.ReadFull(data, buf)
			if n > 0 {
				err = stream.Send(&peerv1.InstallSnapshotChunk{Data: buf[:n]})
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				return fmt.Errorf("read snapshot: %w", rerr)
			}
		}
		if err != nil && err != io.EOF {
			return err
		}
		// On io.EOF the server ended the stream early: CloseAndRecv
		// returns its status.
		out, err := stream.CloseAndRecv()
		if err != nil {
			return err
		}
		*resp = raft.InstallSnapshotResponse{
			RPCHeader: headerFromProto(out.GetHeader()),
			Term:      out.GetTerm(),
			Success:   out.GetSuccess(),
		}
		return nil
	})
}

// AppendEntriesPipeline implements raft.Transport: one bidi stream to the
// peer on its raft connection.
func (t *Transport) AppendEntriesPipeline(_ raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	peer := string(target)
	if t.ctx.Err() != nil {
		return nil, errTransportClosed
	}
	if err := t.rn.allowed(peer); err != nil {
		return nil, err
	}
	cc, err := t.rn.Conn(peer, ClassRaft)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(t.ctx)
	// Opening a stream waits for a connection; bound it like an RPC.
	opening := time.AfterFunc(t.rn.cfg.RPCTimeout, cancel)
	stream, err := peerv1.NewRaftClient(cc).AppendEntriesPipeline(ctx)
	if !opening.Stop() && err == nil {
		err = fmt.Errorf("opening took over %s", t.rn.cfg.RPCTimeout)
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("raftnet: raft pipeline to %s (group %d): %w", peer, t.group, err)
	}
	p := &appendPipeline{
		t:        t,
		peer:     peer,
		stream:   stream,
		ctx:      ctx,
		cancel:   cancel,
		slots:    make(chan struct{}, pipelineMaxInFlight),
		doneCh:   make(chan raft.AppendFuture, pipelineMaxInFlight),
		failed:   make(chan struct{}),
		closeCh:  make(chan struct{}),
		recvDone: make(chan struct{}),
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		cancel()
		return nil, errTransportClosed
	}
	t.pipelines[p] = struct{}{}
	t.mu.Unlock()
	go p.receive()
	return p, nil
}

// appendPipeline is one (group, peer) append stream. Sends and responses
// pair up in order; at most pipelineMaxInFlight sends wait for a response.
// An append too large for one message goes out in several parts (see
// splitAppend), each its own send; its future completes with the first
// failed part or the last one. The first error fails every waiting future
// and ends the stream; raft then closes the pipeline and falls back to
// unary appends.
type appendPipeline struct {
	t      *Transport
	peer   string
	stream peerv1.Raft_AppendEntriesPipelineClient
	ctx    context.Context // the stream's; cancel ends it
	cancel context.CancelFunc

	slots    chan struct{} // one token per send in flight
	doneCh   chan raft.AppendFuture
	closeCh  chan struct{} // closed by Close
	recvDone chan struct{} // closed when receive returns

	closeOnce sync.Once
	sendMu    sync.Mutex // keeps queue order equal to send order

	mu      sync.Mutex
	queue   []*pipelineSend // sent, not yet answered, oldest first
	err     error           // why the pipeline failed; set once
	failed  chan struct{}   // closed when err is set
	acked   pipelineAck     // the latest append the follower accepted
	folding bool            // a folded append waits for its answer
}

// pipelineAck is what a follower accepted on a pipeline: an append in
// term, ending at index end, with the leader's commit index commit.
type pipelineAck struct {
	term, end, commit uint64
}

// pipelineSend is one message on the stream: a whole append or a part.
type pipelineSend struct {
	f     *pipelineFuture
	req   *raft.AppendEntriesRequest
	sent  time.Time
	last  bool // the future's last part
	timer *time.Timer
}

var _ raft.AppendPipeline = (*appendPipeline)(nil)

// AppendEntries implements raft.AppendPipeline. It blocks while
// pipelineMaxInFlight sends are unanswered.
func (p *appendPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	f := &pipelineFuture{start: time.Now(), args: args, resp: resp, done: make(chan struct{})}
	lease := p.t.leaseHeld()
	p.t.stats.pipelined.Add(1)
	p.t.noteTerm(args.Term)
	if p.fold(f, lease) {
		return f, nil
	}
	parts := p.t.splitAppend(args)
	for i, part := range parts {
		if err := p.t.rn.allowed(p.peer); err != nil {
			p.abort(err)
			return nil, err
		}
		select {
		case p.slots <- struct{}{}:
		case <-p.failed:
			return nil, p.failure()
		}
		ps := &pipelineSend{f: f, req: part, sent: time.Now(), last: i == len(parts)-1}
		ps.timer = time.AfterFunc(p.t.rn.cfg.RPCTimeout, func() {
			p.abort(fmt.Errorf("raftnet: raft pipeline to %s (group %d): no response in %s", p.peer, p.t.group, p.t.rn.cfg.RPCTimeout))
		})
		p.mu.Lock()
		if p.err != nil {
			err := p.err
			p.mu.Unlock()
			ps.timer.Stop()
			<-p.slots
			return nil, err
		}
		p.queue = append(p.queue, ps)
		p.mu.Unlock()
		if err := p.stream.Send(p.t.wireAppend(part, f.start, lease)); err != nil {
			// The receiver fails f with the stream's error.
			p.abort(fmt.Errorf("raftnet: raft pipeline to %s (group %d): send: %w", p.peer, p.t.group, err))
			return nil, p.failure()
		}
	}
	return f, nil
}

// fold sends f's append in the peer's next Heartbeats call instead of on
// the stream, if it repeats what the follower last accepted here: no
// entries, the same term, previous entry and commit index. Raft sends one
// such append every CommitTimeout to an idle follower; folded, it costs
// the follower a raft round but no message of its own (heartbeat.go).
// It still goes to raft's append handler, not the heartbeat one, so the
// follower checks its log and renews its lease proofs as it would. Its
// future is delivered when the call answers, possibly after futures of
// later appends: raft's pipeline decoder takes an empty append's answer
// for a contact and a leadership confirmation, in any order. One folded
// append waits at a time; another goes on the stream.
func (p *appendPipeline) fold(f *pipelineFuture, lease bool) bool {
	args := f.args
	if len(args.Entries) > 0 {
		return false
	}
	p.mu.Lock()
	a := p.acked
	ok := p.err == nil && !p.folding && a.term != 0 &&
		args.Term == a.term && args.PrevLogEntry == a.end && args.LeaderCommitIndex == a.commit
	if ok {
		p.folding = true
	}
	p.mu.Unlock()
	if !ok {
		return false
	}
	p.t.stats.folded.Add(1)
	wire := p.t.wireAppend(args, f.start, lease)
	go func() {
		ctx, cancel := context.WithTimeout(p.ctx, p.t.rn.cfg.RPCTimeout)
		out, err := p.t.rn.heartbeat(ctx, p.peer, wire)
		cancel()
		if err == nil {
			appendResponseFromProto(out, f.resp)
			p.t.recordAck(p.peer, args, f.resp, f.start)
			if f.resp.Success {
				p.noteAccepted(args)
			}
		}
		p.mu.Lock()
		p.folding = false
		p.mu.Unlock()
		f.finish(err)
		select {
		case p.doneCh <- f:
		case <-p.closeCh:
		}
	}()
	return true
}

// noteAccepted records that the follower accepted args on this pipeline.
func (p *appendPipeline) noteAccepted(args *raft.AppendEntriesRequest) {
	end := args.PrevLogEntry
	if n := len(args.Entries); n > 0 {
		end = args.Entries[n-1].Index
	}
	p.mu.Lock()
	switch a := p.acked; {
	case args.Term > a.term:
		p.acked = pipelineAck{term: args.Term, end: end, commit: args.LeaderCommitIndex}
	case args.Term == a.term && end >= a.end:
		p.acked = pipelineAck{term: args.Term, end: end, commit: max(args.LeaderCommitIndex, a.commit)}
	}
	p.mu.Unlock()
}

// Consumer implements raft.AppendPipeline: futures in send order.
func (p *appendPipeline) Consumer() <-chan raft.AppendFuture { return p.doneCh }

// Close implements raft.AppendPipeline. It ends the stream, fails futures
// still waiting and waits for the receiver. It is idempotent.
func (p *appendPipeline) Close() error {
	p.closeOnce.Do(func() {
		p.abort(fmt.Errorf("raftnet: raft pipeline to %s (group %d): %w", p.peer, p.t.group, raft.ErrPipelineShutdown))
		close(p.closeCh)
		<-p.recvDone
		p.failQueued()
		p.t.mu.Lock()
		delete(p.t.pipelines, p)
		p.t.mu.Unlock()
	})
	return nil
}

// abort records the pipeline's first error and ends the stream.
func (p *appendPipeline) abort(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
		close(p.failed)
	}
	p.mu.Unlock()
	p.cancel()
}

func (p *appendPipeline) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// receive pairs responses with sends in order and hands completed futures
// to raft. Only receive, and failQueued after it, touch futures.
func (p *appendPipeline) receive() {
	defer close(p.recvDone)
	for {
		msg, err := p.stream.Recv()
		if err != nil {
			p.abort(fmt.Errorf("raftnet: raft pipeline to %s (group %d): %w", p.peer, p.t.group, err))
			p.failQueued()
			return
		}
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.mu.Unlock()
			p.abort(fmt.Errorf("raftnet: raft pipeline to %s (group %d): response without a request", p.peer, p.t.group))
			p.failQueued()
			return
		}
		ps := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.mu.Unlock()
		ps.timer.Stop()
		<-p.slots
		if ps.f.finished {
			continue // an earlier part failed and answered the future
		}
		var resp raft.AppendEntriesResponse
		appendResponseFromProto(msg, &resp)
		p.t.recordAck(p.peer, ps.req, &resp, ps.sent)
		if !ps.last && resp.Success {
			continue
		}
		if ps.last && resp.Success {
			p.noteAccepted(ps.f.args)
		}
		*ps.f.resp = resp
		ps.f.finish(nil)
		select {
		case p.doneCh <- ps.f:
		case <-p.closeCh:
			return
		}
	}
}

// failQueued fails every unanswered future with the pipeline's error and
// delivers them in order while the pipeline is open. Call it only after
// abort: nothing joins the queue after that.
func (p *appendPipeline) failQueued() {
	p.mu.Lock()
	queue, err := p.queue, p.err
	p.queue = nil
	p.mu.Unlock()
	for _, ps := range queue {
		ps.timer.Stop()
		if ps.f.finished {
			continue
		}
		ps.f.finish(err)
		select {
		case p.doneCh <- ps.f:
		case <-p.closeCh:
		}
	}
}

// pipelineFuture implements raft.AppendFuture. A failed future's Response
// is left as it was (zero from raft): Success false makes raft's pipeline
// decoder stop, as with net_transport.go.
type pipelineFuture struct {
	start time.Time
	args  *raft.AppendEntriesRequest
	resp  *raft.AppendEntriesResponse

	finished bool // set by the pipeline's receiver before done closes
	done     chan struct{}
	err      error
}

func (f *pipelineFuture) finish(err error) {
	f.finished = true
	f.err = err
	close(f.done)
}

// Error implements raft.Future.
func (f *pipelineFuture) Error() error {
	<-f.done
	return f.err
}

// Start implements raft.AppendFuture: when the append was sent.
func (f *pipelineFuture) Start() time.Time { return f.start }

// Request implements raft.AppendFuture.
func (f *pipelineFuture) Request() *raft.AppendEntriesRequest { return f.args }

// Response implements raft.AppendFuture.
func (f *pipelineFuture) Response() *raft.AppendEntriesResponse { return f.resp }

// ---- server side ----

// dispatch hands an incoming RPC to raft (heartbeats to the heartbeat
// handler when raft set one) and waits for raft's answer, the end of ctx
// or the transport's close.
func (t *Transport) dispatch(ctx context.Context, cmd any, data io.Reader, heartbeat bool) (any, error) {
	respCh := make(chan raft.RPCResponse, 1)
	rpc := raft.RPC{Command: cmd, Reader: data, RespChan: respCh}
	fast := false
	if heartbeat {
		t.hbMu.Lock()
		fn := t.heartbeatFn
		t.hbMu.Unlock()
		if fn != nil {
			t.stats.heartbeatsFast.Add(1)
			fn(rpc)
			fast = true
		}
	}
	if !fast {
		select {
		case t.consumeCh <- rpc:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.ctx.Done():
			return nil, errTransportClosed
		}
	}
	select {
	case resp := <-respCh:
		return resp.Response, resp.Error
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.ctx.Done():
		return nil, errTransportClosed
	}
}

// serveAppend runs one incoming append (unary or pipelined).
func (t *Transport) serveAppend(ctx context.Context, in *peerv1.AppendEntriesRequest) (*peerv1.AppendEntriesResponse, error) {
	received := time.Now()
	req := appendRequestFromProto(in)
	heartbeat := isHeartbeat(req)
	out, err := t.dispatch(ctx, req, nil, heartbeat)
	if err != nil {
		return nil, err
	}
	resp, ok := out.(*raft.AppendEntriesResponse)
	if !ok {
		return nil, fmt.Errorf("raftnet: raft answered AppendEntries with %T", out)
	}
	if resp.Success && !heartbeat {
		t.commitMu.Lock()
		t.leaderCommit = max(t.leaderCommit, req.LeaderCommitIndex)
		if received.After(t.leaderCommitAt) {
			t.leaderCommitAt = received
		}
		if in.GetLeaderLease() {
			t.freshCommit = max(t.freshCommit, req.LeaderCommitIndex)
			if sent := received.Add(-appendAge(in, received)); sent.After(t.freshAt) {
				t.freshAt = sent
			}
		}
		t.commitMu.Unlock()
	}
	return appendResponseToProto(resp), nil
}

// appendAge is how long before received the leader checked its lease for
// an append: the larger of the sender's own wait (monotonic) and the
// difference of the two wall clocks. The second covers what the first
// cannot see: a wait for a connection to a restarted follower, blocked
// flow control to a paused one, time on the wire.
func appendAge(in *peerv1.AppendEntriesRequest, received time.Time) time.Duration {
	age := time.Duration(in.GetQueuedNanos())
	if at := in.GetLeaseCheckedUnixNanos(); at > 0 {
		age = max(age, time.Duration(received.UnixNano()-at))
	}
	return max(age, 0)
}

// serveStatus maps a server-side error to a gRPC status: a closed
// transport or a raft that is shutting down is Unavailable (the caller
// retries elsewhere or later), anything else goes through
// Config.ErrorStatus.
func (rn *Net) serveStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, errTransportClosed) || errors.Is(err, raft.ErrRaftShutdown) {
		return status.Error(codes.Unavailable, err.Error())
	}
	if rn.cfg.ErrorStatus != nil {
		return rn.cfg.ErrorStatus(err)
	}
	return status.Error(codes.Unknown, err.Error())
}

// raftService serves peer.v1 Raft by routing each request to its group.
type raftService struct {
	peerv1.UnimplementedRaftServer
	rn *Net
}

func (s *raftService) AppendEntries(ctx context.Context, in *peerv1.AppendEntriesRequest) (*peerv1.AppendEntriesResponse, error) {
	s.rn.noteHeard(string(in.GetHeader().GetAddr()))
	t, err := s.rn.lookup(in.GetGroup())
	if err != nil {
		return nil, err
	}
	out, err := t.serveAppend(ctx, in)
	return out, s.rn.serveStatus(err)
}

// AppendEntriesPipeline answers a stream's appends one by one, in order.
func (s *raftService) AppendEntriesPipeline(stream peerv1.Raft_AppendEntriesPipelineServer) error {
	ctx := stream.Context()
	var t *Transport
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		s.rn.noteHeard(string(in.GetHeader().GetAddr()))
		if t == nil || t.group != in.GetGroup() {
			if t, err = s.rn.lookup(in.GetGroup()); err != nil {
				return err
			}
		}
		out, err := t.serveAppend(ctx, in)
		if err != nil {
			return s.rn.serveStatus(err)
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

func (s *raftService) RequestVote(ctx context.Context, in *peerv1.RequestVoteRequest) (*peerv1.RequestVoteResponse, error) {
	t, err := s.rn.lookup(in.GetGroup())
	if err != nil {
		return nil, err
	}
	if s.rn.quiet() {
		return &peerv1.RequestVoteResponse{Header: s.rn.header(), Term: in.GetTerm()}, nil
	}
	out, err := t.dispatch(ctx, &raft.RequestVoteRequest{
		RPCHeader:          headerFromProto(in.GetHeader()),
		Term:               in.GetTerm(),
		Candidate:          in.GetCandidate(),
		LastLogIndex:       in.GetLastLogIndex(),
		LastLogTerm:        in.GetLastLogTerm(),
		LeadershipTransfer: in.GetLeadershipTransfer(),
	}, nil, false)
	if err != nil {
		return nil, s.rn.serveStatus(err)
	}
	resp, ok := out.(*raft.RequestVoteResponse)
	if !ok {
		return nil, status.Errorf(codes.Internal, "raftnet: raft answered RequestVote with %T", out)
	}
	return &peerv1.RequestVoteResponse{
		Header:  headerToProto(resp.RPCHeader),
		Term:    resp.Term,
		Peers:   resp.Peers,
		Granted: resp.Granted,
	}, nil
}

func (s *raftService) RequestPreVote(ctx context.Context, in *peerv1.RequestPreVoteRequest) (*peerv1.RequestPreVoteResponse, error) {
	t, err := s.rn.lookup(in.GetGroup())
	if err != nil {
		return nil, err
	}
	if s.rn.quiet() {
		return &peerv1.RequestPreVoteResponse{Header: s.rn.header(), Term: in.GetTerm()}, nil
	}
	out, err := t.dispatch(ctx, &raft.RequestPreVoteRequest{
		RPCHeader:    headerFromProto(in.GetHeader()),
		Term:         in.GetTerm(),
		LastLogIndex: in.GetLastLogIndex(),
		LastLogTerm:  in.GetLastLogTerm(),
	}, nil, false)
	if err != nil {
		return nil, s.rn.serveStatus(err)
	}
	resp, ok := out.(*raft.RequestPreVoteResponse)
	if !ok {
		return nil, status.Errorf(codes.Internal, "raftnet: raft answered RequestPreVote with %T", out)
	}
	return &peerv1.RequestPreVoteResponse{
		Header:  headerToProto(resp.RPCHeader),
		Term:    resp.Term,
		Granted: resp.Granted,
	}, nil
}

func (s *raftService) TimeoutNow(ctx context.Context, in *peerv1.TimeoutNowRequest) (*peerv1.TimeoutNowResponse, error) {
	t, err := s.rn.lookup(in.GetGroup())
	if err != nil {
		return nil, err
	}
	out, err := t.dispatch(ctx, &raft.TimeoutNowRequest{RPCHeader: headerFromProto(in.GetHeader())}, nil, false)
	if err != nil {
		return nil, s.rn.serveStatus(err)
	}
	resp, ok := out.(*raft.TimeoutNowResponse)
	if !ok {
		return nil, status.Errorf(codes.Internal, "raftnet: raft answered TimeoutNow with %T", out)
	}
	return &peerv1.TimeoutNowResponse{Header: headerToProto(resp.RPCHeader)}, nil
}

// errSnapshotHandled ends the snapshot pump once the handler has its answer.
var errSnapshotHandled = errors.New("raftnet: snapshot rpc finished")

// InstallSnapshot gives raft the stream's data as the RPC's Reader, through
// a pipe fed by a pump goroutine: raft may stop reading (a stale term) or
// the wait may end before raft is done, and neither may leave a goroutine
// reading the stream after the handler returns.
func (s *raftService) InstallSnapshot(stream peerv1.Raft_InstallSnapshotServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	in := first.GetRequest()
	if in == nil {
		return status.Error(codes.InvalidArgument, "raftnet: InstallSnapshot: first message has no request")
	}
	t, err := s.rn.lookup(in.GetGroup())
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		pumpSnapshot(stream, first.GetData(), pw)
	}()
	defer func() {
		pr.CloseWithError(errSnapshotHandled)
		<-pumped
	}()
	out, err := t.dispatch(stream.Context(), snapshotRequestFromProto(in), io.LimitReader(pr, in.GetSize()), false)
	if err != nil {
		return s.rn.serveStatus(err)
	}
	resp, ok := out.(*raft.InstallSnapshotResponse)
	if !ok {
		return status.Errorf(codes.Internal, "raftnet: raft answered InstallSnapshot with %T", out)
	}
	return stream.SendAndClose(&peerv1.InstallSnapshotResponse{
		Header:  headerToProto(resp.RPCHeader),
		Term:    resp.Term,
		Success: resp.Success,
	})
}

// pumpSnapshot copies the stream's data into w until the client ends the
// stream, the stream fails or the reader side closes.
func pumpSnapshot(stream peerv1.Raft_InstallSnapshotServer, first []byte, w *io.PipeWriter) {
	if len(first) > 0 {
		if _, err := w.Write(first); err != nil {
			return
		}
	}
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			w.Close()
			return
		}
		if err != nil {
			w.CloseWithError(fmt.Errorf("raftnet: snapshot stream: %w", err))
			return
		}
		if _, err := w.Write(msg.GetData()); err != nil {
			return
		}
	}
}

// ---- conversions ----

func headerToProto(h raft.RPCHeader) *peerv1.RPCHeader {
	return &peerv1.RPCHeader{ProtocolVersion: int64(h.ProtocolVersion), Id: h.ID, Addr: h.Addr}
}

func headerFromProto(h *peerv1.RPCHeader) raft.RPCHeader {
	return raft.RPCHeader{
		ProtocolVersion: raft.ProtocolVersion(h.GetProtocolVersion()),
		ID:              h.GetId(),
		Addr:            h.GetAddr(),
	}
}

func appendRequestToProto(group uint64, r *raft.AppendEntriesRequest) *peerv1.AppendEntriesRequest {
	out := &peerv1.AppendEntriesRequest{
		Group:             group,
		Header:            headerToProto(r.RPCHeader),
		Term:              r.Term,
		Leader:            r.Leader,
		PrevLogEntry:      r.PrevLogEntry,
		PrevLogTerm:       r.PrevLogTerm,
		LeaderCommitIndex: r.LeaderCommitIndex,
	}
	if len(r.Entries) > 0 {
		out.Entries = make([]*peerv1.LogEntry, len(r.Entries))
		for i, e := range r.Entries {
			var at int64
			if !e.AppendedAt.IsZero() {
				at = e.AppendedAt.UnixNano()
			}
			out.Entries[i] = &peerv1.LogEntry{
				Index:      e.Index,
				Term:       e.Term,
				Type:       uint32(e.Type),
				Data:       e.Data,
				Extensions: e.Extensions,
				AppendedAt: at,
			}
		}
	}
	return out
}

func appendRequestFromProto(in *peerv1.AppendEntriesRequest) *raft.AppendEntriesRequest {
	r := &raft.AppendEntriesRequest{
		RPCHeader:         headerFromProto(in.GetHeader()),
		Term:              in.GetTerm(),
		Leader:            in.GetLeader(),
		PrevLogEntry:      in.GetPrevLogEntry(),
		PrevLogTerm:       in.GetPrevLogTerm(),
		LeaderCommitIndex: in.GetLeaderCommitIndex(),
	}
	if es := in.GetEntries(); len(es) > 0 {
		r.Entries = make([]*raft.Log, len(es))
		for i, e := range es {
			var at time.Time
			if n := e.GetAppendedAt(); n != 0 {
				at = time.Unix(0, n)
			}
			r.Entries[i] = &raft.Log{
				Index:      e.GetIndex(),
				Term:       e.GetTerm(),
				Type:       raft.LogType(e.GetType()),
				Data:       e.GetData(),
				Extensions: e.GetExtensions(),
				AppendedAt: at,
			}
		}
	}
	return r
}

func appendResponseToProto(r *raft.AppendEntriesResponse) *peerv1.AppendEntriesResponse {
	return &peerv1.AppendEntriesResponse{
		Header:         headerToProto(r.RPCHeader),
		Term:           r.Term,
		LastLog:        r.LastLog,
		Success:        r.Success,
		NoRetryBackoff: r.NoRetryBackoff,
	}
}

// appendResponseFromProto overwrites every field of r: raft reuses
// responses between heartbeats.
func appendResponseFromProto(in *peerv1.AppendEntriesResponse, r *raft.AppendEntriesResponse) {
	*r = raft.AppendEntriesResponse{
		RPCHeader:      headerFromProto(in.GetHeader()),
		Term:           in.GetTerm(),
		LastLog:        in.GetLastLog(),
		Success:        in.GetSuccess(),
		NoRetryBackoff: in.GetNoRetryBackoff(),
	}
}

func snapshotRequestToProto(group uint64, r *raft.InstallSnapshotRequest) *peerv1.InstallSnapshotRequest {
	return &peerv1.InstallSnapshotRequest{
		Group:              group,
		Header:             headerToProto(r.RPCHeader),
		SnapshotVersion:    int64(r.SnapshotVersion),
		Term:               r.Term,
		Leader:             r.Leader,
		LastLogIndex:       r.LastLogIndex,
		LastLogTerm:        r.LastLogTerm,
		Peers:              r.Peers,
		Configuration:      r.Configuration,
		ConfigurationIndex: r.ConfigurationIndex,
		Size:               r.Size,
	}
}

func snapshotRequestFromProto(in *peerv1.InstallSnapshotRequest) *raft.InstallSnapshotRequest {
	return &raft.InstallSnapshotRequest{
		RPCHeader:          headerFromProto(in.GetHeader()),
		SnapshotVersion:    raft.SnapshotVersion(in.GetSnapshotVersion()),
		Term:               in.GetTerm(),
		Leader:             in.GetLeader(),
		LastLogIndex:       in.GetLastLogIndex(),
		LastLogTerm:        in.GetLastLogTerm(),
		Peers:              in.GetPeers(),
		Configuration:      in.GetConfiguration(),
		ConfigurationIndex: in.GetConfigurationIndex(),
		Size:               in.GetSize(),
	}
}
