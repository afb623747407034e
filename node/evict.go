package node

import (
	"context"
	"math/rand/v2"
	"sort"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
)

const (
	// evictSample is how many entries one eviction choice looks at: the
	// least recently used of a random sample approximates LRU (as Redis
	// does) without a global list.
	evictSample = 16
	// evictMaxPerRound bounds the victims one command carries.
	evictMaxPerRound = 64
	// lowWaterPct: once over capacity, eviction frees down to this share of
	// it, so that writes near the limit do not evict on every call.
	lowWaterPct = 95
	// reapBudget is how many entries one reaper pass looks at per partition.
	reapBudget = 2000
)

// usedBytes is the live entry bytes over all partitions hosted here.
func (n *Node) usedBytes() uint64 {
	var used uint64
	for _, p := range n.hosted() {
		used += p.store.State().Bytes
	}
	return used
}

// victims returns EVICT ops that free at least the space a write of
// incoming bytes would take past the capacity, from partition p.
func (n *Node) victims(p *partition, incoming uint64) []*peerv1.Op {
	used := n.usedBytes()
	if used+incoming <= n.cfg.CapacityBytes {
		return nil
	}
	need := used + incoming - n.cfg.CapacityBytes*lowWaterPct/100
	// A write frees at most a few times its own size inline; the
	// background loop handles the rest.
	if limit := 4 * (incoming + 1024); need > limit {
		need = limit
	}
	return n.pickVictims(p, need)
}

// pickVictims samples p and returns EVICT ops for the least recently used
// clean entries until need bytes are freed or the sample runs out.
func (n *Node) pickVictims(p *partition, need uint64) []*peerv1.Op {
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var ops []*peerv1.Op
	var freed uint64
	for rounds := 0; freed < need && len(ops) < evictMaxPerRound && rounds < 8; rounds++ {
		sample, err := p.store.Sample(rng, evictSample)
		if err != nil || len(sample) == 0 {
			break
		}
		clean := sample[:0]
		for _, e := range sample {
			if !e.Dirty() {
				clean = append(clean, e)
			}
		}
		sort.Slice(clean, func(i, j int) bool {
			return n.recent.LastUse(p.id, clean[i]) < n.recent.LastUse(p.id, clean[j])
		})
		// Take the older half of each sample: the rest look recently used.
		for _, e := range clean[:(len(clean)+1)/2] {
			if freed >= need || len(ops) == evictMaxPerRound {
				break
			}
			ops = append(ops, &peerv1.Op{Kind: peerv1.Op_KIND_EVICT, Key: e.Key, IfVersion: e.Version, ExpireAt: n.fenceUntil()})
			freed += e.Size()
		}
	}
	return ops
}

// evictLoop keeps the node under capacity when writes alone do not, for
// example after a restart with a smaller capacity.
func (n *Node) evictLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.EvictInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		for i := 0; i < 64 && n.usedBytes() > n.cfg.CapacityBytes; i++ {
			p := n.largestLedPartition()
			if p == nil {
				break
			}
			ops := n.pickVictims(p, n.usedBytes()-n.cfg.CapacityBytes*lowWaterPct/100)
			if len(ops) == 0 {
				break
			}
			if _, err := n.proposeInternal(p, ops); err != nil {
				n.log.Warn("eviction failed", "partition", p.id, "err", err)
				break
			}
		}
	}
}

// largestLedPartition returns the partition led here that holds the most
// bytes, or nil.
func (n *Node) largestLedPartition() *partition {
	var best *partition
	var bestBytes uint64
	for _, p := range n.hosted() {
		if b := p.store.State().Bytes; p.ready() && b > bestBytes {
			best, bestBytes = p, b
		}
	}
	return best
}

// proposeInternal commits node-initiated ops (eviction, expiry), SYNC.
func (n *Node) proposeInternal(p *partition, ops []*peerv1.Op) (*peerv1.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.propose(ctx, &peerv1.Command{ProposedAt: time.Now().UnixNano(), Ops: ops}, cachev1.Durability_DURABILITY_SYNC)
}

// reapLoop removes expired entries. Reads never return them anyway; this
// frees their space. Only partition leaders reap, through Raft, so replicas
// stay identical.
func (n *Node) reapLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.ReapInterval)
	defer t.Stop()
	cursors := make(map[uint32][]byte)
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		for _, p := range n.hosted() {
			if !p.ready() || p.store.State().Expiring == 0 {
				continue
			}
			var expired []storage.Entry
			var err error
			expired, cursors[p.id], err = p.store.Expired(cursors[p.id], time.Now().UnixNano(), reapBudget)
			if err != nil {
				n.log.Warn("reaper scan failed", "partition", p.id, "err", err)
				continue
			}
			for len(expired) > 0 {
				chunk := expired[:min(len(expired), 256)]
				expired = expired[len(chunk):]
				ops := make([]*peerv1.Op, len(chunk))
				for j, e := range chunk {
					ops[j] = &peerv1.Op{Kind: peerv1.Op_KIND_EXPIRE, Key: e.Key, IfVersion: e.Version, ExpireAt: n.fenceUntil()}
				}
				if _, err := n.proposeInternal(p, ops); err != nil {
					n.log.Warn("expiry failed", "partition", p.id, "err", err)
					break
				}
			}
		}
	}
}

// reclaimLoop compacts the database when it takes more than twice the
// capacity on disk and has grown by a quarter of the capacity since the last
// compaction (so that a steady overhead of WAL and Raft log tails does not
// make it compact over and over); see storage.DB.Compact.
func (n *Node) reclaimLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.ReclaimInterval)
	defer t.Stop()
	var floor uint64
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		disk := n.db.DiskUsage()
		if disk <= 2*n.cfg.CapacityBytes || disk <= floor+n.cfg.CapacityBytes/4 {
			continue
		}
		start := time.Now()
		if err := n.db.Compact(); err != nil {
			n.log.Warn("disk reclaim failed", "err", err)
			continue
		}
		floor = n.db.DiskUsage()
		n.log.Info("disk reclaimed", "before_bytes", disk, "after_bytes", floor, "took", time.Since(start).Round(time.Millisecond))
	}
}
