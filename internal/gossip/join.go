package gossip

import (
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"time"
)

// staleSelf notes that a peer holds an outdated entry for this node (it
// restarted at another address and the peer has not accepted the new one
// yet): the run loop re-announces this node until the peers agree.
func (m *Membership) staleSelf() {
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
func (m *Membership) run() {
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
func (m *Membership) join(attempt int) bool {
	var targets []string
	for _, mi := range m.Members() {
		if mi.ID != m.cfg.NodeID && mi.State == Alive {
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
func (m *Membership) resolveSeeds() []string {
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
func (m *Membership) reconnect() {
	var dead []string
	alive := false
	for _, mi := range m.Members() {
		switch {
		case mi.ID == m.cfg.NodeID:
		case mi.State == Dead && time.Since(mi.Since) < m.timing.reconnectFor:
			dead = append(dead, mi.GossipAddr)
		case mi.State == Alive:
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
