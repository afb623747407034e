package node

// membership.go: who is in the cluster, by gossip (hashicorp/memberlist).
//
// memberlist does failure detection (SWIM probes, suspicion, refutation)
// and spreads each node's metadata; this file adapts it to elcache:
//
//   - the memberlist node name is the node id (unique and stable); the
//     human name, gRPC address, boot id and has-cluster flag travel in a
//     small versioned metadata record (nodeMeta);
//   - memberlist's callbacks run under its locks, so they only update a map
//     under our own mutex and poke a coalesced Changes channel;
//   - a background loop joins the seeds (with backoff), re-announces this
//     node when a peer still holds an outdated entry for it (a restart at a
//     new address), and reconnects to failed members so a healed partition
//     merges again (memberlist never contacts a node it thinks is dead);
//   - gossipTransport wraps memberlist's NetTransport to inject faults
//     (Allow) and to close every connection and abort every dial on Close.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// memberState is what this node believes about a member.
type memberState int

const (
	memberAlive memberState = iota
	// memberSuspect is part of the vocabulary but is not produced today:
	// memberlist v0.7.0 keeps suspicion internal (no event, and Node.State
	// is never filled in), so a member goes from alive to dead directly.
	memberSuspect
	memberDead
	memberLeft
)

// memberInfo is one member as this node sees it.
type memberInfo struct {
	ID, Name, GRPCAddr, GossipAddr, BootID string
	// Bootstrapper: the node was started with a bootstrap expectation, so
	// it may form a new cluster.
	Bootstrapper bool
	// HasCluster: the node already belongs to a formed cluster (it has
	// cluster state on disk).
	HasCluster bool
	State      memberState
	// Since is when State last changed, on the local clock.
	Since time.Time
}

// membershipConfig configures newMembership.
type membershipConfig struct {
	// NodeID is the memberlist node name: unique in the cluster and stable
	// across restarts. Required.
	NodeID string
	// NodeName, GRPCAddr and BootID are gossiped as metadata.
	NodeName, GRPCAddr, BootID string
	// HasCluster and Bootstrapper are the initial values of the flags of
	// the same names (SetHasCluster changes the first).
	HasCluster, Bootstrapper bool
	// BindAddr is the host:port for gossip (TCP and UDP). Port 0 picks a
	// free port, which is then advertised. An empty or unspecified host
	// binds all interfaces and advertises a private address.
	BindAddr string
	// Seeds are host:port of other members. They are joined in the
	// background until one answers; a node without seeds is alone until
	// others join it.
	Seeds []string
	// SecretKey, when set, encrypts gossip (16, 24 or 32 bytes).
	SecretKey []byte
	// Fast uses test timings: failure detection well under a second.
	Fast bool
	// Allow injects faults: when it returns false for a gossip address,
	// every packet to it is dropped and every stream dial to it fails.
	// nil allows all.
	Allow  func(gossipAddr string) bool
	Logger *slog.Logger
}

var errMembershipClosed = errors.New("node: membership: closed")

// validate reports every problem in c.
func (c *membershipConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("node: membership: "+format, args...))
	}
	if c.NodeID == "" {
		bad("node id is empty")
	}
	if err := checkHostPort(c.BindAddr, true); err != nil {
		bad("bind address %q: %v", c.BindAddr, err)
	}
	for _, s := range c.Seeds {
		if err := checkHostPort(s, false); err != nil {
			bad("seed %q: %v", s, err)
		}
	}
	if n := len(c.SecretKey); n != 0 && n != 16 && n != 24 && n != 32 {
		bad("secret key is %d bytes, want 16, 24 or 32", n)
	}
	meta := nodeMeta{ID: c.NodeID, Name: c.NodeName, GRPCAddr: c.GRPCAddr, BootID: c.BootID}
	if n := len(meta.encode()); n > memberlist.MetaMaxSize {
		bad("node metadata is %d bytes, more than the %d memberlist allows (shorten the name or addresses)",
			n, memberlist.MetaMaxSize)
	}
	return errors.Join(errs...)
}

func checkHostPort(s string, emptyHostOK bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" && !emptyHostOK {
		return errors.New("no host")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	if p == 0 && !emptyHostOK {
		return errors.New("port 0")
	}
	return nil
}

// membershipTimings are the parts of the timing that are ours, not
// memberlist's.
type membershipTimings struct {
	// joinMin and joinMax bound the backoff between attempts to join the
	// seeds or to re-announce this node.
	joinMin, joinMax time.Duration
	// reconnect is how often a member believed dead is contacted again,
	// for at most reconnectFor after it failed.
	reconnect, reconnectFor time.Duration
}

// memberlistConfig returns memberlist's configuration (without name,
// addresses, transport and delegates) and our own timings.
//
// LAN (memberlist's defaults): a failed node is suspected after a missed
// probe (1 s interval, 500 ms timeout) and declared dead 4 s later, about
// 5-6 s in all. Fast: 200 ms probes and a 0.6-1.2 s suspicion, about 1-1.5 s.
func (c *membershipConfig) memberlistConfig() (*memberlist.Config, membershipTimings) {
	mc := memberlist.DefaultLANConfig()
	t := membershipTimings{joinMin: time.Second, joinMax: 15 * time.Second,
		reconnect: 10 * time.Second, reconnectFor: 24 * time.Hour}
	if c.Fast {
		mc.TCPTimeout = 500 * time.Millisecond
		// Timeouts leave room for the race detector on 2 busy cores,
		// which makes 50 ms probe timeouts declare live nodes dead.
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 150 * time.Millisecond
		mc.SuspicionMult = 3           // 600 ms with confirmations (below 10 nodes)
		mc.SuspicionMaxTimeoutMult = 2 // 1.2 s without
		mc.AwarenessMaxMultiplier = 3
		mc.GossipInterval = 20 * time.Millisecond
		mc.PushPullInterval = 500 * time.Millisecond
		mc.GossipToTheDeadTime = 500 * time.Millisecond
		t = membershipTimings{joinMin: 50 * time.Millisecond, joinMax: 500 * time.Millisecond,
			reconnect: 200 * time.Millisecond, reconnectFor: 24 * time.Hour}
	}
	// By default memberlist never lets a name move to another address while
	// the old entry is remembered (up to GossipToTheDeadTime after it dies,
	// 30 s on a LAN), so a node restarted on a new port would be locked out
	// for that long. Node ids are unique per data directory, so a dead
	// entry may be reclaimed after one probe interval.
	mc.DeadNodeReclaimTime = mc.ProbeInterval
	return mc, t
}

// membership is this node's view of the gossip cluster.
type membership struct {
	cfg    membershipConfig
	log    *slog.Logger
	mlLog  *memberlistLog
	mlCfg  *memberlist.Config
	timing membershipTimings
	tr     *gossipTransport
	ml     *memberlist.Memberlist
	addr   string // advertised gossip address, fixed before memberlist starts

	changes chan struct{} // buffer 1: Members changed
	wake    chan struct{} // buffer 1: re-announce soon
	stale   atomic.Bool   // a peer holds an outdated entry for this node
	left    atomic.Bool   // Leave was called: never join again

	metaMu sync.Mutex
	meta   nodeMeta // what NodeMeta advertises

	mu      sync.Mutex
	members map[string]*member // by id

	lifeMu sync.RWMutex // held shared by Leave and SetHasCluster, exclusively by Close
	closed bool

	ctx       context.Context // cancelled by Close: aborts seed resolution
	cancel    context.CancelFunc
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

type member struct {
	info    memberInfo
	leaving bool // its last metadata said it is leaving
}

// newMembership starts gossip on cfg.BindAddr. Seeds are joined in the
// background; watch Changes.
func newMembership(cfg membershipConfig) (*membership, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Seeds = slices.Clone(cfg.Seeds)
	cfg.SecretKey = slices.Clone(cfg.SecretKey)
	bindIP, bindPort, err := resolveBind(cfg.BindAddr)
	if err != nil {
		return nil, err
	}
	mc, timing := cfg.memberlistConfig()
	m := &membership{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "membership"),
		mlLog:   &memberlistLog{l: cfg.Logger.With("component", "memberlist")},
		mlCfg:   mc,
		timing:  timing,
		changes: make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
		meta: nodeMeta{ID: cfg.NodeID, Name: cfg.NodeName, GRPCAddr: cfg.GRPCAddr, BootID: cfg.BootID,
			HasCluster: cfg.HasCluster, Bootstrapper: cfg.Bootstrapper},
		members: make(map[string]*member),
		stop:    make(chan struct{}),
	}
	stdLog := log.New(m.mlLog, "", 0)
	if m.tr, err = newGossipTransport(bindIP, bindPort, cfg.Allow, stdLog); err != nil {
		return nil, err
	}
	advIP, advPort, err := m.tr.FinalAdvertiseAddr("", 0)
	if err != nil {
		m.tr.abandon()
		return nil, fmt.Errorf("node: membership: advertise address: %w", err)
	}
	m.addr = net.JoinHostPort(advIP.String(), strconv.Itoa(advPort))

	d := &membershipDelegate{m: m}
	mc.Name = cfg.NodeID
	mc.BindAddr, mc.BindPort = bindIP, m.tr.port()
	mc.AdvertisePort = mc.BindPort
	mc.Transport = m.tr
	mc.Logger = stdLog
	mc.SecretKey = cfg.SecretKey
	mc.Delegate, mc.Events, mc.Conflict, mc.Merge = d, d, d, d
	if m.ml, err = memberlist.Create(mc); err != nil {
		m.tr.abandon()
		return nil, fmt.Errorf("node: membership: %w", err)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.run()
	m.log.Info("gossip started", "gossip_addr", m.addr, "seeds", cfg.Seeds, "encrypted", len(cfg.SecretKey) > 0)
	return m, nil
}

// resolveBind turns host:port into an IP for NetTransport: an empty or
// unspecified host becomes 0.0.0.0 (NetTransport then advertises a private
// address), a name is resolved.
func resolveBind(hostport string) (string, int, error) {
	host, portStr, _ := net.SplitHostPort(hostport) // validated
	port, _ := strconv.Atoi(portStr)
	if host == "" {
		return "0.0.0.0", port, nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		ips, err := net.LookupIP(host)
		if err != nil || len(ips) == 0 {
			return "", 0, fmt.Errorf("node: membership: resolve bind host %q: %v", host, err)
		}
		ip = ips[0]
		for _, cand := range ips {
			if cand.To4() != nil {
				ip = cand
				break
			}
		}
	}
	if ip.IsUnspecified() {
		return "0.0.0.0", port, nil
	}
	return ip.String(), port, nil
}

// Addr is the advertised gossip host:port.
func (m *membership) Addr() string { return m.addr }

// Members lists every member seen during this run, including dead and left
// ones and this node, sorted by id.
func (m *membership) Members() []memberInfo {
	m.mu.Lock()
	out := make([]memberInfo, 0, len(m.members))
	for _, mb := range m.members {
		out = append(out, mb.info)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b memberInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Up reports whether member id is alive or suspect in this node's view:
// one map lookup, for callers on request paths.
func (m *membership) Up(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb, ok := m.members[id]
	return ok && (mb.info.State == memberAlive || mb.info.State == memberSuspect)
}

// Changes receives (coalesced) after Members changed. It is never closed.
func (m *membership) Changes() <-chan struct{} { return m.changes }

// SetHasCluster updates this node's metadata and gossips it. It does not
// wait for the gossip: memberlist queues the update and push/pull repairs
// any loss. Setting the current value is free.
func (m *membership) SetHasCluster(has bool) {
	m.lifeMu.RLock()
	defer m.lifeMu.RUnlock()
	changed := m.updateMeta(func(nm *nodeMeta) { nm.HasCluster = has })
	if !changed || m.closed || m.left.Load() {
		return
	}
	// UpdateNode applies the new metadata locally (our own entry changes
	// before it returns) and queues the broadcast, then waits for the
	// broadcast to go out: a nanosecond timeout skips the wait.
	_ = m.ml.UpdateNode(time.Nanosecond)
}

// Leave announces that this node leaves for good: the others see it as
// left rather than dead. It waits up to timeout for the announcement to go
// out. Gossip keeps running until Close; the node never rejoins.
func (m *membership) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		return errors.New("node: membership: leave timeout must be positive")
	}
	m.lifeMu.RLock()
	defer m.lifeMu.RUnlock()
	if m.closed {
		return errMembershipClosed
	}
	deadline := time.Now().Add(timeout)
	if !m.left.Swap(true) {
		// memberlist reports a graceful leave and a failure alike to the
		// event delegate, so the others tell them apart by a leaving flag
		// in our metadata: spread it first. The leave message that follows
		// replaces it in the broadcast queue, hence the wait.
		m.updateMeta(func(nm *nodeMeta) { nm.Leaving = true })
		if err := m.ml.UpdateNode(timeout / 2); err != nil {
			m.log.Debug("leaving flag not fully gossiped", "err", err)
		}
	}
	if err := m.ml.Leave(max(time.Until(deadline), time.Millisecond)); err != nil {
		return fmt.Errorf("node: membership: leave: %w", err)
	}
	m.log.Info("left the gossip cluster")
	return nil
}

// Close stops gossip without a leave message (others will see this node
// fail; call Leave first for a graceful exit). It returns once memberlist's
// listeners, connections and probes have stopped. It is idempotent.
func (m *membership) Close() error {
	m.closeOnce.Do(func() {
		m.lifeMu.Lock()
		m.closed = true
		m.lifeMu.Unlock()
		close(m.stop)
		m.cancel()
		m.mlLog.quiet.Store(true) // shutdown noise is not worth an operator's attention
		score := m.ml.GetHealthScore()
		// Shutdown closes our transport first: listeners, connections and
		// in-flight dials, so every memberlist goroutine doing I/O returns.
		m.closeErr = m.ml.Shutdown()
		m.wg.Wait()
		m.drainProbe(score)
	})
	return m.closeErr
}

// drainProbe waits for memberlist's prober: Shutdown does not wait for it,
// and a probe in flight waits for its ack timer, at most one probe interval
// (scaled by memberlist's health score) after its ping went out. A ping
// sent after Shutdown fails at once, so the last write before Shutdown
// bounds the wait. Shutdown waits for nothing else that can outlive it by
// more than a moment.
func (m *membership) drainProbe(score int) {
	last := m.tr.lastWriteTime()
	if last.IsZero() {
		return
	}
	end := last.Add(m.mlCfg.ProbeInterval*time.Duration(score+1) + 10*time.Millisecond)
	if d := time.Until(end); d > 0 {
		t := time.NewTimer(d)
		<-t.C
	}
}

// updateMeta changes our metadata and reports whether it changed.
func (m *membership) updateMeta(f func(*nodeMeta)) bool {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	old := m.meta
	f(&m.meta)
	return m.meta != old
}

func (m *membership) notify() {
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

// observe records what memberlist told us about node n. Called under
// memberlist's locks: no blocking, no calls into memberlist.
func (m *membership) observe(n *memberlist.Node, alive bool) {
	meta, err := decodeNodeMeta(n.Meta)
	if err == nil && meta.ID != n.Name {
		err = fmt.Errorf("metadata is for node %q", meta.ID)
	}
	addr := n.Address()
	now := time.Now()

	m.mu.Lock()
	cur := m.members[n.Name]
	var next member
	switch {
	case err == nil:
		next = member{info: memberInfo{ID: meta.ID, Name: meta.Name, GRPCAddr: meta.GRPCAddr, GossipAddr: addr,
			BootID: meta.BootID, HasCluster: meta.HasCluster, Bootstrapper: meta.Bootstrapper}, leaving: meta.Leaving}
	case cur != nil && !alive:
		next = *cur // it failed or left: its state still counts
	default:
		m.mu.Unlock()
		m.log.Warn("ignoring gossip member with malformed metadata", "member_id", n.Name, "gossip_addr", addr, "err", err)
		return
	}
	switch {
	case alive:
		next.info.State = memberAlive
	case next.leaving:
		next.info.State = memberLeft
	default:
		next.info.State = memberDead
	}
	next.info.Since = now
	if cur != nil && cur.info.State == next.info.State {
		next.info.Since = cur.info.Since
	}
	if cur != nil && *cur == next {
		m.mu.Unlock()
		return
	}
	m.members[n.Name] = &next
	m.mu.Unlock()
	m.notify()

	i := next.info
	if cur == nil || cur.info.State != i.State || cur.info.BootID != i.BootID {
		m.log.Info("gossip member "+i.State.String(), "member_id", i.ID, "member_name", i.Name,
			"gossip_addr", i.GossipAddr, "grpc_addr", i.GRPCAddr, "boot_id", i.BootID)
	} else {
		m.log.Debug("gossip member updated", "member_id", i.ID, "gossip_addr", i.GossipAddr,
			"grpc_addr", i.GRPCAddr, "has_cluster", i.HasCluster)
	}
}

// markLeft records that a member we saw fail at addr had in fact left.
// Since stays: it is the same departure, seen better, and Since feeds the
// failure grace.
func (m *membership) markLeft(id, addr string) {
	m.mu.Lock()
	mb := m.members[id]
	if mb == nil || mb.info.State != memberDead || mb.info.GossipAddr != addr {
		m.mu.Unlock()
		return
	}
	mb.info.State = memberLeft
	m.mu.Unlock()
	m.notify()
	m.log.Info("gossip member left", "member_id", id, "gossip_addr", addr)
}

// staleSelf notes that a peer holds an outdated entry for this node (it
// restarted at another address and the peer has not accepted the new one
// yet): the run loop re-announces this node until the peers agree.
func (m *membership) staleSelf() {
	if m.left.Load() {
		return
	}
	m.stale.Store(true)
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// run joins the seeds, re-announces this node when a peer has an outdated
// entry for it, and otherwise reconnects to failed members now and then.
func (m *membership) run() {
	defer m.wg.Done()
	joining := len(m.cfg.Seeds) > 0 // initial join or re-announce pending
	backoff := m.timing.joinMin
	first := m.timing.reconnect
	if joining {
		first = 0
	}
	timer := time.NewTimer(first)
	defer timer.Stop()
	attempts := 0
	for {
		select {
		case <-m.stop:
			return
		case <-m.wake:
			if !joining {
				joining = true
				timer.Reset(jitter(backoff))
			}
			continue
		case <-timer.C:
		}
		if m.left.Load() {
			return
		}
		if !joining {
			m.reconnect()
			timer.Reset(jitter(m.timing.reconnect))
			continue
		}
		attempts++
		if m.join(attempts) {
			joining, attempts, backoff = false, 0, m.timing.joinMin
			timer.Reset(jitter(m.timing.reconnect))
			continue
		}
		timer.Reset(jitter(backoff))
		backoff = min(2*backoff, m.timing.joinMax)
	}
}

// join contacts the seeds and the members believed alive and reports
// whether one answered and none holds an outdated entry for this node.
func (m *membership) join(attempt int) bool {
	var targets []string
	for _, mi := range m.Members() {
		if mi.ID != m.cfg.NodeID && mi.State == memberAlive {
			targets = append(targets, mi.GossipAddr)
		}
	}
	for _, s := range m.resolveSeeds() {
		if !slices.Contains(targets, s) {
			targets = append(targets, s)
		}
	}
	if len(targets) == 0 {
		return false
	}
	m.stale.Store(false)
	n, err := m.ml.Join(targets)
	switch {
	case n == 0:
		level := slog.LevelDebug
		if attempt == 1 || attempt%10 == 0 {
			level = slog.LevelInfo
		}
		m.log.Log(m.ctx, level, "gossip join failed, retrying", "targets", targets, "attempt", attempt, "err", err)
		return false
	case m.stale.Load():
		level := slog.LevelDebug
		msg := "a peer still has this node's previous address, announcing again"
		switch {
		case attempt == 1:
			level = slog.LevelInfo
		case attempt%10 == 0:
			level, msg = slog.LevelWarn, "peers still have another address for this node id: is another node running with it?"
		}
		m.log.Log(m.ctx, level, msg, "node_id", m.cfg.NodeID, "gossip_addr", m.addr, "attempt", attempt)
		return false
	default:
		m.log.Info("joined the gossip cluster", "contacted", n)
		return true
	}
}

// resolveSeeds returns the seeds as ip:port, without this node.
func (m *membership) resolveSeeds() []string {
	var out []string
	for _, s := range m.cfg.Seeds {
		host, port, _ := net.SplitHostPort(s) // validated
		ips := []string{host}
		if net.ParseIP(host) == nil {
			var err error
			if ips, err = net.DefaultResolver.LookupHost(m.ctx, host); err != nil {
				m.log.Debug("cannot resolve gossip seed", "seed", s, "err", err)
				continue
			}
		}
		for _, ip := range ips {
			if a := net.JoinHostPort(ip, port); a != m.addr && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// reconnect contacts one member believed dead (not left), or the seeds
// when no peer is alive. memberlist only talks to live members, so without
// this two sides of a healed partition would never merge.
func (m *membership) reconnect() {
	var dead []string
	alive := false
	for _, mi := range m.Members() {
		switch {
		case mi.ID == m.cfg.NodeID:
		case mi.State == memberDead && time.Since(mi.Since) < m.timing.reconnectFor:
			dead = append(dead, mi.GossipAddr)
		case mi.State == memberAlive:
			alive = true
		}
	}
	var targets []string
	if len(dead) > 0 {
		targets = append(targets, dead[rand.IntN(len(dead))])
	}
	if !alive {
		for _, s := range m.resolveSeeds() {
			if !slices.Contains(targets, s) {
				targets = append(targets, s)
			}
		}
	}
	if len(targets) == 0 {
		return
	}
	if n, err := m.ml.Join(targets); n > 0 {
		m.log.Debug("reconnected to gossip members", "targets", targets, "contacted", n)
	} else {
		m.log.Debug("gossip reconnect failed", "targets", targets, "err", err)
	}
}

// jitter adds up to 25% to d so that nodes do not retry in step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + rand.N(d/4+1)
}

// membershipDelegate receives memberlist's callbacks. They run under
// memberlist's locks: they must not block or call back into memberlist.
type membershipDelegate struct{ m *membership }

var (
	_ memberlist.Delegate         = (*membershipDelegate)(nil)
	_ memberlist.EventDelegate    = (*membershipDelegate)(nil)
	_ memberlist.ConflictDelegate = (*membershipDelegate)(nil)
	_ memberlist.MergeDelegate    = (*membershipDelegate)(nil)
)

func (d *membershipDelegate) NodeMeta(limit int) []byte {
	d.m.metaMu.Lock()
	b := d.m.meta.encode()
	d.m.metaMu.Unlock()
	if len(b) > limit { // validate rules this out; memberlist would panic
		d.m.log.Error("node metadata too large, gossiping none", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}

func (d *membershipDelegate) NotifyMsg([]byte)                {}
func (d *membershipDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *membershipDelegate) LocalState(bool) []byte          { return nil }
func (d *membershipDelegate) MergeRemoteState([]byte, bool)   {}
func (d *membershipDelegate) NotifyJoin(n *memberlist.Node)   { d.m.observe(n, true) }
func (d *membershipDelegate) NotifyUpdate(n *memberlist.Node) { d.m.observe(n, true) }
func (d *membershipDelegate) NotifyLeave(n *memberlist.Node)  { d.m.observe(n, false) }

// NotifyConflict: a node claims a name already known at another address.
// About us, a peer has our previous address (we restarted elsewhere);
// about another node, it restarted before its old entry failed. Either
// way memberlist drops the claim until the old entry is dead.
func (d *membershipDelegate) NotifyConflict(existing, other *memberlist.Node) {
	if existing.Name == d.m.cfg.NodeID {
		d.m.staleSelf()
		return
	}
	d.m.log.Debug("gossip member reappeared at a new address; waiting for its old entry to fail",
		"member_id", existing.Name, "old_addr", existing.Address(), "new_addr", other.Address())
}

// NotifyMerge sees a peer's whole view during push/pull (here, unlike in
// events, Node.State is filled in). If the peer has us at another address,
// re-announce. If it saw a member leave that we only saw fail (we missed
// its leaving flag), record the departure.
func (d *membershipDelegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		switch {
		case p.Name == d.m.cfg.NodeID:
			if p.Address() != d.m.addr {
				d.m.staleSelf()
			}
		case p.State == memberlist.StateLeft:
			d.m.markLeft(p.Name, p.Address())
		}
	}
	return nil
}

// nodeMeta is the metadata a node gossips about itself.
//
// Encoding: a version byte, a flags byte, then ID, Name, GRPCAddr and
// BootID, each as a uvarint length and UTF-8 bytes. A later version may
// append fields and flags: decoders read what they know and ignore the
// rest of a newer record.
type nodeMeta struct {
	ID, Name, GRPCAddr, BootID string
	HasCluster                 bool
	Leaving                    bool // Leave was called: a failure that follows is a departure
	Bootstrapper               bool // started with a bootstrap expectation
}

const (
	nodeMetaVersion  = 1
	metaFlagCluster  = 1 << 0
	metaFlagLeaving  = 1 << 1
	metaFlagBoot     = 1 << 2
	metaKnownFlagsV1 = metaFlagCluster | metaFlagLeaving | metaFlagBoot
)

func (nm nodeMeta) encode() []byte {
	fields := [...]string{nm.ID, nm.Name, nm.GRPCAddr, nm.BootID}
	size := 2
	for _, f := range fields {
		size += binary.MaxVarintLen32 + len(f)
	}
	var flags byte
	if nm.HasCluster {
		flags |= metaFlagCluster
	}
	if nm.Leaving {
		flags |= metaFlagLeaving
	}
	if nm.Bootstrapper {
		flags |= metaFlagBoot
	}
	b := make([]byte, 0, size)
	b = append(b, nodeMetaVersion, flags)
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func decodeNodeMeta(b []byte) (nodeMeta, error) {
	bad := func(format string, args ...any) (nodeMeta, error) {
		return nodeMeta{}, fmt.Errorf("node: membership: metadata: "+format, args...)
	}
	switch {
	case len(b) > memberlist.MetaMaxSize:
		return bad("%d bytes, over the %d limit", len(b), memberlist.MetaMaxSize)
	case len(b) < 2:
		return bad("%d bytes, too short", len(b))
	case b[0] == 0:
		return bad("version 0")
	case b[0] == nodeMetaVersion && b[1]&^metaKnownFlagsV1 != 0:
		return bad("unknown flags %#x", b[1])
	}
	version, flags, rest := b[0], b[1], b[2:]
	var fields [4]string
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return bad("field %d truncated", i)
		}
		f := rest[k : k+int(n)]
		if !utf8.Valid(f) {
			return bad("field %d is not UTF-8", i)
		}
		fields[i], rest = string(f), rest[k+int(n):]
	}
	if version == nodeMetaVersion && len(rest) > 0 {
		return bad("%d trailing bytes", len(rest))
	}
	if fields[0] == "" {
		return bad("empty node id")
	}
	return nodeMeta{ID: fields[0], Name: fields[1], GRPCAddr: fields[2], BootID: fields[3],
		HasCluster: flags&metaFlagCluster != 0, Leaving: flags&metaFlagLeaving != 0, Bootstrapper: flags&metaFlagBoot != 0}, nil
}

// memberlistLog bridges memberlist's *log.Logger to slog. memberlist tags
// each line with a level and is chatty: every level goes one step down
// (DEBUG and INFO to debug, WARN to info, ERR to warn). After Close starts,
// everything is debug: it is shutdown noise.
type memberlistLog struct {
	l     *slog.Logger
	quiet atomic.Bool
}

func (w *memberlistLog) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		level, msg := memberlistLevel(string(line))
		if w.quiet.Load() {
			level = slog.LevelDebug
		}
		if w.l.Enabled(context.Background(), level) {
			w.l.Log(context.Background(), level, msg)
		}
	}
	return len(p), nil
}

// memberlistLevel maps a memberlist log line to a slog level and message.
func memberlistLevel(line string) (slog.Level, string) {
	level := slog.LevelInfo // untagged lines are rare; keep them visible
	for _, t := range []struct {
		tag   string
		level slog.Level
	}{
		{"[DEBUG]", slog.LevelDebug},
		{"[INFO]", slog.LevelDebug},
		{"[WARN]", slog.LevelInfo},
		{"[ERR]", slog.LevelWarn},
		{"[ERROR]", slog.LevelWarn},
	} {
		if rest, ok := strings.CutPrefix(line, t.tag); ok {
			level, line = t.level, rest
			break
		}
	}
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "memberlist: ")
	if strings.HasPrefix(line, "Conflicting address for ") {
		// Expected, and repeated on every alive message, while a node that
		// restarted at a new address waits for its old entry to fail; the
		// membership layer reports what matters about it.
		level = slog.LevelDebug
	}
	return level, line
}

// gossipTransport wraps memberlist's NetTransport. It injects faults
// (allow), tracks every TCP connection so Shutdown can close them, aborts
// dials in flight on Shutdown, and remembers when the last packet was
// sent (see drainProbe). Only outgoing traffic is filtered.
type gossipTransport struct {
	inner   *memberlist.NetTransport
	allow   func(addr string) bool
	streams chan net.Conn
	dialCtx context.Context
	cancel  context.CancelFunc

	mu        sync.Mutex
	closed    bool
	lastWrite time.Time
	conns     map[*trackedConn]struct{}

	closing   chan struct{} // closed when Shutdown starts
	innerDone chan struct{} // closed when inner has shut down
	wg        sync.WaitGroup
	once      sync.Once
	err       error
}

var _ memberlist.NodeAwareTransport = (*gossipTransport)(nil)

var (
	errGossipTransportClosed = errors.New("node: membership: transport closed")
	errGossipBlocked         = errors.New("node: membership: blocked by fault injection")
)

func newGossipTransport(ip string, port int, allow func(string) bool, logger *log.Logger) (*gossipTransport, error) {
	nc := &memberlist.NetTransportConfig{BindAddrs: []string{ip}, BindPort: port, Logger: logger}
	// With port 0 the TCP port is picked first and UDP may find it taken:
	// retry as memberlist does for its own transport.
	tries := 1
	if port == 0 {
		tries = 10
	}
	var inner *memberlist.NetTransport
	var err error
	for range tries {
		if inner, err = memberlist.NewNetTransport(nc); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("node: membership: listen on %s: %w", net.JoinHostPort(ip, strconv.Itoa(port)), err)
	}
	t := &gossipTransport{
		inner:     inner,
		allow:     allow,
		streams:   make(chan net.Conn),
		conns:     make(map[*trackedConn]struct{}),
		closing:   make(chan struct{}),
		innerDone: make(chan struct{}),
	}
	t.dialCtx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.forwardStreams()
	return t, nil
}

func (t *gossipTransport) port() int { return t.inner.GetAutoBindPort() }

func (t *gossipTransport) allowed(addr string) bool { return t.allow == nil || t.allow(addr) }

func (t *gossipTransport) lastWriteTime() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastWrite
}

func (t *gossipTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

func (t *gossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a packet. A blocked destination loses it silently,
// as a lossy network would. After Shutdown it fails with an error that is
// not a network error, so a probe in memberlist gives up at once.
func (t *gossipTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	t.mu.Lock()
	closed := t.closed
	if !closed {
		t.lastWrite = now
	}
	t.mu.Unlock()
	if closed {
		return time.Time{}, errGossipTransportClosed
	}
	if !t.allowed(a.Addr) {
		return now, nil
	}
	return t.inner.WriteToAddress(b, a)
}

func (t *gossipTransport) PacketCh() <-chan *memberlist.Packet { return t.inner.PacketCh() }

func (t *gossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream. A blocked destination fails as an
// unreachable one would.
func (t *gossipTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if !t.allowed(a.Addr) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errGossipBlocked}
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(t.dialCtx, "tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	return t.track(c)
}

func (t *gossipTransport) StreamCh() <-chan net.Conn { return t.streams }

// forwardStreams hands incoming streams to memberlist, tracked. It keeps
// draining the inner transport until it has shut down: NetTransport's
// accept loop blocks on its channel and its Shutdown waits for that loop.
func (t *gossipTransport) forwardStreams() {
	defer t.wg.Done()
	in := t.inner.StreamCh()
	for {
		select {
		case c := <-in:
			tc, err := t.track(c)
			if err != nil {
				continue // closed: track closed it
			}
			select {
			case t.streams <- tc:
			case <-t.closing:
				_ = tc.Close()
			}
		case <-t.innerDone:
			return
		}
	}
}

func (t *gossipTransport) track(c net.Conn) (net.Conn, error) {
	tc := &trackedConn{Conn: c, t: t}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = c.Close()
		return nil, errGossipTransportClosed
	}
	t.conns[tc] = struct{}{}
	t.mu.Unlock()
	return tc, nil
}

// Shutdown stops new traffic, closes every connection (so memberlist's
// stream handlers and push/pulls return at once), aborts dials in flight,
// then shuts NetTransport down. memberlist calls it first in its Shutdown.
func (t *gossipTransport) Shutdown() error {
	t.once.Do(func() {
		t.mu.Lock()
		t.closed = true
		conns := t.conns
		t.conns = nil
		t.mu.Unlock()
		close(t.closing)
		t.cancel()
		for c := range conns {
			_ = c.Conn.Close()
		}
		t.err = t.inner.Shutdown()
		close(t.innerDone)
		t.wg.Wait()
	})
	return t.err
}

// abandon shuts the transport down when memberlist never started: nothing
// reads its packets, so drain them or NetTransport's Shutdown would wait
// on a blocked receive loop forever.
func (t *gossipTransport) abandon() {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.inner.PacketCh():
			case <-done:
				return
			}
		}
	}()
	_ = t.Shutdown()
	close(done)
}

type trackedConn struct {
	net.Conn
	t *gossipTransport
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	delete(c.t.conns, c)
	c.t.mu.Unlock()
	return c.Conn.Close()
}
