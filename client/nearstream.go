package client

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// The near cache's streams: which node follows each partition, one
// Changes stream per node, pings and their progress marks (near.go).

// nearFeed is the near cache's Changes stream to one node.
type nearFeed struct {
	addr string
	n    *nodeConn

	mu sync.Mutex
	// stream is nil while the stream is down; sends hold mu. cancel ends
	// it.
	stream cachev1.Cache_ChangesClient
	cancel context.CancelFunc
	// parts are the partitions this stream follows (again on reconnect).
	parts map[uint32]bool
	// pings are the pings in flight, by sequence, with when each was sent.
	pings map[uint64]time.Time
	seq   uint64
}

// send sends r if the stream is up.
func (f *nearFeed) send(r *cachev1.ChangesRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stream != nil {
		_ = f.stream.Send(r) // a broken stream fails its Recv too
	}
}

// subscribe sends s on this stream.
func (f *nearFeed) subscribe(s *cachev1.ChangeSubscription) {
	f.mu.Lock()
	f.parts[s.Partition] = true
	f.mu.Unlock()
	f.send(&cachev1.ChangesRequest{Subscribe: []*cachev1.ChangeSubscription{s}})
}

// unsubscribe stops following pid on this stream.
func (f *nearFeed) unsubscribe(pid uint32) {
	f.mu.Lock()
	delete(f.parts, pid)
	f.mu.Unlock()
	f.send(&cachev1.ChangesRequest{Unsubscribe: []uint32{pid}})
}

// restart ends the stream, which reconnects: one that answers no pings
// is not trusted to carry changes either.
func (f *nearFeed) restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel != nil {
		f.cancel()
	}
}

// ping asks for a progress mark of every partition the stream follows.
func (f *nearFeed) ping() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stream == nil || len(f.parts) == 0 {
		return
	}
	f.seq++
	f.pings[f.seq] = time.Now()
	_ = f.stream.Send(&cachev1.ChangesRequest{Ping: f.seq})
}

// answered returns when ping seq was sent, forgetting it and every older
// ping; ok is false for no ping.
func (f *nearFeed) answered(seq uint64) (sent time.Time, ok bool) {
	if seq == 0 {
		return time.Time{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sent, ok = f.pings[seq]
	for s := range f.pings {
		if s <= seq {
			delete(f.pings, s)
		}
	}
	return sent, ok
}

// nearLoop follows the partitions the near cache holds keys of, pings
// every stream each ProgressInterval, and moves a partition to another
// node when its leader changes or its stream stops answering. It runs
// until the client closes.
func (c *Client) nearLoop(ctx context.Context) {
	defer c.wg.Done()
	nc := c.near
	feeds := make(map[string]*nearFeed)
	feed := func(addr string) *nearFeed {
		if f := feeds[addr]; f != nil {
			return f
		}
		n, err := c.conns.get(addr)
		if err != nil {
			return nil
		}
		f := &nearFeed{addr: addr, n: n, parts: make(map[uint32]bool), pings: make(map[uint64]time.Time)}
		feeds[addr] = f
		c.wg.Add(1)
		go c.runFeed(ctx, f)
		return f
	}
	tick := time.NewTicker(nc.cfg.ProgressInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t := c.topo.Load()
		if t == nil {
			continue
		}
		nc.setParts(int(t.count))
		now := time.Now()
		for pid := range nc.partsLen() {
			p := nc.part(uint32(pid))
			var leave, join, hung *nearFeed
			var sub *cachev1.ChangeSubscription
			p.mu.Lock()
			if !p.wanted {
				p.mu.Unlock()
				continue
			}
			if last := p.cur.markAt; p.addr != "" && now.Sub(later(last, p.since)) > nc.cfg.StreamTimeout {
				// The stream answers no pings: follow the partition
				// elsewhere.
				p.failed, p.failedUntil = p.addr, now.Add(nearAvoid)
				leave = feeds[p.addr]
				p.addr, p.cur.live = "", false
				p.publishLocked()
				hung = leave
			}
			if want := nearTarget(t, uint32(pid), p, now); want != p.addr && want != "" {
				if p.addr != "" {
					leave = feeds[p.addr]
				}
				if join = feed(want); join != nil {
					p.addr, p.since, p.cur.live = want, now, false
					sub = nc.subscriptionLocked(uint32(pid), p)
					p.publishLocked()
				}
			}
			// Sent under p.mu, so that the server's last subscription of
			// the partition is the one p expects.
			if hung != nil {
				hung.restart()
			}
			if leave != nil {
				leave.unsubscribe(uint32(pid))
			}
			if join != nil {
				join.subscribe(sub)
			}
			p.mu.Unlock()
		}
		for _, f := range feeds {
			f.ping()
		}
	}
}

// nearAvoid is how long a node that failed to follow a partition is
// avoided for it, when another replica can.
const nearAvoid = time.Second

// nearTarget is the node that should follow partition pid: its leader
// (freshest marks: a leader proves freshness by its lease), else another
// replica, avoiding one that failed lately. p.mu is held.
func nearTarget(t *topology, pid uint32, p *nearPart, now time.Time) string {
	if int(pid) >= len(t.parts) {
		return ""
	}
	r := t.parts[pid]
	fallback := ""
	for _, id := range append([]string{r.leader}, r.replicas...) {
		addr := t.addrs[id]
		if id == "" || addr == "" {
			continue
		}
		if addr == p.failed && now.Before(p.failedUntil) {
			fallback = addr
			continue
		}
		return addr
	}
	return fallback
}

// runFeed keeps f's stream open until ctx ends: it subscribes again to
// the partitions f follows after every reconnect, and hands what arrives
// to the near cache.
func (c *Client) runFeed(ctx context.Context, f *nearFeed) {
	defer c.wg.Done()
	nc := c.near
	pause := c.cfg.RetryBase
	for first := true; ctx.Err() == nil; first = false {
		if !first {
			nc.reconnects.Add(1)
		}
		sctx, cancel := context.WithCancel(ctx)
		stream, err := f.n.rpc.Changes(sctx)
		if err == nil {
			// The stream is up before the partitions are read: one
			// subscribed meanwhile sends its own subscription (twice is
			// harmless). Locks: a partition's before a feed's, never the
			// other way.
			f.mu.Lock()
			f.stream, f.cancel = stream, cancel
			f.mu.Unlock()
			nc.eachFollowed(f, func(pid uint32, p *nearPart) {
				// Under p.mu, so that the subscription the server holds
				// last is the one p expects.
				f.send(&cachev1.ChangesRequest{Subscribe: []*cachev1.ChangeSubscription{nc.subscriptionLocked(pid, p)}})
			})
			for err == nil {
				var r *cachev1.ChangesResponse
				if r, err = stream.Recv(); err == nil {
					nc.receive(f, r)
					pause = c.cfg.RetryBase
				}
			}
		}
		cancel()
		f.mu.Lock()
		f.stream, f.cancel = nil, nil
		clear(f.pings)
		f.mu.Unlock()
		nc.eachFollowed(f, func(_ uint32, p *nearPart) {
			p.cur.live = false
			p.publishLocked()
		})
		select {
		case <-ctx.Done():
		case <-time.After(rand.N(pause + 1)):
		}
		pause = min(2*pause, c.cfg.RetryMax)
	}
}

// subscriptionLocked starts a new subscription of p (partition pid) from
// where the client stands. p.mu is held.
func (nc *near) subscriptionLocked(pid uint32, p *nearPart) *cachev1.ChangeSubscription {
	p.sub = nc.subs.Add(1)
	return &cachev1.ChangeSubscription{Partition: pid, Epoch: p.cur.epoch, FromIndex: p.cur.through, Id: p.sub}
}

// eachFollowed calls fn, with p.mu held, for every partition f's stream
// follows. Locks: a partition's before a feed's, never the other way, so
// f's partitions are listed first and f.mu released.
func (nc *near) eachFollowed(f *nearFeed, fn func(pid uint32, p *nearPart)) {
	f.mu.Lock()
	pids := make([]uint32, 0, len(f.parts))
	for pid := range f.parts {
		pids = append(pids, pid)
	}
	f.mu.Unlock()
	for _, pid := range pids {
		if p := nc.part(pid); p != nil {
			p.mu.Lock()
			if p.addr == f.addr {
				fn(pid, p)
			}
			p.mu.Unlock()
		}
	}
}

// receive applies one message of f's stream.
func (nc *near) receive(f *nearFeed, r *cachev1.ChangesResponse) {
	sent, marked := f.answered(r.GetPing())
	for _, pc := range r.GetPartitions() {
		p := nc.part(pc.GetPartition())
		if p == nil {
			continue
		}
		p.mu.Lock()
		if p.addr != f.addr || pc.GetSubscription() != p.sub {
			// An answer of a subscription the partition has left.
			p.mu.Unlock()
			continue
		}
		if pc.GetError() != "" {
			p.failed, p.failedUntil = f.addr, time.Now().Add(nearAvoid)
			p.addr, p.cur.live = "", false
			p.publishLocked()
			p.mu.Unlock()
			f.mu.Lock()
			delete(f.parts, pc.GetPartition())
			f.mu.Unlock()
			continue
		}
		if pc.GetRestart() || pc.GetEpoch() != p.cur.epoch {
			if p.cur.through > 0 {
				nc.restarts.Add(1)
			}
			p.restartLocked(pc.GetEpoch(), pc.GetThrough())
		}
		nc.applyLocked(p, pc.GetKeyHashes(), pc.GetIndexes())
		p.cur.through = max(p.cur.through, pc.GetThrough())
		p.cur.live = true
		if marked {
			if sent.After(p.cur.markAt) {
				p.cur.markAt = sent
			}
			if fs := pc.GetFreshStaleness(); fs != nil {
				if at := sent.Add(-fs.AsDuration()); at.After(p.cur.freshAt) {
					p.cur.freshAt = at
				}
			}
		}
		p.publishLocked()
		p.mu.Unlock()
	}
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
