package gossip

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Membership is this node's view of the gossip cluster. Its methods are
// safe for concurrent use.
type Membership struct {
	cfg    Config
	log    *slog.Logger
	mlLog  *memberlistLog
	mlCfg  *memberlist.Config
	timing timings
	tr     *transport
	ml     *memberlist.Memberlist
	addr   string // advertised gossip address, fixed before memberlist starts

	changes chan struct{} // buffer 1: Members changed
	wake    chan struct{} // buffer 1: re-announce soon
	stale   atomic.Bool   // a peer holds an outdated entry for this node
	left    atomic.Bool   // Leave was called: never join again

	metaMu sync.Mutex
	meta   nodeMeta // what NodeMeta advertises

	mu      sync.Mutex
	members map[string]*entry // by id

	lifeMu sync.RWMutex // held shared by Leave and SetHasCluster, exclusively by Close
	closed bool

	ctx       context.Context // cancelled by Close: aborts seed resolution
	cancel    context.CancelFunc
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// entry is what Membership keeps about one member.
type entry struct {
	info    Member
	leaving bool // its last metadata said it is leaving
}

// New starts gossip on cfg.BindAddr. Seeds are joined in the background;
// watch Changes. Close stops it.
func New(cfg Config) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
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
	m := &Membership{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "membership"),
		mlLog:   &memberlistLog{l: cfg.Logger.With("component", "memberlist")},
		mlCfg:   mc,
		timing:  timing,
		changes: make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
		meta: nodeMeta{ID: cfg.NodeID, Name: cfg.NodeName, GRPCAddr: cfg.GRPCAddr, BootID: cfg.BootID,
			HasCluster: cfg.HasCluster, Bootstrapper: cfg.Bootstrapper},
		members: make(map[string]*entry),
		stop:    make(chan struct{}),
	}
	stdLog := log.New(m.mlLog, "", 0)
	if m.tr, err = newTransport(bindIP, bindPort, cfg.Allow, stdLog); err != nil {
		return nil, err
	}
	advIP, advPort, err := m.tr.FinalAdvertiseAddr("", 0)
	if err != nil {
		m.tr.abandon()
		return nil, fmt.Errorf("gossip: advertise address: %w", err)
	}
	m.addr = net.JoinHostPort(advIP.String(), strconv.Itoa(advPort))

	d := &delegate{m: m}
	mc.Name = cfg.NodeID
	mc.BindAddr, mc.BindPort = bindIP, m.tr.port()
	mc.AdvertisePort = mc.BindPort
	mc.Transport = m.tr
	mc.Logger = stdLog
	mc.SecretKey = cfg.SecretKey
	mc.Delegate, mc.Events, mc.Conflict, mc.Merge = d, d, d, d
	if m.ml, err = memberlist.Create(mc); err != nil {
		m.tr.abandon()
		return nil, fmt.Errorf("gossip: %w", err)
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
			return "", 0, fmt.Errorf("gossip: resolve bind host %q: %v", host, err)
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
func (m *Membership) Addr() string { return m.addr }

// Members lists every member seen during this run, including dead and left
// ones and this node, sorted by id.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.members))
	for _, mb := range m.members {
		out = append(out, mb.info)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Up reports whether member id is alive or suspect in this node's view:
// one map lookup, for callers on request paths.
func (m *Membership) Up(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb, ok := m.members[id]
	return ok && (mb.info.State == Alive || mb.info.State == Suspect)
}

// Changes receives (coalesced) after Members changed. It is never closed.
func (m *Membership) Changes() <-chan struct{} { return m.changes }

// SetHasCluster updates this node's metadata and gossips it. It does not
// wait for the gossip: memberlist queues the update and push/pull repairs
// any loss. Setting the current value is free.
func (m *Membership) SetHasCluster(has bool) {
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
// out. Gossip keeps running until Close; the node never rejoins. After
// Close it returns ErrClosed.
func (m *Membership) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		return errors.New("gossip: leave timeout must be positive")
	}
	m.lifeMu.RLock()
	defer m.lifeMu.RUnlock()
	if m.closed {
		return ErrClosed
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
		return fmt.Errorf("gossip: leave: %w", err)
	}
	m.log.Info("left the gossip cluster")
	return nil
}

// Close stops gossip without a leave message (others will see this node
// fail; call Leave first for a graceful exit). It returns once memberlist's
// listeners, connections and probes have stopped. It is idempotent.
func (m *Membership) Close() error {
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
func (m *Membership) drainProbe(score int) {
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
func (m *Membership) updateMeta(f func(*nodeMeta)) bool {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	old := m.meta
	f(&m.meta)
	return m.meta != old
}
